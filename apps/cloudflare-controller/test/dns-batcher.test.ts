// DNS changes of many bindings share batch calls, and one bad record fails only itself.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { FakeCloudflare } from "@ktube/fake-cloudflare";
import { CallBudget, CloudflareApi, CloudflareError } from "../src/provider/api.ts";
import { DnsBatcher } from "../src/provider/dns-batcher.ts";

let fake: FakeCloudflare;
let api: CloudflareApi;
let zoneId: string;

beforeAll(async () => {
  fake = new FakeCloudflare();
  const account = fake.addAccount();
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
    expect(((outcomes[1] as PromiseRejectedResult).reason as CloudflareError).code).toBe(81053);
    expect(batchCalls() - before).toBe(4); // the failed batch, then one per hostname
    expect([...fake.records.values()].filter((r) => r.name.startsWith("ok")).length).toBe(2);
  });
});
