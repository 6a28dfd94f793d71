// Cloudflare's DNS as the bindings want it, compared with what the fake holds (read from
// its store, not through the API, so checking costs no call and shows up in no count).
import { TunnelResource } from "@ktube/api";
import { NS, type BenchEnv } from "./setup.ts";

/** A record as compared here: "name TYPE content" for a CNAME, "name TXT" for an ownership mark (its content is the controller's business). */
type RecordKey = string;
const cnameKey = (name: string, target: string): RecordKey => `${name} CNAME ${target}`;
const markKey = (hostname: string): RecordKey => `_ktube.${hostname} TXT`;

/**
 * Every binding's hostname needs a CNAME to its tunnel (`<tunnelId>.cfargotunnel.com`)
 * and the ownership mark `_ktube.<hostname>` TXT. `hostname(i)` is binding i's current one.
 */
export async function desiredRecords(env: BenchEnv, bindings: number, tunnels: number, hostname: (i: number) => string): Promise<Set<RecordKey>> {
  const listed = await env.client.list<{ metadata: { name: string }; status?: { tunnelId?: string } }>(TunnelResource, { namespace: NS });
  const tunnelIds = new Map(listed.items.map((t) => [t.metadata.name, t.status?.tunnelId]));
  const want = new Set<RecordKey>();
  for (let i = 0; i < bindings; i++) {
    const tunnelId = tunnelIds.get(`t${i % tunnels}`);
    if (!tunnelId) throw new Error(`Tunnel t${i % tunnels} has no tunnelId in its status`);
    want.add(cnameKey(hostname(i), `${tunnelId}.cfargotunnel.com`));
    want.add(markKey(hostname(i)));
  }
  return want;
}

export interface RecordDiff {
  /** Records no binding wants (an old hostname's CNAME or mark, a second copy of a wanted one...). */
  unwanted: RecordKey[];
  /** Wanted records the fake does not have. */
  missing: RecordKey[];
}

export function diffRecords(env: BenchEnv, want: Set<RecordKey>): RecordDiff {
  const seen = new Set<RecordKey>();
  const unwanted: RecordKey[] = [];
  for (const record of env.fake.records.values()) {
    const key = record.type === "TXT" ? `${record.name} TXT` : `${record.name} ${record.type} ${record.content}`;
    // A key seen before is a duplicate: unwanted as well.
    if (want.has(key) && !seen.has(key)) seen.add(key);
    else unwanted.push(key);
  }
  return { unwanted, missing: [...want].filter((key) => !seen.has(key)) };
}

export const recordsMatch = (diff: RecordDiff): boolean => diff.unwanted.length === 0 && diff.missing.length === 0;
