// Gathers the DNS changes of many bindings into Cloudflare's batch endpoint: one call
// per zone per window instead of one per hostname. With a thousand hostnames that is
// the difference between minutes under the API's rate limit and seconds.
import { CloudflareError, type CloudflareApi } from "./api.ts";

export interface RecordBody {
  type: "CNAME" | "TXT";
  name: string;
  content: string;
  ttl: 1;
  proxied?: boolean;
  comment?: string;
}

export interface BatchOps {
  deletes?: Array<{ id: string }>;
  patches?: Array<RecordBody & { id: string }>;
  posts?: RecordBody[];
}

export interface BatchResult {
  deletes: Array<{ id: string }>;
  patches: Array<{ id: string; name: string; type: string; content?: unknown; proxied?: boolean }>;
  posts: Array<{ id: string; name: string; type: string; content?: unknown; proxied?: boolean }>;
}

interface Pending {
  ops: BatchOps;
  resolve: (result: BatchResult) => void;
  reject: (error: unknown) => void;
}

const KINDS = ["deletes", "patches", "posts"] as const;

export class DnsBatcher {
  private readonly pending = new Map<string, { api: CloudflareApi; items: Pending[]; timer: NodeJS.Timeout }>();
  readonly windowMs: number;
  readonly maxOps: number;

  constructor(windowMs = 200, maxOps = 200) {
    this.windowMs = windowMs;
    this.maxOps = maxOps;
  }

  /** Queues one hostname's changes for `zoneId`; resolves with just their results. */
  submit(api: CloudflareApi, zoneId: string, ops: BatchOps): Promise<BatchResult> {
    return new Promise((resolve, reject) => {
      let entry = this.pending.get(zoneId);
      if (!entry) {
        entry = { api, items: [], timer: setTimeout(() => void this.flush(zoneId), this.windowMs) };
        this.pending.set(zoneId, entry);
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
    for (const item of entry.items) {
      const last = chunks[chunks.length - 1]!;
      if (last.length > 0 && last.reduce((n, p) => n + size(p.ops), 0) + size(item.ops) > this.maxOps) chunks.push([item]);
      else last.push(item);
    }
    await Promise.all(chunks.map((chunk, i) => this.sendChunk(entry.api, zoneId, chunk, i === 0)));
  }

  private async sendChunk(api: CloudflareApi, zoneId: string, items: Pending[], reserved: boolean): Promise<void> {
    try {
      const result = await send(api, zoneId, items, reserved);
      const offsets = { deletes: 0, patches: 0, posts: 0 };
      for (const item of items) {
        const mine = {} as BatchResult;
        for (const kind of KINDS) {
          const n = item.ops[kind]?.length ?? 0;
          (mine[kind] as unknown[]) = (result[kind] as unknown[]).slice(offsets[kind], offsets[kind] + n);
          offsets[kind] += n;
        }
        item.resolve(mine);
      }
    } catch (error) {
      // A batch is all or nothing: one clashing record fails it for everybody. Then
      // each hostname goes on its own, so only the clashing one sees the error.
      const perItem = items.length > 1 && error instanceof CloudflareError && (error.status ?? 0) >= 400 && (error.status ?? 0) < 500;
      if (!perItem) {
        for (const item of items) item.reject(error);
        return;
      }
      for (const item of items) await send(api, zoneId, [item], false).then(item.resolve, item.reject);
    }
  }
}

const size = (ops: BatchOps): number => KINDS.reduce((n, k) => n + (ops[k]?.length ?? 0), 0);

async function send(api: CloudflareApi, zoneId: string, items: Pending[], reserved: boolean): Promise<BatchResult> {
  const merged: Record<string, unknown[]> = {};
  for (const kind of KINDS) {
    const all = items.flatMap((i): unknown[] => i.ops[kind] ?? []);
    if (all.length > 0) merged[kind] = all;
  }
  const result = (await api.call("dns.records.batch", (sdk) => sdk.dns.records.batch({ zone_id: zoneId, ...merged } as never), { reserved })) as Partial<BatchResult>;
  return { deletes: result.deletes ?? [], patches: result.patches ?? [], posts: result.posts ?? [] };
}
