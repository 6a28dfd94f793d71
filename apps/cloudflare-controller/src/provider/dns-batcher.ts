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

  constructor(windowMs = 100, maxOps = 200) {
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
      if (entry.items.reduce((n, p) => n + size(p.ops), 0) >= this.maxOps) void this.flush(zoneId);
    });
  }

  private async flush(zoneId: string): Promise<void> {
    const entry = this.pending.get(zoneId);
    if (!entry) return;
    this.pending.delete(zoneId);
    clearTimeout(entry.timer);
    try {
      const result = await send(entry.api, zoneId, entry.items);
      const offsets = { deletes: 0, patches: 0, posts: 0 };
      for (const item of entry.items) {
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
      const perItem = entry.items.length > 1 && error instanceof CloudflareError && (error.status ?? 0) >= 400 && (error.status ?? 0) < 500;
      if (!perItem) {
        for (const item of entry.items) item.reject(error);
        return;
      }
      for (const item of entry.items) {
        await send(entry.api, zoneId, [item]).then(item.resolve, item.reject);
      }
    }
  }
}

const size = (ops: BatchOps): number => KINDS.reduce((n, k) => n + (ops[k]?.length ?? 0), 0);

async function send(api: CloudflareApi, zoneId: string, items: Pending[]): Promise<BatchResult> {
  const merged: Record<string, unknown[]> = {};
  for (const kind of KINDS) {
    const all = items.flatMap((i): unknown[] => i.ops[kind] ?? []);
    if (all.length > 0) merged[kind] = all;
  }
  const result = (await api.call("dns.records.batch", (sdk) => sdk.dns.records.batch({ zone_id: zoneId, ...merged } as never))) as Partial<BatchResult>;
  return { deletes: result.deletes ?? [], patches: result.patches ?? [], posts: result.posts ?? [] };
}
