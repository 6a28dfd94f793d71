// Gathers the DNS changes of many hostnames into Cloudflare's batch endpoint: one call
// per zone per window instead of one per hostname. With a thousand hostnames that is
// the difference between minutes under the API's rate limit and seconds.
import type { CloudflareApi } from "./api.ts";
import { batchDnsRecords, type DnsBatch, type DnsBatchResult } from "./cloudflare-sdk.ts";
import { CloudflareError, isPermissionError } from "./errors.ts";

export type { DnsBatch, DnsBatchResult, RecordBody } from "./cloudflare-sdk.ts";

interface Pending {
  ops: DnsBatch;
  resolve: (result: DnsBatchResult) => void;
  reject: (error: unknown) => void;
}

const KINDS = ["deletes", "patches", "posts"] as const;
type Kind = (typeof KINDS)[number];

/** The batcher of one session (account and token): queues per zone. */
export class DnsBatcher {
  private readonly pending = new Map<string, { api: CloudflareApi; items: Pending[] }>();
  readonly windowMs: number;
  readonly maxOps: number;

  constructor(windowMs = 200, maxOps = 200) {
    this.windowMs = windowMs;
    this.maxOps = maxOps;
  }

  /** Queues one hostname's changes for `zoneId`; resolves with just their results. */
  submit(api: CloudflareApi, zoneId: string, ops: DnsBatch): Promise<DnsBatchResult> {
    return new Promise((resolve, reject) => {
      let entry = this.pending.get(zoneId);
      if (!entry) {
        entry = { api, items: [] };
        this.pending.set(zoneId, entry);
        setTimeout(() => void this.flush(zoneId), this.windowMs);
      }
      entry.items.push({ ops, resolve, reject });
    });
  }

  private async flush(zoneId: string): Promise<void> {
    const entry = this.pending.get(zoneId);
    if (!entry) return;
    // Changes that arrive while the call waits for its turn under the budget ride along.
    try {
      await entry.api.reserve();
    } catch (error) {
      this.pending.delete(zoneId);
      for (const item of entry.items) item.reject(error);
      return;
    }
    this.pending.delete(zoneId);
    const chunks: Pending[][] = [[]];
    let ops = 0;
    for (const item of entry.items) {
      const last = chunks[chunks.length - 1]!;
      if (last.length > 0 && ops + size(item.ops) > this.maxOps) {
        chunks.push([item]);
        ops = size(item.ops);
      } else {
        last.push(item);
        ops += size(item.ops);
      }
    }
    await Promise.all(chunks.map((chunk, i) => this.sendGroup(entry.api, zoneId, chunk, i === 0)));
  }

  /**
   * Sends a group as one batch. A batch is all or nothing: one clashing record fails it
   * for everybody. Then the group is halved and each half sent again, so only the
   * clashing hostname sees the error, at about 2·log2(n) extra calls rather than n.
   * Failures that concern every item alike (credentials, rate limit, 5xx) are not split.
   */
  private async sendGroup(api: CloudflareApi, zoneId: string, items: Pending[], reserved: boolean): Promise<void> {
    try {
      const result = await send(api, zoneId, items, reserved);
      distribute(items, result);
    } catch (error) {
      if (items.length > 1 && concernsSomeItems(error)) {
        const half = Math.ceil(items.length / 2);
        await this.sendGroup(api, zoneId, items.slice(0, half), false);
        await this.sendGroup(api, zoneId, items.slice(half), false);
        return;
      }
      for (const item of items) item.reject(error);
    }
  }
}

const size = (ops: DnsBatch): number => KINDS.reduce((n, k) => n + (ops[k]?.length ?? 0), 0);

/** A 4xx about the records (a clash, a record already gone), not about the token. */
const concernsSomeItems = (error: unknown): boolean =>
  error instanceof CloudflareError && (error.status ?? 0) >= 400 && (error.status ?? 0) < 500 && !isPermissionError(error);

async function send(api: CloudflareApi, zoneId: string, items: Pending[], reserved: boolean): Promise<DnsBatchResult> {
  const batch: DnsBatch = {};
  const deletes = items.flatMap((i) => i.ops.deletes ?? []);
  const patches = items.flatMap((i) => i.ops.patches ?? []);
  const posts = items.flatMap((i) => i.ops.posts ?? []);
  if (deletes.length > 0) batch.deletes = deletes;
  if (patches.length > 0) batch.patches = patches;
  if (posts.length > 0) batch.posts = posts;
  return api.call("dns.records.batch", (sdk) => batchDnsRecords(sdk, zoneId, batch), { reserved });
}

/** Hands each caller the results of its own changes (the answer keeps the request's order). */
function distribute(items: Pending[], result: DnsBatchResult): void {
  const offsets: Record<Kind, number> = { deletes: 0, patches: 0, posts: 0 };
  const cut = <T>(list: T[], kind: Kind, ops: DnsBatch): T[] => {
    const start = offsets[kind];
    offsets[kind] += ops[kind]?.length ?? 0;
    return list.slice(start, offsets[kind]);
  };
  for (const { ops, resolve } of items) {
    resolve({ deletes: cut(result.deletes, "deletes", ops), patches: cut(result.patches, "patches", ops), posts: cut(result.posts, "posts", ops) });
  }
}
