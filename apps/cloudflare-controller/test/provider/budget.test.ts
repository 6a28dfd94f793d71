// The call budget belongs to the token: one token in two accounts shares it, two tokens
// do not. After a 429 nothing is sent with that token until the block ends, and callers
// are told to come back at spread-out times.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import { ProviderRateLimited } from "@ktube/provider-kit";
import { CallBudget } from "../../src/provider/budget.ts";
import { CloudflareSessions } from "../../src/provider/sessions.ts";
import { listTunnels } from "../../src/provider/tunnels.ts";
import { startFake, type FakeAccount } from "./fixtures.ts";

let cf: FakeAccount;

beforeAll(async () => {
  cf = await startFake();
});
afterEach(() => cf.fake.configure({ rateLimit: { limit: 1200, windowMs: 5 * 60_000 } }));
afterAll(() => cf.stop());

const rateLimited = async (p: Promise<unknown>): Promise<ProviderRateLimited> => {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProviderRateLimited);
  return error as ProviderRateLimited;
};

describe("CallBudget", () => {
  it("spreads the retry times of refused callers over the block end plus up to 20% of the block", () => {
    const randoms = [0, 0.5, 0.999];
    const budget = new CallBudget({ random: () => randoms.shift() ?? 0 });
    budget.blockFor(60_000);
    const retries = [budget.take(), budget.take(), budget.take()].map((t) => (t.kind === "refused" ? t.retryAfterMs : -1));
    // Computed within the same few milliseconds: the remaining block is 60 s less what passed.
    const expected = [60_000, 66_000, 71_988];
    retries.forEach((ms, i) => {
      expect(ms).toBeLessThanOrEqual(expected[i]!);
      expect(ms).toBeGreaterThan(expected[i]! - 3_000);
    });
  });

  it("spreads by at least a few seconds when the block is short, and refuses rather than hands out turns while blocked", () => {
    const budget = new CallBudget({ random: () => 0.999 });
    budget.blockFor(2_000);
    const turn = budget.take();
    expect(turn.kind).toBe("refused");
    expect(turn.kind === "refused" && turn.blocked && turn.retryAfterMs > 6_000).toBe(true);
  });

  it("hands out a burst, then refuses with a retry time instead of queueing far ahead", () => {
    const budget = new CallBudget({ callsPerWindow: 10, windowMs: 60_000, burst: 3, maxWaitMs: 1_000 });
    expect([budget.take(), budget.take(), budget.take()].every((t) => t.kind === "go" && t.waitMs === 0)).toBe(true);
    const turn = budget.take();
    // The next token comes in 6 s, more than the 1 s anyone may wait.
    expect(turn.kind === "refused" && !turn.blocked && turn.retryAfterMs >= 6_000).toBe(true);
  });
});

describe("budget per token", () => {
  it("a 429 blocks the token in every account it serves, sends nothing more, and leaves other tokens alone", async () => {
    const other = cf.fake.addAccount();
    cf.fake.addToken("second-token", [cf.account]);
    cf.fake.addToken(cf.token, [cf.account, other]);
    const sessions = new CloudflareSessions({ baseURL: cf.fake.baseUrl });
    const first = sessions.session(cf.account, cf.token);
    const sameTokenOtherAccount = sessions.session(other, cf.token);
    const otherToken = sessions.session(cf.account, "second-token");
    expect(sameTokenOtherAccount).not.toBe(first);

    cf.fake.configure({ rateLimit: { limit: 2, windowMs: 60_000 } });
    await listTunnels(first.api);
    await listTunnels(sameTokenOtherAccount.api);
    const error = await rateLimited(listTunnels(first.api));
    expect(error.reason).toBe("RateLimited");
    // Cloudflare said "come back in about 60 s"; the caller is told the block end plus up to 20% of it.
    expect(error.retryAfterMs).toBeGreaterThanOrEqual(55_000);
    expect(error.retryAfterMs).toBeLessThanOrEqual(73_000);

    const sent = cf.fake.requests.length;
    const refusals = await Promise.all(Array.from({ length: 100 }, (_, i) => rateLimited(listTunnels(i % 2 ? first.api : sameTokenOtherAccount.api))));
    expect(cf.fake.requests.length).toBe(sent);
    const retries = refusals.map((r) => r.retryAfterMs!);
    expect(Math.min(...retries)).toBeGreaterThanOrEqual(55_000);
    expect(Math.max(...retries) - Math.min(...retries)).toBeGreaterThan(2_000);
    expect(new Set(retries).size).toBeGreaterThan(50);

    // Another token has its own budget and its own window at Cloudflare.
    await expect(listTunnels(otherToken.api)).resolves.toBeInstanceOf(Array);
    expect(cf.fake.requests.length).toBe(sent + 1);
  });
});
