// DNS records for a binding's hostnames: a proxied CNAME to the tunnel plus a TXT
// record that marks it as KTube's (like external-dns's registry). A record without
// our TXT is someone else's: it is reported, never changed. The TXT is public DNS, so
// it names no namespace or object: `heritage=ktube,owner=<ownerId>,binding=<fingerprint>`.
import { ProviderRateLimited } from "@ktube/provider-kit";
import type { CloudflareApi } from "./api.ts";
import { dnsRecordPages, type DnsBatch, type DnsBatchResult, type DnsRecord, type RecordBody } from "./cloudflare-sdk.ts";
import type { DnsBatcher } from "./dns-batcher.ts";
import { CloudflareError } from "./errors.ts";
import { bindingFingerprint } from "./ownership.ts";
import type { ZoneRef } from "./zones.ts";

export type { DnsRecord } from "./cloudflare-sdk.ts";

/** What the DNS functions work with: the API, the zone snapshots and the batcher of one session. */
export interface DnsSession {
  api: CloudflareApi;
  records: ZoneRecords;
  batcher: DnsBatcher;
}

export interface Owner {
  /** Distinguishes KTube installations sharing a zone (--owner-id). */
  ownerId: string;
  /** `namespace/name` of the binding; only its fingerprint leaves the cluster. */
  binding: string;
}

export const tunnelTarget = (tunnelId: string): string => `${tunnelId}.cfargotunnel.com`;

/** Where the ownership record of `hostname` lives (wildcards cannot carry a TXT of their own). */
export const ownershipRecordName = (hostname: string): string =>
  hostname.startsWith("*.") ? `_ktube-wildcard.${hostname.slice(2)}` : `_ktube.${hostname}`;

const hostnameOfOwnershipRecord = (name: string): string =>
  name.startsWith("_ktube-wildcard.") ? `*.${name.slice("_ktube-wildcard.".length)}` : name.slice("_ktube.".length);

/** The ownership TXT's content (quoted, as Cloudflare stores TXT content). */
export const ownershipContent = (owner: Owner): string =>
  `"heritage=ktube,owner=${owner.ownerId},binding=${bindingFingerprint(owner.binding)}"`;

/**
 * The content earlier versions wrote (the binding's key in clear). Still recognised as
 * ours, and rewritten to the hashed form the next time the binding is reconciled.
 */
const legacyOwnershipContent = (owner: Owner): string => `"heritage=ktube,owner=${owner.ownerId},binding=${owner.binding}"`;

const isOwnershipOf = (record: DnsRecord, owner: Owner): boolean =>
  record.type === "TXT" && (record.content === ownershipContent(owner) || record.content === legacyOwnershipContent(owner));

const isKtubeMark = (record: DnsRecord): boolean => record.type === "TXT" && record.content.startsWith('"heritage=ktube,');

/** Records that cannot live next to a CNAME of the same name. */
const ADDRESS_TYPES: ReadonlySet<string> = new Set(["A", "AAAA"]);

/** Records per list call. The schema allows up to 5,000,000; 5000 keeps one answer a few MB. */
export const RECORDS_PER_PAGE = 5000;

/** A zone's records, by id and by name. */
export class ZoneSnapshot {
  private readonly byId = new Map<string, DnsRecord>();
  private readonly byName = new Map<string, Map<string, DnsRecord>>();

  constructor(records: Iterable<DnsRecord> = []) {
    for (const record of records) this.put(record);
  }

  put(record: DnsRecord): void {
    this.remove(record.id);
    this.byId.set(record.id, record);
    const key = record.name.toLowerCase();
    const named = this.byName.get(key) ?? new Map<string, DnsRecord>();
    named.set(record.id, record);
    this.byName.set(key, named);
  }

  remove(id: string): void {
    const old = this.byId.get(id);
    if (!old) return;
    this.byId.delete(id);
    const key = old.name.toLowerCase();
    const named = this.byName.get(key);
    named?.delete(id);
    if (named?.size === 0) this.byName.delete(key);
  }

  /** Every record named `name`, of any type. */
  at(name: string): DnsRecord[] {
    return [...(this.byName.get(name.toLowerCase())?.values() ?? [])];
  }

  all(): IterableIterator<DnsRecord> {
    return this.byId.values();
  }

