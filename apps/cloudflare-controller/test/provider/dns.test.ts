// DNS records of a binding: hashed ownership TXT, the whole zone listed to its last
// page, records in the way reported before any write.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { createHash } from "node:crypto";
import { DnsBatcher } from "../../src/provider/dns-batcher.ts";
import { deleteDnsRecord, ensureDnsRecord, ownedHostnames, ownershipContent, ZoneRecords, type DnsSession, type Owner } from "../../src/provider/dns.ts";
import type { ZoneRef } from "../../src/provider/zones.ts";
import { callsOf, startFake, type FakeAccount } from "./fixtures.ts";

const LIST = "dns-records-for-a-zone-list-dns-records";
const BATCH = "dns-records-for-a-zone-batch-dns-records";

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

const session = (records = new ZoneRecords()): DnsSession => ({ api: cf.api(), records, batcher: new DnsBatcher(20) });
const owner: Owner = { ownerId: "prod", binding: "shop/web" };
const sha16 = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 16);
const recordsNamed = (name: string) => [...cf.fake.records.values()].filter((r) => r.name === name);

describe("ownership TXT", () => {
  it("names no namespace or binding: owner and a 16-hex fingerprint of namespace/name", async () => {
    const zone = newZone();
    const host = `shop.${zone.name}`;
    expect(await ensureDnsRecord(session(), zone, host, "tunnel-1", owner)).toEqual({ kind: "written" });
    const [txt] = recordsNamed(`_ktube.${host}`);
    expect(txt?.content).toBe(`"heritage=ktube,owner=prod,binding=${sha16("shop/web")}"`);
    expect(ownershipContent(owner)).toBe(txt?.content);
    for (const r of [...recordsNamed(host), ...recordsNamed(`_ktube.${host}`)]) {
      expect(`${r.content} ${r.comment ?? ""}`).not.toMatch(/shop\/web/);
    }
    expect(recordsNamed(host)[0]).toMatchObject({ type: "CNAME", content: "tunnel-1.cfargotunnel.com", proxied: true });
    expect(await ownedHostnames(session(), zone, owner)).toEqual([host]);
    expect(await ownedHostnames(session(), zone, { ...owner, binding: "shop/other" })).toEqual([]);
  });

  it("is unchanged on a second ensure, and deletion removes both records", async () => {
    const zone = newZone();
    const host = `*.apps.${zone.name}`;
    const s = session();
    await ensureDnsRecord(s, zone, host, "tunnel-1", owner);
    const batches = callsOf(cf.fake, BATCH);
    expect(await ensureDnsRecord(s, zone, host, "tunnel-1", owner)).toEqual({ kind: "unchanged" });
    expect(callsOf(cf.fake, BATCH)).toBe(batches);
    expect(await ownedHostnames(session(), zone, owner)).toEqual([host]);
    expect(await deleteDnsRecord(s, zone, host, owner)).toBe(true);
    expect([...recordsNamed(host), ...recordsNamed(`_ktube-wildcard.apps.${zone.name}`)]).toEqual([]);
  });

  it("recognises the clear-text TXT of earlier versions as ours and rewrites it hashed", async () => {
    const zone = newZone();
    const host = `legacy.${zone.name}`;
    cf.fake.addRecord(zone.id, { type: "TXT", name: `_ktube.${host}`, content: '"heritage=ktube,owner=prod,binding=shop/web"' });
    cf.fake.addRecord(zone.id, { type: "CNAME", name: host, content: "tunnel-1.cfargotunnel.com", proxied: true });
    expect(await ownedHostnames(session(), zone, owner)).toEqual([host]);
    expect(await ensureDnsRecord(session(), zone, host, "tunnel-1", owner)).toEqual({ kind: "written" });
    expect(recordsNamed(`_ktube.${host}`).map((r) => r.content)).toEqual([ownershipContent(owner)]);
  });
});

