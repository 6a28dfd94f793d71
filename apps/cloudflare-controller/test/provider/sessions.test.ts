// Sessions per (account, token), sharing nothing between tokens but what Cloudflare
// shares (nothing), and the budget per token.
import { describe, expect, it } from "@jest/globals";
import { CloudflareSessions } from "../../src/provider/sessions.ts";

describe("CloudflareSessions", () => {
  it("returns the same session for the same account and token, and separate state for another token", () => {
    const sessions = new CloudflareSessions({ baseURL: "http://127.0.0.1:9/client/v4" });
    const a = sessions.session("account-1", "token-a");
    expect(sessions.session("account-1", "token-a")).toBe(a);
    const b = sessions.session("account-1", "token-b");
    expect(b).not.toBe(a);
    for (const part of ["zones", "records", "access"] as const) expect(b[part]).not.toBe(a[part]);
    expect(a.accountId).toBe("account-1");
    expect(sessions.size).toEqual({ sessions: 2, budgets: 2 });
    sessions.session("account-2", "token-a");
    expect(sessions.size).toEqual({ sessions: 3, budgets: 2 });
  });

  it("keeps no token as a key and prunes what is no longer used", () => {
    const sessions = new CloudflareSessions();
    const a = sessions.session("account-1", "token-secret-a");
    sessions.session("account-1", "token-secret-b");
    sessions.session("account-2", "token-secret-b");
    const keys = JSON.stringify([...Object.values(sessions)].flatMap((v) => (v instanceof Map ? [...v.keys()] : [])));
    expect(keys).not.toMatch(/token-secret/);
    sessions.retain([a]);
    expect(sessions.size).toEqual({ sessions: 1, budgets: 1 });
    expect(sessions.session("account-1", "token-secret-a")).toBe(a);
    sessions.retain([]);
    expect(sessions.size).toEqual({ sessions: 0, budgets: 0 });
    expect(sessions.session("account-1", "token-secret-a")).not.toBe(a);
  });

  it("keeps the budget of a token Cloudflare is blocking, so a new session does not call into the block", async () => {
    const sessions = new CloudflareSessions();
    const a = sessions.session("account-1", "token-a");
    await a.api.reserve();
    // What a 429 does to the token's budget.
    a.api.budget.blockFor(60_000);
    sessions.retain([]);
    expect(sessions.size).toEqual({ sessions: 0, budgets: 1 });
    await expect(sessions.session("account-1", "token-a").api.reserve()).rejects.toMatchObject({ reason: "RateLimited" });
  });
});
