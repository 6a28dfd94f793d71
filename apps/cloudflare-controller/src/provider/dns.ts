// DNS records for a binding's hostnames: a proxied CNAME to the tunnel plus a TXT
// record that marks it as KTube's (like external-dns's registry). A record without
// our TXT is someone else's: it is reported, never changed.
import { RequeueAfterError } from "@ktube/runtime";
import type { CloudflareApi } from "./api.ts";
import type { BatchOps, BatchResult, DnsBatcher } from "./dns-batcher.ts";
import type { ZoneRef } from "./zones.ts";

/** What the DNS functions work with: the API, the zone snapshots and the batcher of one account. */
export interface DnsAccount {
  api: CloudflareApi;
  records: ZoneRecords;
  batcher: DnsBatcher;
}

export interface DnsRecordLike {
  id: string;
  name: string;
  type: string;
  content: string;
  proxied?: boolean;
}

export interface Owner {
  /** Distinguishes KTube installations sharing a zone (--owner-id). */
  ownerId: string;
  /** namespace/name of the binding. */
  binding: string;
}

export const tunnelTarget = (tunnelId: string): string => `${tunnelId}.cfargotunnel.com`;

/** Where the ownership record of `hostname` lives (wildcards cannot carry a TXT of their own). */
export const ownershipRecordName = (hostname: string): string =>
  hostname.startsWith("*.") ? `_ktube-wildcard.${hostname.slice(2)}` : `_ktube.${hostname}`;

export const ownershipContent = (owner: Owner): string => `"heritage=ktube,owner=${owner.ownerId},binding=${owner.binding}"`;

const RECORDS_PER_PAGE = 5000;

/**
 * A snapshot of the CNAME and TXT records of each zone, refreshed at most every
 * `ttlMs` and kept current with our own writes: a thousand bindings in one zone cost
 * one list call, not a thousand. Concurrent readers share one refresh, and writes made
 * while a refresh is under way are laid over its result, so a snapshot never loses a
 * record we wrote (which would make a deletion miss it and leak it).
 */
export class ZoneRecords {
  private readonly zones = new Map<string, { records: Map<string, DnsRecordLike>; at: number }>();
  private readonly refreshing = new Map<string, Promise<Map<string, DnsRecordLike>>>();
  private readonly writes = new Map<string, Array<{ at: number; apply: (records: Map<string, DnsRecordLike>) => void }>>();
  private readonly ttlMs: number;

  constructor(ttlMs = 5 * 60_000) {
    this.ttlMs = ttlMs;
  }

  async records(api: CloudflareApi, zone: ZoneRef): Promise<Map<string, DnsRecordLike>> {
    const cached = this.zones.get(zone.id);
    if (cached && Date.now() - cached.at < this.ttlMs) return cached.records;
    const running = this.refreshing.get(zone.id);
    if (running) return running;
    const started = Date.now();
    const refresh = this.list(api, zone).then(
      (records) => {
        const writes = (this.writes.get(zone.id) ?? []).filter((w) => w.at >= started);
        for (const w of writes) w.apply(records);
        this.writes.set(zone.id, writes);
        if (this.refreshing.get(zone.id) === refresh) {
          this.zones.set(zone.id, { records, at: Date.now() });
          this.refreshing.delete(zone.id);
        }
        return records;
      },
      (error: unknown) => {
        if (this.refreshing.get(zone.id) === refresh) this.refreshing.delete(zone.id);
        throw error;
      },
    );
    this.refreshing.set(zone.id, refresh);
    return refresh;
  }

  /** Records a change we made, in the snapshot and in any refresh under way. */
  applyWrite(zoneId: string, apply: (records: Map<string, DnsRecordLike>) => void): void {
    const cached = this.zones.get(zoneId);
    if (cached) apply(cached.records);
    const writes = this.writes.get(zoneId) ?? [];
    writes.push({ at: Date.now(), apply });
    this.writes.set(zoneId, writes);
  }

  /** Drops the snapshot: after a failed write nobody knows what the zone holds. */
  forget(zoneId: string): void {
    this.zones.delete(zoneId);
    this.refreshing.delete(zoneId);
  }

  private async list(api: CloudflareApi, zone: ZoneRef): Promise<Map<string, DnsRecordLike>> {
    const list = async (type: "CNAME" | "TXT") =>
      api.all("dns.records.list", (sdk) => sdk.dns.records.list({ zone_id: zone.id, type, per_page: RECORDS_PER_PAGE }), RECORDS_PER_PAGE);
    const records = new Map<string, DnsRecordLike>();
    for (const r of [...(await list("CNAME")), ...(await list("TXT"))]) {
      records.set(r.id, { id: r.id, name: r.name, type: r.type, content: String(r.content ?? ""), proxied: r.proxied ?? false });
    }
    return records;
  }
}

