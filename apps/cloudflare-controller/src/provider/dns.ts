// DNS records KTube keeps in a zone: a proxied CNAME to the tunnel plus a TXT record
// that marks it as KTube's (external-dns's registry). A record without our mark is
// someone else's: it is reported, never changed. The mark is public DNS, so it names no
// namespace or object: `heritage=ktube,owner=<ownerId>,provider=<fingerprint>,binding=<fingerprint>`.
import type { CloudflareApi } from "./api.ts";
import { dnsRecordPages, type DnsRecord } from "./cloudflare-sdk.ts";
import { bindingFingerprint } from "./ownership.ts";
import type { ZoneRef } from "./zones.ts";

export type { DnsRecord } from "./cloudflare-sdk.ts";

export const tunnelTarget = (tunnelId: string): string => `${tunnelId}.cfargotunnel.com`;

/** Where the ownership record of `hostname` lives (wildcards cannot carry a TXT of their own). */
export const ownershipRecordName = (hostname: string): string =>
  hostname.startsWith("*.") ? `_ktube-wildcard.${hostname.slice(2)}` : `_ktube.${hostname}`;

export const hostnameOfOwnershipRecord = (name: string): string | undefined => {
  const lower = name.toLowerCase();
  if (lower.startsWith("_ktube-wildcard.")) return `*.${lower.slice("_ktube-wildcard.".length)}`;
  if (lower.startsWith("_ktube.")) return lower.slice("_ktube.".length);
  return undefined;
};

/** What an ownership TXT says. `provider` is absent in marks written before plans were per provider. */
export interface Mark {
  owner: string;
  provider?: string;
  /** The holding binding's fingerprint (or, in the oldest marks, its `namespace/name`). */
  binding: string;
}

/** Who writes a zone's records: an installation (--owner-id) and one TunnelProvider of it. */
export interface RecordOwner {
  ownerId: string;
  /** The TunnelProvider's name; only its fingerprint leaves the cluster. */
  provider: string;
}

/** The ownership TXT's content (quoted, as Cloudflare stores TXT content). */
export const markContent = (owner: RecordOwner, bindingKey: string): string =>
  `"heritage=ktube,owner=${owner.ownerId},provider=${bindingFingerprint(owner.provider)},binding=${bindingFingerprint(bindingKey)}"`;

/** The mark a TXT record carries, if it is a KTube ownership record. */
export function parseMark(record: DnsRecord): Mark | undefined {
  if (record.type !== "TXT" || hostnameOfOwnershipRecord(record.name) === undefined) return undefined;
  const text = record.content.replace(/^"|"$/g, "");
  if (!text.startsWith("heritage=ktube,")) return undefined;
  const fields = new Map<string, string>();
  for (const part of text.split(",")) {
    const at = part.indexOf("=");
    if (at > 0) fields.set(part.slice(0, at), part.slice(at + 1));
  }
  const owner = fields.get("owner");
  const binding = fields.get("binding");
  if (!owner || !binding) return undefined;
  const provider = fields.get("provider");
  return { owner, binding, ...(provider ? { provider } : {}) };
}

/** Records per list call. The schema allows up to 5,000,000; 5000 keeps one answer a few MB. */
export const RECORDS_PER_PAGE = 5000;

/**
 * A zone's records by id and by name, with KTube's ownership marks indexed by the binding
 * they name. A name or a binding has one record or two: each is filed in an array, which
 * takes a fraction of a Map's memory (a zone holds two records per hostname it serves).
 */
export class ZoneSnapshot {
  private readonly byId = new Map<string, DnsRecord>();
  private readonly byName = new Map<string, DnsRecord[]>();
  private readonly marksByBinding = new Map<string, DnsRecord[]>();
  private readonly allMarks = new Map<string, { record: DnsRecord; mark: Mark }>();

  constructor(records: Iterable<DnsRecord> = []) {
    for (const record of records) this.put(record);
  }

  put(record: DnsRecord): void {
    this.remove(record.id);
    this.byId.set(record.id, record);
    addTo(this.byName, record.name.toLowerCase(), record);
    const mark = parseMark(record);
    if (mark) {
      this.allMarks.set(record.id, { record, mark });
      addTo(this.marksByBinding, mark.binding, record);
    }
  }

  remove(id: string): void {
    const old = this.byId.get(id);
    if (!old) return;
    this.byId.delete(id);
    removeFrom(this.byName, old.name.toLowerCase(), id);
    const marked = this.allMarks.get(id);
    if (marked) {
      this.allMarks.delete(id);
      removeFrom(this.marksByBinding, marked.mark.binding, id);
    }
  }

  /** Every record named `name`, of any type. */
  at(name: string): DnsRecord[] {
    return [...(this.byName.get(name.toLowerCase()) ?? [])];
  }

  /** Every KTube ownership record, whoever's. */
  marks(): IterableIterator<{ record: DnsRecord; mark: Mark }> {
    return this.allMarks.values();
  }

  /** The ownership records naming `binding` (a fingerprint or, in the oldest marks, a key). */
  marksOf(binding: string): DnsRecord[] {
    return [...(this.marksByBinding.get(binding) ?? [])];
  }

  get size(): number {
    return this.byId.size;
  }
}

/** Files `record` under `key`; the caller has removed any record of the same id first. */
function addTo(index: Map<string, DnsRecord[]>, key: string, record: DnsRecord): void {
  const records = index.get(key);
  if (records) records.push(record);
  else index.set(key, [record]);
}

function removeFrom(index: Map<string, DnsRecord[]>, key: string, id: string): void {
  const rest = (index.get(key) ?? []).filter((r) => r.id !== id);
  if (rest.length > 0) index.set(key, rest);
  else index.delete(key);
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

  /** The zone's snapshot, listed again when older than `maxAgeMs` (default: the TTL). */
  async snapshot(api: CloudflareApi, zone: ZoneRef, maxAgeMs: number = this.ttlMs): Promise<ZoneSnapshot> {
    const cached = this.zones.get(zone.id);
    if (cached && Date.now() - cached.at < Math.min(maxAgeMs, this.ttlMs)) return cached.snapshot;
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

  /** The snapshot as last listed (and kept current), without listing; undefined if never listed. */
  cached(zoneId: string): ZoneSnapshot | undefined {
    return this.zones.get(zoneId)?.snapshot;
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
