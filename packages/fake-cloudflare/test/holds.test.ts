// Commit-then-hang: a held request changes Cloudflare's state but its answer is withheld
// (until release, or for good); the client may die meanwhile. And random 5xx faults,
// on Access as on everything else.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import Cloudflare from "cloudflare";
import { spawn } from "node:child_process";
import { once } from "node:events";
import type { FakeCloudflare } from "../src/index.ts";
import { apiError, eventually, startFake, TOKEN } from "./support.ts";

let fake: FakeCloudflare;
let cf: Cloudflare;
let account: string;
let zoneId: string;

beforeAll(async () => {
  ({ fake, cf, account } = await startFake());
  zoneId = fake.addZone("hold.example", account).id;
});
afterEach(() => {
  fake.configure({ faultRate: 0 });
  expect(fake.schemaViolations).toEqual([]);
});
afterAll(() => fake.stop());

/** A promise's state without waiting for it. */
function track<T>(p: Promise<T>): { settled: () => boolean; promise: Promise<T> } {
  let settled = false;
  const promise = p.finally(() => (settled = true));
  return { settled: () => settled, promise };
}

describe("hold", () => {
  it("applies the request, withholds the answer until release, then answers what was committed", async () => {
    const held = fake.hold("tunnels.create");
    const call = track(cf.zeroTrust.tunnels.cloudflared.create({ account_id: account, name: "held", config_src: "cloudflare" }));
    const record = await held.arrived;
    expect(record).toMatchObject({ name: "tunnels.create", operation: "cloudflare-tunnel-create-a-cloudflare-tunnel", status: 200, held: true });
    expect(record.answeredAt).toBeUndefined();
    // Committed at Cloudflare, unknown to the client.
    const committed = fake.liveTunnels().find((t) => t.name === "held");
    expect(committed).toBeDefined();
    expect(call.settled()).toBe(false);
    held.release();
    const created = await call.promise;
    expect(created.id).toBe(committed!.id);
    expect(record.answeredAt).toBeGreaterThanOrEqual(record.at);
    held.release(); // a second release is harmless
  });

  it("holds a Cloudflare error answer too, and matches by operationId, by the REST spelling or by predicate", async () => {
    await cf.zeroTrust.tunnels.cloudflared.create({ account_id: account, name: "taken", config_src: "cloudflare" });
    const byId = fake.hold("cloudflare-tunnel-create-a-cloudflare-tunnel");
    const failing = apiError(cf.zeroTrust.tunnels.cloudflared.create({ account_id: account, name: "taken" }));
    expect((await byId.arrived).status).toBe(409);
    byId.release();
    expect(await failing).toMatchObject({ status: 409, code: 1013 });

    const batch = fake.hold("dns_records.batch");
    const posting = cf.dns.records.batch({ zone_id: zoneId, posts: [{ type: "A", name: "b.hold.example", content: "192.0.2.1", ttl: 1 }] });
    expect((await batch.arrived).name).toBe("dns.records.batch");
    expect([...fake.records.values()].map((r) => r.name)).toContain("b.hold.example");
    batch.release();
    await posting;

    const byPredicate = fake.hold((r) => r.name === "dns.records.create" && r.body?.name === "p2.hold.example");
    await cf.dns.records.create({ zone_id: zoneId, type: "A", name: "p1.hold.example", content: "192.0.2.1", ttl: 1 }); // not matched: answered at once
    const second = cf.dns.records.create({ zone_id: zoneId, type: "A", name: "p2.hold.example", content: "192.0.2.2", ttl: 1 });
    expect((await byPredicate.arrived).path).toBe(`/zones/${zoneId}/dns_records`);
    byPredicate.release();
    await second;
  });

  it("released before any request matched, disarms itself", async () => {
    const unused = fake.hold("tunnels.delete");
    unused.release();
    const t = await cf.zeroTrust.tunnels.cloudflared.create({ account_id: account, name: "not-held", config_src: "cloudflare" });
    expect((await cf.zeroTrust.tunnels.cloudflared.delete(t.id!, { account_id: account })).deleted_at).toBeTruthy();
  });

  it("with neverAnswer, commits and never answers: the client times out, and the fake carries on", async () => {
    const hung = fake.hold("access.applications.create", { neverAnswer: true });
    const impatient = new Cloudflare({ apiToken: TOKEN, baseURL: fake.baseUrl, maxRetries: 0, timeout: 300 });
    const call = impatient.zeroTrust.access.applications.create({ account_id: account, type: "self_hosted", domain: "hung.hold.example", name: "hung" });
    // The SDK aborts at its timeout. (It means to throw APIConnectionTimeoutError, its
    // subclass, but under Jest's VM contexts the abort error fails its realm-bound check.)
    await expect(call).rejects.toBeInstanceOf(Cloudflare.APIConnectionError);
    const record = await hung.arrived;
    expect([...fake.apps.values()].map((a) => a.domain)).toEqual(["hung.hold.example"]);
    await eventually(() => expect(record.abandoned).toBe(true)); // the client closed its socket
    expect(record.answeredAt).toBeUndefined();
    hung.release(); // closes nothing that is still open; must not throw
    expect((await cf.user.tokens.verify()).status).toBe("active");
  });

  it("with neverAnswer, release() drops the connection of a client that is still waiting", async () => {
    const hung = fake.hold("tunnels.create", { neverAnswer: true });
    const call = fetch(`${fake.baseUrl}/accounts/${account}/cfd_tunnel`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name: "dropped", config_src: "cloudflare" }),
    });
    const record = await hung.arrived;
    hung.release();
    await expect(call).rejects.toThrow(/fetch failed/);
    expect(record.answeredAt).toBeUndefined();
    expect(fake.liveTunnels().map((t) => t.name)).toContain("dropped");
  });

  it("survives its client being killed with SIGKILL while the answer is held", async () => {
    const held = fake.hold("dns.records.create");
    const script = `fetch(${JSON.stringify(`${fake.baseUrl}/zones/${zoneId}/dns_records`)}, {
      method: "POST",
      headers: { Authorization: "Bearer ${TOKEN}", "Content-Type": "application/json" },
      body: JSON.stringify({ type: "CNAME", name: "killed.hold.example", content: "t.cfargotunnel.com", ttl: 1, proxied: true }),
    }).then(() => console.log("answered"));
    setInterval(() => {}, 1000);`;
    const client = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    let output = "";
    client.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const record = await held.arrived;
    expect([...fake.records.values()].filter((r) => r.name === "killed.hold.example")).toHaveLength(1);
    client.kill("SIGKILL");
    await once(client, "exit");
    await eventually(() => expect(record.abandoned).toBe(true));
    held.release(); // the answer has nowhere to go
    expect(output).toBe("");
    expect(record.answeredAt).toBeUndefined();
    // The next run finds what the dead one made.
    const found = await cf.dns.records.list({ zone_id: zoneId, name: { exact: "killed.hold.example" } });
    expect(found.result).toHaveLength(1);
  });
});

describe("random faults", () => {
  it("apply to Access as to everything else: half of them after the application was made", async () => {
    fake.configure({ faultRate: 1 });
    const before = fake.apps.size;
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await apiError(cf.zeroTrust.access.applications.create({ account_id: account, type: "self_hosted", domain: `f${i}.hold.example`, name: `f${i}` }))).status);
    }
    expect(statuses.sort()).toEqual([502, 502, 503, 503]);
    expect(fake.apps.size - before).toBe(2);
  });

  it("stay off a held request, which commits and answers as Cloudflare would", async () => {
    fake.configure({ faultRate: 1 });
    const held = fake.hold("access.policies.create");
    const call = cf.zeroTrust.access.policies.create({ account_id: account, name: "held", decision: "allow", include: [{ everyone: {} }] });
    await held.arrived;
    held.release();
    expect((await call).name).toBe("held");
  });
});
