// DNS records of a zone: create, change, delete, list with filters, and the batch call.
import { type Body, CfError, cfId, type DnsRecord, type DnsRecordSeed, now, stringList } from "./model.ts";
import type { Handler, Route, Store } from "./store.ts";

const ADDRESS_TYPES = new Set(["A", "AAAA", "CNAME"]);

/** Cloudflare's refusal of `candidate` beside the records already at its name, if any. */
function conflict(atName: Iterable<DnsRecord>, candidate: Pick<DnsRecord, "name" | "type" | "content">, ignoreId?: string): CfError | undefined {
  for (const r of atName) {
    if (r.id === ignoreId || r.name !== candidate.name) continue;
    if (r.type === candidate.type && r.content === candidate.content) return new CfError(400, 81057, "Record already exists.");
    if ((candidate.type === "CNAME" && ADDRESS_TYPES.has(r.type)) || (r.type === "CNAME" && ADDRESS_TYPES.has(candidate.type))) {
      return new CfError(400, 81053, "An A, AAAA, or CNAME record with that host already exists.");
    }
  }
  return undefined;
}

const zoneRecords = (store: Store, zoneId: string): DnsRecord[] => [...store.records.values()].filter((r) => r.zone_id === zoneId);

function zoneOf(store: Store, zoneId: string) {
  const zone = store.zones.get(zoneId);
  if (!zone) throw new Error(`no zone ${zoneId}: add it with addZone() first`);
  return zone;
}

function fullRecord(store: Store, zoneId: string, seed: DnsRecordSeed): DnsRecord {
  return {
    id: cfId(), zone_id: zoneId, zone_name: zoneOf(store, zoneId).name, proxied: false, proxiable: true, ttl: 1, comment: null, tags: [],
    created_on: now(), modified_on: now(), meta: {}, settings: {}, ...seed,
  };
}

/**
 * Adds records as if a person had made them in the dashboard: no request, no rate
 * limit, but the zone's rules hold (a clash throws the API's error). One pass over the
 * zone however many records, so tests can seed thousands.
 */
export function seedRecords(store: Store, zoneId: string, seeds: readonly DnsRecordSeed[]): DnsRecord[] {
  const byName = new Map<string, DnsRecord[]>();
  const index = (r: DnsRecord) => byName.set(r.name, [...(byName.get(r.name) ?? []), r]);
  zoneRecords(store, zoneId).forEach(index);
  const added = seeds.map((seed) => {
    const record = fullRecord(store, zoneId, seed);
    const refused = conflict(byName.get(record.name) ?? [], record);
    if (refused) throw new Error(`cannot seed ${record.type} ${record.name}: ${refused.message} (${refused.code})`);
    index(record);
    return record;
  });
  for (const record of added) store.records.set(record.id, record);
  return added;
}

function record(store: Store, zoneId: string, id: string): DnsRecord {
  const found = store.records.get(id);
  if (!found || found.zone_id !== zoneId) throw new CfError(404, 81044, "Record does not exist.");
  return found;
}

function listRecords({ store, params, query: q }: Route): DnsRecord[] {
  const name = q.get("name.exact") ?? q.get("name");
  return zoneRecords(store, params.zone_id!).filter(
    (r) =>
      (!name || r.name === name) &&
      (!q.get("type") || r.type === q.get("type")) &&
      (!q.get("content") || r.content === q.get("content")) &&
      (!q.get("comment.exact") || r.comment === q.get("comment.exact")) &&
      (!q.get("tag") || r.tags.includes(q.get("tag")!)),
  );
}

function createRecord(store: Store, zoneId: string, b: Body): DnsRecord {
  const zone = zoneOf(store, zoneId);
  const candidate = { name: String(b.name), type: String(b.type), content: String(b.content) };
  if (candidate.name !== zone.name && !candidate.name.endsWith(`.${zone.name}`)) {
    throw new CfError(400, 9005, "Content for CNAME record is invalid: the name is not in this zone");
  }
  const refused = conflict(zoneRecords(store, zoneId), candidate);
  if (refused) throw refused;
  const created = fullRecord(store, zoneId, {
    ...candidate,
    proxied: Boolean(b.proxied),
    ttl: Number(b.ttl ?? 1),
    comment: typeof b.comment === "string" ? b.comment : null,
    tags: stringList(b.tags),
  });
  store.records.set(created.id, created);
  return created;
}

function updateRecord(store: Store, zoneId: string, id: string, b: Body, replace: boolean): DnsRecord {
  const existing = record(store, zoneId, id);
  const next = replace ? { ...existing, comment: null, tags: [], proxied: false, ...b } : { ...existing, ...b };
  const refused = conflict(zoneRecords(store, zoneId), next as DnsRecord, existing.id);
  if (refused) throw refused;
  Object.assign(existing, next, { modified_on: now() });
  return existing;
}

/** Deletes, patches, puts, posts, in that order; all or nothing. */
function batch(store: Store, zoneId: string, b: Body): Record<string, DnsRecord[]> {
  const snapshot = new Map([...store.records].map(([k, v]) => [k, structuredClone(v)]));
  try {
    const list = (key: string) => (b[key] as Body[] | undefined) ?? [];
    const deletes = list("deletes").map((d) => {
      const found = record(store, zoneId, String(d.id));
      store.records.delete(found.id);
      return found;
    });
    const patches = list("patches").map((d) => updateRecord(store, zoneId, String(d.id), d, false));
    const puts = list("puts").map((d) => updateRecord(store, zoneId, String(d.id), d, true));
    const posts = list("posts").map((d) => createRecord(store, zoneId, d));
    return { deletes, patches, puts, posts };
  } catch (error) {
    store.records.clear();
    for (const [k, v] of snapshot) store.records.set(k, v);
    throw error;
  }
}

export const dnsHandlers: Record<string, Handler> = {
  "dns.records.list": (r) => r.page(listRecords(r)),
  "dns.records.create": (r) => ({ result: createRecord(r.store, r.params.zone_id!, r.body) }),
  "dns.records.get": (r) => ({ result: record(r.store, r.params.zone_id!, r.params.dns_record_id!) }),
  "dns.records.edit": (r) => ({ result: updateRecord(r.store, r.params.zone_id!, r.params.dns_record_id!, r.body, false) }),
  "dns.records.update": (r) => ({ result: updateRecord(r.store, r.params.zone_id!, r.params.dns_record_id!, r.body, true) }),
  "dns.records.delete": (r) => {
    const found = record(r.store, r.params.zone_id!, r.params.dns_record_id!);
    r.store.records.delete(found.id);
    return { result: { id: found.id } };
  },
  "dns.records.batch": (r) => ({ result: batch(r.store, r.params.zone_id!, r.body) }),
};