export type DnsOutcome =
  | { kind: "unchanged" }
  | { kind: "written" }
  | { kind: "notOwned"; message: string };

/** Makes `hostname` a proxied CNAME to the tunnel, owned by `owner`; written through the batcher when something must change. */
export async function ensureDnsRecord(account: DnsAccount, zone: ZoneRef, hostname: string, tunnelId: string, owner: Owner): Promise<DnsOutcome> {
  const snapshot = await account.records.records(account.api, zone);
  const records = [...snapshot.values()];
  const txtName = ownershipRecordName(hostname);
  const ours = ownershipContent(owner);
  const txt = records.filter((r) => r.type === "TXT" && r.name === txtName);
  const cname = records.find((r) => r.type === "CNAME" && r.name === hostname);
  const ownedTxt = txt.find((r) => r.content === ours);
  const foreignTxt = txt.find((r) => r.content.startsWith('"heritage=ktube,') && r.content !== ours);
  if (!ownedTxt && foreignTxt) {
    return { kind: "notOwned", message: `DNS record ${hostname} belongs to another KTube owner (${foreignTxt.content}); it is left alone` };
  }
  if (cname && !ownedTxt) {
    return { kind: "notOwned", message: `a CNAME record ${hostname} -> ${cname.content} exists and was not made by KTube; it is left alone` };
  }
  const target = tunnelTarget(tunnelId);
  if (cname && cname.content === target && cname.proxied) return { kind: "unchanged" };

  const comment = `managed by KTube (${owner.binding})`;
  const cnameBody = { type: "CNAME" as const, name: hostname, content: target, proxied: true, ttl: 1 as const, comment };
  // The ownership TXT goes first: a crash in between leaves a record we can still claim.
  const result = await submit(account, zone.id, {
    ...(cname ? { patches: [{ id: cname.id, ...cnameBody }] } : {}),
    posts: [...(ownedTxt ? [] : [{ type: "TXT" as const, name: txtName, content: ours, ttl: 1 as const, comment }]), ...(cname ? [] : [cnameBody])],
  });
  account.records.applyWrite(zone.id, (records) => {
    for (const r of [...result.posts, ...result.patches]) {
      records.set(r.id, { id: r.id, name: r.name, type: r.type, content: String(r.content ?? ""), proxied: r.proxied ?? false });
    }
  });
  return { kind: "written" };
}

/** Removes `hostname`'s CNAME and ownership TXT if they are ours; anything else stays. */
export async function deleteDnsRecord(account: DnsAccount, zone: ZoneRef, hostname: string, owner: Owner): Promise<boolean> {
  const snapshot = await account.records.records(account.api, zone);
  const records = [...snapshot.values()];
  const ownedTxt = records.find((r) => r.type === "TXT" && r.name === ownershipRecordName(hostname) && r.content === ownershipContent(owner));
  if (!ownedTxt) return false;
  const cname = records.find((r) => r.type === "CNAME" && r.name === hostname);
  const deletes = [ownedTxt, ...(cname ? [cname] : [])];
  await submit(account, zone.id, { deletes: deletes.map((r) => ({ id: r.id })) });
  account.records.applyWrite(zone.id, (records) => {
    for (const r of deletes) records.delete(r.id);
  });
  return true;
}

/**
 * A batched write. When it fails after reaching Cloudflare, the zone's snapshot is
 * dropped: the write may or may not have happened. A call that never went out (the
 * budget was spent, or a 429) leaves the snapshot alone; re-listing then would only
 * spend more of the budget.
 */
async function submit(account: DnsAccount, zoneId: string, ops: BatchOps): Promise<BatchResult> {
  try {
    return await account.batcher.submit(account.api, zoneId, ops);
  } catch (error) {
    if (!(error instanceof RequeueAfterError)) account.records.forget(zoneId);
    throw error;
  }
}

/** Every hostname `owner` holds in `zone`, found from the ownership TXT records. */
export async function ownedHostnames(account: DnsAccount, zone: ZoneRef, owner: Owner): Promise<string[]> {
  const ours = ownershipContent(owner);
  return [...(await account.records.records(account.api, zone)).values()]
    .filter((r) => r.type === "TXT" && r.content === ours)
    .map((r) => (r.name.startsWith("_ktube-wildcard.") ? `*.${r.name.slice("_ktube-wildcard.".length)}` : r.name.slice("_ktube.".length)));
}