describe("records in the way", () => {
  it("reports an A record at the hostname as DNSRecordConflict before any write", async () => {
    const zone = newZone();
    const host = `a-record.${zone.name}`;
    cf.fake.addRecord(zone.id, { type: "A", name: host, content: "192.0.2.10" });
    const batches = callsOf(cf.fake, BATCH);
    const outcome = await ensureDnsRecord(session(), zone, host, "tunnel-1", owner);
    expect(outcome).toMatchObject({ kind: "notOwned", reason: "DNSRecordConflict" });
    expect(outcome.kind === "notOwned" && outcome.message).toMatch(/A record/);
    expect(callsOf(cf.fake, BATCH)).toBe(batches);
    expect(recordsNamed(`_ktube.${host}`)).toEqual([]);
  });

  it("reports Cloudflare's 81053 (an AAAA record appeared after the listing) as DNSRecordConflict, and sees it next time", async () => {
    const zone = newZone();
    const host = `late.${zone.name}`;
    const s = session();
    expect(await ownedHostnames(s, zone, owner)).toEqual([]); // the snapshot is taken
    cf.fake.addRecord(zone.id, { type: "AAAA", name: host, content: "2001:db8::1" });
    const batches = callsOf(cf.fake, BATCH);
    expect(await ensureDnsRecord(s, zone, host, "tunnel-1", owner)).toMatchObject({ kind: "notOwned", reason: "DNSRecordConflict" });
    expect(callsOf(cf.fake, BATCH)).toBe(batches + 1);
    expect(recordsNamed(`_ktube.${host}`)).toEqual([]); // the batch was all or nothing
    // The failed write dropped the snapshot: the next ensure lists again and reports without writing.
    expect(await ensureDnsRecord(s, zone, host, "tunnel-1", owner)).toMatchObject({ kind: "notOwned", reason: "DNSRecordConflict" });
    expect(callsOf(cf.fake, BATCH)).toBe(batches + 1);
  });

  it("reports a CNAME without our TXT, and another binding's TXT, as DNSRecordNotOwned", async () => {
    const zone = newZone();
    cf.fake.addRecord(zone.id, { type: "CNAME", name: `theirs.${zone.name}`, content: "elsewhere.example.net" });
    expect(await ensureDnsRecord(session(), zone, `theirs.${zone.name}`, "tunnel-1", owner)).toMatchObject({ kind: "notOwned", reason: "DNSRecordNotOwned" });
    await ensureDnsRecord(session(), zone, `taken.${zone.name}`, "tunnel-1", { ownerId: "prod", binding: "other/app" });
    const outcome = await ensureDnsRecord(session(), zone, `taken.${zone.name}`, "tunnel-1", owner);
    expect(outcome).toMatchObject({ kind: "notOwned", reason: "DNSRecordNotOwned" });
    expect(outcome.kind === "notOwned" && outcome.message).not.toMatch(/other\/app/);
    expect(await deleteDnsRecord(session(), zone, `taken.${zone.name}`, owner)).toBe(false);
    expect(recordsNamed(`taken.${zone.name}`)).toHaveLength(1);
  });
});

describe("a zone with 1,200 records", () => {
  it("is listed to the last page, so records past the first page are found and cleaned up", async () => {
    const zone = newZone();
    for (let i = 0; i < 1_200; i++) cf.fake.addRecord(zone.id, { type: i % 2 ? "A" : "TXT", name: `filler-${i}.${zone.name}`, content: i % 2 ? "192.0.2.1" : `"filler ${i}"` });
    // Ours come after the filler, so on the listing's last page.
    const hosts = [`x.${zone.name}`, `y.${zone.name}`];
    for (const host of hosts) await ensureDnsRecord(session(), zone, host, "tunnel-1", owner);

    const lists = callsOf(cf.fake, LIST);
    const paged = session(new ZoneRecords({ recordsPerPage: 500 }));
    expect((await ownedHostnames(paged, zone, owner)).sort()).toEqual(hosts);
    expect(callsOf(cf.fake, LIST) - lists).toBe(3); // 500 + 500 + 204, and no empty page

    // With the default page size (more than a server may return per page) as well.
    expect((await ownedHostnames(session(), zone, owner)).sort()).toEqual(hosts);
    // An A record on the last page is in the way too.
    expect(await ensureDnsRecord(paged, zone, `filler-1199.${zone.name}`, "tunnel-1", owner)).toMatchObject({ reason: "DNSRecordConflict" });

    for (const host of hosts) expect(await deleteDnsRecord(paged, zone, host, owner)).toBe(true);
    expect([...cf.fake.records.values()].filter((r) => r.zone_id === zone.id)).toHaveLength(1_200);
  });
});
