// A zone plan sent to the fake Cloudflare API: chunked at the batch limit, one refused
// hostname found by bisection while the others are written, a refused token not split,
// and a zone of 1,200 records listed to its last page.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import type { DnsBatchResult } from "../../src/provider/cloudflare-sdk.ts";
import { sendZoneChanges } from "../../src/provider/dns-batch.ts";
import { ZoneRecords, ZoneSnapshot } from "../../src/provider/dns.ts";
import { CloudflareError } from "../../src/provider/errors.ts";
import { planZoneRecords, type PlanOwner } from "../../src/provider/zone-plan.ts";
import type { ZoneRef } from "../../src/provider/zones.ts";
import { callsOf, startFake, type FakeAccount } from "./fixtures.ts";

const LIST = "dns-records-for-a-zone-list-dns-records";
const BATCH = "dns-records-for-a-zone-batch-dns-records";
const owner: PlanOwner = { ownerId: "prod", provider: "cf", claimsUnscoped: () => false };

let cf: FakeAccount;
beforeAll(async () => {
  cf = await startFake();
});
afterAll(async () => {
  expect(cf.fake.schemaViolations).toEqual([]);
  await cf.stop();
});

let zones = 0;
function newZone(): ZoneRef {
  const zone = cf.fake.addZone(`z${++zones}.example.com`, cf.account);
  return { id: zone.id, name: zone.name };
}
const namesIn = (zone: ZoneRef, type: string) => [...cf.fake.records.values()].filter((r) => r.zone_id === zone.id && r.type === type).map((r) => r.name).sort();

/** Plans `hosts` on `zone` from a fresh listing and sends the plan. */
async function apply(zone: ZoneRef, hosts: string[], records = new ZoneRecords(), maxOps?: number) {
  const api = cf.api();
  const snapshot: ZoneSnapshot = await records.snapshot(api, zone);
  const plan = planZoneRecords(hosts.map((hostname) => ({ hostname, tunnelId: "t1", binding: `ns/${hostname}` })), snapshot, owner);
  const applied: DnsBatchResult[] = [];
  const refused = await sendZoneChanges(api, zone.id, plan.changes, { applied: (r) => applied.push(r), ...(maxOps ? { maxOps } : {}) });
  return { plan, refused, applied };
}

describe("sendZoneChanges", () => {
  it("sends a plan in one call per chunk, never splitting a hostname's records", async () => {
    const zone = newZone();
    const hosts = Array.from({ length: 250 }, (_, i) => `h${i}.${zone.name}`);
    const before = callsOf(cf.fake, BATCH);
    const { refused, applied } = await apply(zone, hosts, new ZoneRecords(), 200);
    expect(refused.size).toBe(0);
    expect(callsOf(cf.fake, BATCH) - before).toBe(3); // 500 operations, 200 per call
    expect(applied.map((r) => r.posts.length)).toEqual([200, 200, 100]);
    expect(namesIn(zone, "CNAME")).toEqual([...hosts].sort());
  });

  it("finds the one refused hostname among 64 in 2·log2(64) extra calls and writes the other 63", async () => {
    const zone = newZone();
    const hosts = Array.from({ length: 64 }, (_, i) => `hay${i}.${zone.name}`);
    // Appears after the listing, so the plan cannot see it: only Cloudflare's answer says so.
    const records = new ZoneRecords();
    await records.snapshot(cf.api(), zone);
    cf.fake.addRecord(zone.id, { type: "A", name: hosts[41]!, content: "192.0.2.2" });
    const before = callsOf(cf.fake, BATCH);
    const { refused } = await apply(zone, hosts, records);
    expect([...refused.keys()]).toEqual([hosts[41]]);
    expect([refused.get(hosts[41]!)!.code, refused.get(hosts[41]!)!.reason]).toEqual([81053, "DNSRecordConflict"]);
    expect(callsOf(cf.fake, BATCH) - before).toBe(1 + 2 * Math.log2(64));
    expect(namesIn(zone, "CNAME")).toEqual(hosts.filter((_, i) => i !== 41).sort());
  });

  it("throws a refused token at once: one call, nothing split", async () => {
    const zone = newZone();
    const plan = planZoneRecords(["a", "b", "c", "d"].map((h) => ({ hostname: `${h}.${zone.name}`, tunnelId: "t1", binding: "ns/b" })), new ZoneSnapshot(), owner);
    const before = callsOf(cf.fake, BATCH);
    const error = await sendZoneChanges(cf.api({ token: "wrong" }), zone.id, plan.changes, { applied: () => undefined }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CloudflareError);
    expect((error as CloudflareError).reason).toBe("AuthenticationFailed");
    expect(callsOf(cf.fake, BATCH) - before).toBe(1);
  });
});

describe("a zone with 1,200 records", () => {
  it("is listed to the last page: an A record there is in the way, and our records there are found and removed", async () => {
    const zone = newZone();
    for (let i = 0; i < 1_200; i++) cf.fake.addRecord(zone.id, { type: i % 2 ? "A" : "TXT", name: `filler-${i}.${zone.name}`, content: i % 2 ? "192.0.2.1" : `"filler ${i}"` });
    // Ours come after the filler, so on the listing's last page.
    const hosts = [`x.${zone.name}`, `y.${zone.name}`];
    await apply(zone, hosts);

    const lists = callsOf(cf.fake, LIST);
    const paged = new ZoneRecords({ recordsPerPage: 500 });
    const { plan } = await apply(zone, [...hosts, `filler-1199.${zone.name}`], paged);
    expect(callsOf(cf.fake, LIST) - lists).toBe(3); // 500 + 500 + 204, and no empty page
    expect(plan.changes).toEqual([]);
    expect(plan.outcomes.get(`filler-1199.${zone.name}`)).toMatchObject({ ready: false, reason: "DNSRecordConflict" });

    // Nothing wanted any more: only our four records go.
    await apply(zone, [], new ZoneRecords({ recordsPerPage: 500 }));
    expect([...cf.fake.records.values()].filter((r) => r.zone_id === zone.id)).toHaveLength(1_200);
  });
});