  get size(): number {
    return this.byId.size;
  }
}

export interface ZoneRecordsOptions {
  /** How long a listing is trusted (our own writes keep it current meanwhile). */
  ttlMs?: number;
  recordsPerPage?: number;
}

/**
 * A snapshot of every record of each zone (all types: an A record in the way of a
 * CNAME must be seen before writing), listed to the last page, refreshed at most every
 * `ttlMs` and kept current with our own writes: a thousand bindings in one zone cost
 * one listing, not a thousand. Concurrent readers share one refresh, and writes made
 * while a refresh is under way are laid over its result, so a snapshot never loses a
 * record we wrote (which would make a deletion miss it and leak it).
 */
export class ZoneRecords {
  private readonly zones = new Map<string, { snapshot: ZoneSnapshot; at: number }>();
  private readonly refreshing = new Map<string, Promise<ZoneSnapshot>>();
  private readonly writes = new Map<string, Array<{ at: number; apply: (snapshot: ZoneSnapshot) => void }>>();
  private readonly ttlMs: number;
  private readonly recordsPerPage: number;

  constructor(options: ZoneRecordsOptions = {}) {
    this.ttlMs = options.ttlMs ?? 5 * 60_000;
    this.recordsPerPage = options.recordsPerPage ?? RECORDS_PER_PAGE;
  }

