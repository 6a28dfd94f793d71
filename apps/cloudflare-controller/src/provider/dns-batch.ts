// A zone plan's changes through Cloudflare's batch endpoint: one call per chunk of
// `maxOps` record operations instead of one per record. A batch is all or nothing, so
// one record Cloudflare refuses fails it for everybody: the chunk is then halved and
// each half sent again, which finds the refused hostname in about 2·log2(n) extra
// calls instead of n, and every other hostname is still written.
import type { CloudflareApi } from "./api.ts";
import { batchDnsRecords, type DnsBatch, type DnsBatchResult } from "./cloudflare-sdk.ts";
import { CloudflareError, isPermissionError } from "./errors.ts";
import type { HostnameChange } from "./zone-plan.ts";

/** Operations per batch call (Cloudflare's limit on the smallest plans). */
export const MAX_BATCH_OPS = 200;

export interface BatchOptions {
  maxOps?: number;
  /** Called after each call that went through, with its result (to keep the zone snapshot current). */
  applied(result: DnsBatchResult): void;
}

/**
 * Sends `changes` for `zoneId`. Returns the hostnames Cloudflare refused and why. A
 * failure that concerns every change alike (credentials, rate limit, 5xx, timeout) is
 * thrown; calls made before it have been reported through `applied`.
 */
export async function sendZoneChanges(api: CloudflareApi, zoneId: string, changes: HostnameChange[], options: BatchOptions): Promise<Map<string, CloudflareError>> {
  const refused = new Map<string, CloudflareError>();
  for (const chunk of chunks(changes, options.maxOps ?? MAX_BATCH_OPS)) await sendChunk(api, zoneId, chunk, options, refused);
  return refused;
}

async function sendChunk(api: CloudflareApi, zoneId: string, changes: HostnameChange[], options: BatchOptions, refused: Map<string, CloudflareError>): Promise<void> {
  try {
    options.applied(await api.call("dns.records.batch", (sdk) => batchDnsRecords(sdk, zoneId, merge(changes))));
  } catch (error) {
    if (!concernsSomeRecords(error)) throw error;
    if (changes.length === 1) {
      refused.set(changes[0]!.hostname, error);
      return;
    }
    const half = Math.ceil(changes.length / 2);
    await sendChunk(api, zoneId, changes.slice(0, half), options, refused);
    await sendChunk(api, zoneId, changes.slice(half), options, refused);
  }
}

const size = (batch: DnsBatch): number => (batch.deletes?.length ?? 0) + (batch.patches?.length ?? 0) + (batch.posts?.length ?? 0);

/** Consecutive groups of at most `maxOps` operations; a hostname's operations are never split. */
function chunks(changes: HostnameChange[], maxOps: number): HostnameChange[][] {
  const result: HostnameChange[][] = [];
  let current: HostnameChange[] = [];
  let ops = 0;
  for (const change of changes) {
    const n = size(change.batch);
    if (current.length > 0 && ops + n > maxOps) {
      result.push(current);
      current = [];
      ops = 0;
    }
    current.push(change);
    ops += n;
  }
  if (current.length > 0) result.push(current);
  return result;
}

function merge(changes: HostnameChange[]): DnsBatch {
  const batch: DnsBatch = {};
  const deletes = changes.flatMap((c) => c.batch.deletes ?? []);
  const patches = changes.flatMap((c) => c.batch.patches ?? []);
  const posts = changes.flatMap((c) => c.batch.posts ?? []);
  if (deletes.length > 0) batch.deletes = deletes;
  if (patches.length > 0) batch.patches = patches;
  if (posts.length > 0) batch.posts = posts;
  return batch;
}

/** A 4xx about the records (a clash, a record already gone), not about the token. */
const concernsSomeRecords = (error: unknown): error is CloudflareError =>
  error instanceof CloudflareError && (error.status ?? 0) >= 400 && (error.status ?? 0) < 500 && !isPermissionError(error);
