// DNS changes of many bindings share batch calls, and one bad record fails only itself.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { FakeCloudflare } from "@ktube/fake-cloudflare";
import { CloudflareApi } from "../src/provider/api.ts";
import { CallBudget } from "../src/provider/budget.ts";
import { DnsBatcher } from "../src/provider/dns-batcher.ts";
import { CloudflareError } from "../src/provider/errors.ts";

let fake: FakeCloudflare;
let api: CloudflareApi;
let account: string;
let zoneId: string;

beforeAll(async () => {
  fake = new FakeCloudflare();
  account = fake.addAccount();
  fake.addToken("t", [account]);
  zoneId = fake.addZone("batch.example", account).id;
  await fake.start();
  api = new CloudflareApi({ accountId: account, token: "t", baseURL: fake.baseUrl, budget: new CallBudget() });
});
afterAll(() => fake.stop());

const cname = (name: string) => ({ type: "CNAME" as const, name, content: "t.cfargotunnel.com", proxied: true, ttl: 1 as const });
const batchCalls = () => fake.requests.filter((r) => r.operation === "dns-records-for-a-zone-batch-dns-records").length;

describe("DnsBatcher", () => {
  it("sends the changes of one window in one call and hands each caller its own results", async () => {
    const batcher = new DnsBatcher(50);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => batcher.submit(api, zoneId, { posts: [cname(`h${i}.batch.example`)] })));
    expect(batchCalls()).toBe(1);
    expect(results.map((r) => r.posts.map((p) => p.name))).toEqual(Array.from({ length: 20 }, (_, i) => [`h${i}.batch.example`]));
  });

  it("lets a clashing record fail alone", async () => {
    const batcher = new DnsBatcher(50);
    fake.addRecord(zoneId, { type: "A", name: "clash.batch.example", content: "192.0.2.1" });
    const before = batchCalls();
    const outcomes = await Promise.allSettled([
      batcher.submit(api, zoneId, { posts: [cname("ok1.batch.example")] }),
      batcher.submit(api, zoneId, { posts: [cname("clash.batch.example")] }),
      batcher.submit(api, zoneId, { posts: [cname("ok2.batch.example")] }),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    const error = (outcomes[1] as PromiseRejectedResult).reason as CloudflareError;
    expect([error.code, error.reason]).toEqual([81053, "DNSRecordConflict"]);
    // The failed batch, then halves: [ok1] and [clash, ok2], which fails and splits again.
    expect(batchCalls() - before).toBe(5);
    expect([...fake.records.values()].filter((r) => r.name.startsWith("ok")).length).toBe(2);
  });

  it("finds one clash among many in about 2·log2(n) extra calls, not n", async () => {
    const batcher = new DnsBatcher(50);
    fake.addRecord(zoneId, { type: "A", name: "needle.batch.example", content: "192.0.2.2" });
    const names = Array.from({ length: 64 }, (_, i) => (i === 41 ? "needle.batch.example" : `hay${i}.batch.example`));
    const before = batchCalls();
    const outcomes = await Promise.allSettled(names.map((name) => batcher.submit(api, zoneId, { posts: [cname(name)] })));
    expect(outcomes.filter((o) => o.status === "rejected")).toHaveLength(1);
    expect(outcomes[41]?.status).toBe("rejected");
    expect(batchCalls() - before).toBe(1 + 2 * Math.log2(64));
  });

  it("fails every caller at once, without retrying one by one, when the token is refused", async () => {
    const batcher = new DnsBatcher(50);
    const refused = new CloudflareApi({ accountId: account, token: "wrong", baseURL: fake.baseUrl, budget: new CallBudget() });
    const before = batchCalls();
    const outcomes = await Promise.allSettled(["a", "b", "c", "d"].map((h) => batcher.submit(refused, zoneId, { posts: [cname(`${h}.batch.example`)] })));
    expect(outcomes.map((o) => o.status === "rejected" && (o.reason as CloudflareError).reason)).toEqual(Array(4).fill("AuthenticationFailed"));
    expect(batchCalls() - before).toBe(1);
  });
});