  async snapshot(api: CloudflareApi, zone: ZoneRef): Promise<ZoneSnapshot> {
    const cached = this.zones.get(zone.id);
    if (cached && Date.now() - cached.at < this.ttlMs) return cached.snapshot;
    const running = this.refreshing.get(zone.id);
    if (running) return running;
    const started = Date.now();
    const refresh = this.list(api, zone).then(
      (snapshot) => {
        const writes = (this.writes.get(zone.id) ?? []).filter((w) => w.at >= started);
        for (const w of writes) w.apply(snapshot);
        this.writes.set(zone.id, writes);
        if (this.refreshing.get(zone.id) === refresh) {
          this.zones.set(zone.id, { snapshot, at: Date.now() });
          this.refreshing.delete(zone.id);
        }
        return snapshot;
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
  applyWrite(zoneId: string, apply: (snapshot: ZoneSnapshot) => void): void {
    const cached = this.zones.get(zoneId);
    if (cached) apply(cached.snapshot);
    const writes = this.writes.get(zoneId) ?? [];
    writes.push({ at: Date.now(), apply });
    this.writes.set(zoneId, writes);
  }

  /** Drops the snapshot: after a failed write nobody knows what the zone holds. */
  forget(zoneId: string): void {
    this.zones.delete(zoneId);
    this.refreshing.delete(zoneId);
  }

  private async list(api: CloudflareApi, zone: ZoneRef): Promise<ZoneSnapshot> {
    return new ZoneSnapshot(await api.all("dns.records.list", (sdk) => dnsRecordPages(sdk, zone.id, this.recordsPerPage)));
  }
}

export type DnsOutcome =
  | { kind: "unchanged" }
  | { kind: "written" }
  /**
   * A record we did not make is in the way, and stays: `DNSRecordConflict` for a record
   * of another type at the name (an A record where our CNAME would go),
   * `DNSRecordNotOwned` for a CNAME or ownership TXT without our mark.
   */
  | { kind: "notOwned"; reason: "DNSRecordConflict" | "DNSRecordNotOwned"; message: string };

/**
 * Makes `hostname` a proxied CNAME to the tunnel, owned by `owner`. Anything in the way
 * is reported before any write; otherwise the changes go through the batcher (none
 * when everything is as it should be). Cloudflare's own "a record with that host
 * already exists" answer is reported the same way.
 */
export async function ensureDnsRecord(session: DnsSession, zone: ZoneRef, hostname: string, tunnelId: string, owner: Owner): Promise<DnsOutcome> {
  const snapshot = await session.records.snapshot(session.api, zone);
  const ours = ownershipContent(owner);
  const txtName = ownershipRecordName(hostname);
  const marks = snapshot.at(txtName).filter(isKtubeMark);
  const ownedTxt = marks.find((r) => isOwnershipOf(r, owner));
  if (!ownedTxt && marks.length > 0) {
    return notOwned("DNSRecordNotOwned", `DNS record ${hostname} is marked as another KTube binding's (${txtName}); it is left alone`);
  }
  const atHost = snapshot.at(hostname);
  const address = atHost.find((r) => ADDRESS_TYPES.has(r.type));
  if (address) {
    return notOwned("DNSRecordConflict", `an ${address.type} record ${hostname} -> ${address.content} exists, so no CNAME to the tunnel can be added; it is left alone`);
  }
  const cname = atHost.find((r) => r.type === "CNAME");
  if (cname && !ownedTxt) {
    return notOwned("DNSRecordNotOwned", `a CNAME record ${hostname} -> ${cname.content} exists and was not made by KTube; it is left alone`);
  }
  const target = tunnelTarget(tunnelId);
  const txtCurrent = ownedTxt?.content === ours;
  if (txtCurrent && cname?.content === target && cname.proxied) return { kind: "unchanged" };

  const comment = `managed by KTube (owner ${owner.ownerId}, binding ${bindingFingerprint(owner.binding)})`;
  const cnameBody: RecordBody = { type: "CNAME", name: hostname, content: target, proxied: true, ttl: 1, comment };
  const txtBody: RecordBody = { type: "TXT", name: txtName, content: ours, ttl: 1, comment };
  const posts: RecordBody[] = [];
  const patches: Array<RecordBody & { id: string }> = [];
  // The ownership TXT goes first: a crash in between leaves a record we can still claim.
  if (!ownedTxt) posts.push(txtBody);
  else if (!txtCurrent) patches.push({ id: ownedTxt.id, ...txtBody });
  if (cname) patches.push({ id: cname.id, ...cnameBody });
  else posts.push(cnameBody);

  let result: DnsBatchResult;
  try {
    result = await submit(session, zone.id, { posts, patches });
  } catch (error) {
    if (error instanceof CloudflareError && error.reason === "DNSRecordConflict") return notOwned("DNSRecordConflict", error.message);
    throw error;
  }
  session.records.applyWrite(zone.id, (s) => {
    for (const r of [...result.posts, ...result.patches]) s.put(r);
  });
  return { kind: "written" };
}

const notOwned = (reason: "DNSRecordConflict" | "DNSRecordNotOwned", message: string): DnsOutcome => ({ kind: "notOwned", reason, message });

/** Removes `hostname`'s CNAME and ownership TXT if they are ours; anything else stays. Returns whether it removed anything. */
export async function deleteDnsRecord(session: DnsSession, zone: ZoneRef, hostname: string, owner: Owner): Promise<boolean> {
  const snapshot = await session.records.snapshot(session.api, zone);
  const ownedTxt = snapshot.at(ownershipRecordName(hostname)).find((r) => isOwnershipOf(r, owner));
  if (!ownedTxt) return false;
  const cname = snapshot.at(hostname).find((r) => r.type === "CNAME");
  const deletes = [...(cname ? [cname] : []), ownedTxt];
  await submit(session, zone.id, { deletes: deletes.map((r) => ({ id: r.id })) });
  session.records.applyWrite(zone.id, (s) => {
    for (const r of deletes) s.remove(r.id);
  });
  return true;
}

/**
 * A batched write. When it fails after reaching Cloudflare, the zone's snapshot is
 * dropped: the write may or may not have happened. A call that never went out (the
 * budget was spent, or a 429) leaves the snapshot alone; re-listing then would only
 * spend more of the budget.
 */
async function submit(session: DnsSession, zoneId: string, batch: DnsBatch): Promise<DnsBatchResult> {
  try {
    return await session.batcher.submit(session.api, zoneId, batch);
  } catch (error) {
    if (!(error instanceof ProviderRateLimited)) session.records.forget(zoneId);
    throw error;
  }
}

/** Every hostname `owner` holds in `zone`, found from the ownership TXT records. */
export async function ownedHostnames(session: DnsSession, zone: ZoneRef, owner: Owner): Promise<string[]> {
  const snapshot = await session.records.snapshot(session.api, zone);
  const hostnames: string[] = [];
  for (const r of snapshot.all()) if (isOwnershipOf(r, owner)) hostnames.push(hostnameOfOwnershipRecord(r.name));
  return hostnames;
}
