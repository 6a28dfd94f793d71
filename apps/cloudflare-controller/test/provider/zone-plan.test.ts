// The zone plan's diff rules: what is created, patched and deleted, and what is left
// alone and reported. Pure: a snapshot in, changes and outcomes out.
import { describe, expect, it } from "@jest/globals";
import { createHash } from "node:crypto";
import type { DnsBatch, DnsRecord } from "../../src/provider/cloudflare-sdk.ts";
import { markContent, ZoneSnapshot } from "../../src/provider/dns.ts";
import { planZoneRecords, type PlanOwner, type WantedHostname } from "../../src/provider/zone-plan.ts";

const sha16 = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 16);
const owner: PlanOwner = { ownerId: "prod", provider: "cf", claimsUnscoped: (b) => b === sha16("shop/old") || b === "shop/older" };
const mark = (binding: string, who: { ownerId: string; provider: string } = owner) => markContent(who, binding);
let ids = 0;
const rec = (type: string, name: string, content: string, proxied = type === "CNAME"): DnsRecord => ({ id: `r${++ids}`, type, name, content, proxied });
const want = (hostname: string, binding = "shop/web", tunnelId = "t1"): WantedHostname => ({ hostname, tunnelId, binding });
/** The plan as short strings, e.g. "post CNAME a.example.com t1.cfargotunnel.com". */
function ops(batch: DnsBatch, records: DnsRecord[]): string[] {
  const byId = new Map(records.map((r) => [r.id, r]));
  return [
    ...(batch.deletes ?? []).map((d) => `delete ${byId.get(d.id)!.type} ${byId.get(d.id)!.name}`),
    ...(batch.patches ?? []).map((p) => `patch ${p.type} ${p.name} ${p.content}`),
    ...(batch.posts ?? []).map((p) => `post ${p.type} ${p.name} ${p.content}`),
  ];
}
function plan(wanted: WantedHostname[], records: DnsRecord[]) {
  const result = planZoneRecords(wanted, new ZoneSnapshot(records), owner);
  return { ops: result.changes.flatMap((c) => ops(c.batch, records)), outcomes: Object.fromEntries(result.outcomes), changes: result.changes };
}

