// The plan for one zone, as external-dns makes it: what the records should be (every
// hostname routed to a tunnel of this provider), what they are (one listing), and the
// changes between them, limited to records whose ownership TXT is ours. Records in
// the way are reported per hostname and never touched.
import { bindingFingerprint } from "./ownership.ts";
import type { DnsBatch, DnsRecord, RecordBody } from "./cloudflare-sdk.ts";
import { hostnameOfOwnershipRecord, markContent, ownershipRecordName, parseMark, tunnelTarget, type Mark, type RecordOwner, type ZoneSnapshot } from "./dns.ts";

/** A hostname that should be a CNAME to a tunnel. */
export interface WantedHostname {
  /** Lowercase. */
  hostname: string;
  tunnelId: string;
  /** The binding its mark names: the oldest binding routing it on that tunnel. */
  binding: string;
}

export interface PlanOwner extends RecordOwner {
  /** Marks from before marks named a provider are ours when they name one of this provider's bindings. */
  claimsUnscoped(binding: string): boolean;
}

/** One hostname's record changes (its CNAME and ownership TXT travel together). */
export interface HostnameChange {
  hostname: string;
  batch: DnsBatch;
}

export type HostnameOutcome =
  | { ready: true }
  /**
   * A record we did not make is in the way, and stays: `DNSRecordConflict` for a record
   * of another type at the name (an A record where our CNAME would go),
   * `DNSRecordNotOwned` for a CNAME or ownership TXT without our mark.
   */
  | { ready: false; reason: "DNSRecordConflict" | "DNSRecordNotOwned"; message: string };

export interface ZonePlan {
  changes: HostnameChange[];
  /** For every wanted hostname. */
  outcomes: Map<string, HostnameOutcome>;
}

export function isOurMark(mark: Mark, owner: PlanOwner): boolean {
  if (mark.owner !== owner.ownerId) return false;
  return mark.provider ? mark.provider === bindingFingerprint(owner.provider) : owner.claimsUnscoped(mark.binding);
}

export function planZoneRecords(wanted: Iterable<WantedHostname>, snapshot: ZoneSnapshot, owner: PlanOwner): ZonePlan {
  const changes: HostnameChange[] = [];
  const outcomes = new Map<string, HostnameOutcome>();
  const wantedNames = new Set<string>();
  for (const want of wanted) {
    wantedNames.add(want.hostname);
    const { outcome, batch } = planHostname(want, snapshot, owner);
    outcomes.set(want.hostname, outcome);
    if (batch) changes.push({ hostname: want.hostname, batch });
  }
  // Ours and no longer wanted (a deleted binding, a renamed hostname, a crash's leftover): removed.
  const leftovers = new Map<string, DnsRecord[]>();
  for (const { record, mark } of snapshot.marks()) {
    const hostname = hostnameOfOwnershipRecord(record.name)!;
    if (wantedNames.has(hostname) || !isOurMark(mark, owner)) continue;
    const records = leftovers.get(hostname) ?? snapshot.at(hostname).filter((r) => r.type === "CNAME");
    leftovers.set(hostname, [...records, record]);
  }
  for (const [hostname, records] of leftovers) changes.push({ hostname, batch: { deletes: records.map((r) => ({ id: r.id })) } });
  return { changes, outcomes };
}

function planHostname(want: WantedHostname, snapshot: ZoneSnapshot, owner: PlanOwner): { outcome: HostnameOutcome; batch?: DnsBatch } {
  const { hostname } = want;
  const txtName = ownershipRecordName(hostname);
  const marked = snapshot.at(txtName).flatMap((record) => {
    const mark = parseMark(record);
    return mark ? [{ record, ours: isOurMark(mark, owner) }] : [];
  });
  const ours = marked.filter((m) => m.ours).map((m) => m.record);
  if (ours.length === 0 && marked.length > 0) {
    return notReady("DNSRecordNotOwned", `DNS name ${hostname} is marked as another KTube installation's or TunnelProvider's (${txtName}); it is left alone`);
  }
  const atHost = snapshot.at(hostname);
  const other = atHost.find((r) => r.type !== "CNAME");
  if (other) {
    return notReady("DNSRecordConflict", `${/^[AEIOU]/.test(other.type) ? "an" : "a"} ${other.type} record ${hostname} -> ${other.content} exists, so no CNAME to the tunnel can be added; it is left alone`);
  }
  const cname = atHost.find((r) => r.type === "CNAME");
  if (cname && ours.length === 0) {
    return notReady("DNSRecordNotOwned", `a CNAME record ${hostname} -> ${cname.content} exists and was not made by KTube; it is left alone`);
  }

  const content = markContent(owner, want.binding);
  const target = tunnelTarget(want.tunnelId);
  const comment = `managed by KTube (owner ${owner.ownerId}, binding ${bindingFingerprint(want.binding)})`;
  const txtBody: RecordBody = { type: "TXT", name: txtName, content, ttl: 1, comment };
  const cnameBody: RecordBody = { type: "CNAME", name: hostname, content: target, proxied: true, ttl: 1, comment };
  const batch: Required<DnsBatch> = { deletes: [], patches: [], posts: [] };
  const [txt, ...extraMarks] = ours;
  if (!txt) batch.posts.push(txtBody);
  else if (txt.content !== content) batch.patches.push({ id: txt.id, ...txtBody });
  for (const extra of extraMarks) batch.deletes.push({ id: extra.id });
  if (!cname) batch.posts.push(cnameBody);
  else if (cname.content !== target || !cname.proxied) batch.patches.push({ id: cname.id, ...cnameBody });
  const empty = batch.deletes.length + batch.patches.length + batch.posts.length === 0;
  return { outcome: { ready: true }, ...(empty ? {} : { batch }) };
}

const notReady = (reason: "DNSRecordConflict" | "DNSRecordNotOwned", message: string): { outcome: HostnameOutcome } => ({ outcome: { ready: false, reason, message } });
