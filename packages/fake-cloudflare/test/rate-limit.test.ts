// The per-token rate limit, and the request log that lets a test prove a client stayed
// quiet while blocked. No test here waits for a window to pass: the windows are long
// and the helper is also checked on a log written by hand.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import Cloudflare from "cloudflare";
import { type FakeCloudflare, type RequestRecord, requestsWhileBlocked, tokenFingerprint } from "../src/index.ts";
import { apiError, rawGet, startFake, TOKEN } from "./support.ts";

let fake: FakeCloudflare;
let cf: Cloudflare;
let account: string;

beforeAll(async () => {
  ({ fake, cf, account } = await startFake());
});
afterEach(() => {
  fake.configure({ rateLimit: { limit: 1200, windowMs: 300_000 } });
  expect(fake.schemaViolations).toEqual([]);
});
afterAll(() => fake.stop());

describe("the rate limit", () => {
  it("blocks a token that goes over for the block period, answering 429 / 971 with Retry-After; other tokens carry on", async () => {
    const other = "other-token";
    const otherFingerprint = fake.addToken(other, [account]);
    fake.configure({ rateLimit: { limit: 2, windowMs: 60_000, blockMs: 120_000 } });
    const start = fake.requests.length;
    await cf.user.tokens.verify();
    await cf.zones.list();
    const first429 = await rawGet(fake, "/user/tokens/verify");
    expect(first429.status).toBe(429);
    expect(first429.headers.get("retry-after")).toBe("120");
    expect(await apiError(cf.zones.list())).toMatchObject({ status: 429, code: 971 });
    const otherClient = new Cloudflare({ apiToken: other, baseURL: fake.baseUrl, maxRetries: 0 });
    expect((await otherClient.user.tokens.verify()).status).toBe("active");

    const log = fake.requests.slice(start);
    expect(log.map((r) => [r.name, r.status, r.retryAfterSeconds])).toEqual([
      ["user.tokens.verify", 200, undefined],
      ["zones.list", 200, undefined],
      ["user.tokens.verify", 429, 120],
      ["zones.list", 429, expect.any(Number)],
      ["user.tokens.verify", 200, undefined],
    ]);
    // The log names tokens by fingerprint only, and its clock only moves forward.
    expect(log.map((r) => r.token)).toEqual([...Array(4).fill(tokenFingerprint(TOKEN)), otherFingerprint]);
    expect(JSON.stringify(log)).not.toContain(TOKEN);
    for (let i = 1; i < log.length; i++) expect(log[i]!.at).toBeGreaterThanOrEqual(log[i - 1]!.at);
  });

  it("reports the requests a token made while it was blocked", async () => {
    const impatient = fake.addToken("impatient-token", [account]); // a token of its own, unblocked so far
    const client = new Cloudflare({ apiToken: "impatient-token", baseURL: fake.baseUrl, maxRetries: 0 });
    fake.configure({ rateLimit: { limit: 1, windowMs: 60_000 } });
    await client.user.tokens.verify();
    for (let i = 0; i < 3; i++) await apiError(client.user.tokens.verify());
    const windows = fake.requestsWhileBlocked().filter((w) => w.token === impatient);
    expect(windows).toHaveLength(1);
    expect(windows[0]).toMatchObject({ blockedBy: { status: 429, retryAfterSeconds: 60 } });
    expect(windows[0]!.until).toBe(windows[0]!.blockedBy.at + 60_000);
    expect(windows[0]!.requests.map((r) => r.status)).toEqual([429, 429]);
  });
});

describe("requestsWhileBlocked", () => {
  const entry = (token: string | undefined, at: number, status: number, retryAfterSeconds?: number): RequestRecord => ({
    at, method: "GET", path: "/zones", operation: "zones-get", name: "zones.list", status,
    ...(token ? { token } : {}), ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
  });

  it("counts a token's requests between a 429 and the end of its Retry-After, per token, in time order", () => {
    const log = [
      entry("a", 0, 200),
      entry("a", 100, 429, 2), // blocks a until 2100
      entry("b", 150, 200), // another token: not counted
      entry("a", 1500, 200), // in flight or impatient: counted
      entry("a", 900, 429, 2), // out of order in the log, still inside the block: counted, no new block
      entry(undefined, 1000, 403), // no token: ignored
      entry("a", 2100, 200), // the block is over
      entry("a", 3000, 429, 1), // a new block
      entry("a", 3999, 200), // inside it
    ];
    const windows = requestsWhileBlocked(log);
    expect(windows.map((w) => [w.token, w.blockedBy.at, w.until, w.requests.map((r) => r.at)])).toEqual([
      ["a", 100, 2100, [900, 1500]],
      ["a", 3000, 4000, [3999]],
    ]);
  });

  it("finds nothing where no 429 was sent", () => {
    expect(requestsWhileBlocked([entry("a", 0, 200), entry("a", 1, 503)])).toEqual([]);
  });
});