describe("planZoneRecords", () => {
  it("creates the ownership TXT and the proxied CNAME of a new hostname; the mark names no namespace or binding", () => {
    const p = plan([want("a.example.com")], []);
    expect(p.ops).toEqual([`post TXT _ktube.a.example.com ${mark("shop/web")}`, "post CNAME a.example.com t1.cfargotunnel.com"]);
    expect(mark("shop/web")).toBe(`"heritage=ktube,owner=prod,provider=${sha16("cf")},binding=${sha16("shop/web")}"`);
    expect(p.changes[0]!.batch.posts!.find((r) => r.type === "CNAME")).toMatchObject({ proxied: true, ttl: 1 });
    expect(p.outcomes).toEqual({ "a.example.com": { ready: true } });
  });

  it("changes nothing when the records are as wanted", () => {
    const records = [rec("TXT", "_ktube.a.example.com", mark("shop/web")), rec("CNAME", "a.example.com", "t1.cfargotunnel.com")];
    expect(plan([want("a.example.com")], records)).toMatchObject({ ops: [], outcomes: { "a.example.com": { ready: true } } });
  });

  it("re-points its CNAME at another tunnel, re-marks a hostname another binding now holds, and restores proxying", () => {
    const records = [
      rec("TXT", "_ktube.a.example.com", mark("shop/web")),
      rec("CNAME", "a.example.com", "t1.cfargotunnel.com"),
      rec("TXT", "_ktube.b.example.com", mark("shop/gone")),
      rec("CNAME", "b.example.com", "t1.cfargotunnel.com"),
      rec("TXT", "_ktube.c.example.com", mark("shop/web")),
      rec("CNAME", "c.example.com", "t1.cfargotunnel.com", false),
    ];
    expect(plan([want("a.example.com", "shop/web", "t2"), want("b.example.com"), want("c.example.com")], records).ops).toEqual([
      "patch CNAME a.example.com t2.cfargotunnel.com",
      `patch TXT _ktube.b.example.com ${mark("shop/web")}`,
      "patch CNAME c.example.com t1.cfargotunnel.com",
    ]);
  });

  it("deletes its records of a hostname no longer wanted (renamed or deleted), in the same plan as the new one", () => {
    const records = [rec("TXT", "_ktube.old.example.com", mark("shop/web")), rec("CNAME", "old.example.com", "t1.cfargotunnel.com")];
    expect(plan([want("new.example.com")], records).ops).toEqual([
      `post TXT _ktube.new.example.com ${mark("shop/web")}`,
      "post CNAME new.example.com t1.cfargotunnel.com",
      "delete CNAME old.example.com",
      "delete TXT _ktube.old.example.com",
    ]);
  });

  it("finishes what a crash left: a lone TXT gets its CNAME when wanted, and goes when not; a duplicate mark goes", () => {
    const records = [
      rec("TXT", "_ktube.half.example.com", mark("shop/web")),
      rec("TXT", "_ktube.orphan.example.com", mark("shop/gone")),
      rec("TXT", "_ktube.twice.example.com", mark("shop/web")),
      rec("TXT", "_ktube.twice.example.com", mark("shop/web")),
      rec("CNAME", "twice.example.com", "t1.cfargotunnel.com"),
    ];
    expect(plan([want("half.example.com"), want("twice.example.com")], records).ops).toEqual([
      "post CNAME half.example.com t1.cfargotunnel.com",
      "delete TXT _ktube.twice.example.com",
      "delete TXT _ktube.orphan.example.com",
    ]);
  });

  it("leaves what is not its own alone and says why, per hostname", () => {
    const records = [
      rec("CNAME", "theirs.example.com", "elsewhere.example.net"),
      rec("A", "addr.example.com", "192.0.2.1"),
      rec("TXT", "_ktube.other-install.example.com", mark("shop/web", { ownerId: "staging", provider: "cf" })),
      rec("TXT", "_ktube.other-provider.example.com", mark("shop/web", { ownerId: "prod", provider: "cf-2" })),
      // Not wanted and not ours: never deleted.
      rec("TXT", "_ktube.unwanted.example.com", mark("x/y", { ownerId: "staging", provider: "cf" })),
      rec("CNAME", "unwanted.example.com", "t9.cfargotunnel.com"),
    ];
    const p = plan(["theirs", "addr", "other-install", "other-provider"].map((h) => want(`${h}.example.com`)), records);
    expect(p.ops).toEqual([]);
    expect(p.outcomes["theirs.example.com"]).toMatchObject({ ready: false, reason: "DNSRecordNotOwned", message: expect.stringContaining("elsewhere.example.net") });
    expect(p.outcomes["addr.example.com"]).toMatchObject({ ready: false, reason: "DNSRecordConflict", message: expect.stringContaining("an A record addr.example.com -> 192.0.2.1") });
    expect(p.outcomes["other-install.example.com"]).toMatchObject({ ready: false, reason: "DNSRecordNotOwned" });
    expect(p.outcomes["other-provider.example.com"]).toMatchObject({ ready: false, reason: "DNSRecordNotOwned" });
  });

  it("claims marks written before marks named a provider only when they name one of its bindings", () => {
    const records = [
      rec("TXT", "_ktube.kept.example.com", '"heritage=ktube,owner=prod,binding=' + sha16("shop/old") + '"'),
      rec("CNAME", "kept.example.com", "t1.cfargotunnel.com"),
      rec("TXT", "_ktube.clear.example.com", '"heritage=ktube,owner=prod,binding=shop/older"'),
      rec("CNAME", "clear.example.com", "t1.cfargotunnel.com"),
      rec("TXT", "_ktube.stranger.example.com", '"heritage=ktube,owner=prod,binding=' + sha16("other/app") + '"'),
      rec("CNAME", "stranger.example.com", "t1.cfargotunnel.com"),
    ];
    expect(plan([want("kept.example.com", "shop/old")], records).ops).toEqual([
      `patch TXT _ktube.kept.example.com ${mark("shop/old")}`,
      "delete CNAME clear.example.com",
      "delete TXT _ktube.clear.example.com",
    ]);
  });

  it("marks a wildcard hostname beside it (a wildcard name cannot carry a TXT of its own)", () => {
    expect(plan([want("*.apps.example.com")], []).ops).toEqual([`post TXT _ktube-wildcard.apps.example.com ${mark("shop/web")}`, "post CNAME *.apps.example.com t1.cfargotunnel.com"]);
  });
});
