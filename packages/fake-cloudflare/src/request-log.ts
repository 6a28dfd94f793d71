// The fake's log of the requests it answered, and what a test reads out of it.
import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";

export interface RequestRecord {
  /** When the request arrived: milliseconds on a monotonic clock (`performance.now()`), so wall-clock steps cannot reorder it. */
  at: number;
  method: string;
  path: string;
  /** The schema's operationId (`METHOD template` where it gives none; `METHOD path` for a route the API lacks). */
  operation: string;
  /** The SDK-style short name, e.g. "tunnels.create", "dns.records.batch" (see operation-names.ts). */
  name: string;
  /** Fingerprint of the bearer token presented (`tokenFingerprint`), never the token. */
  token?: string;
  /** The HTTP status the answer carries (or will carry, while held). */
  status: number;
  /** On a 429: the `Retry-After` sent, in seconds. */
  retryAfterSeconds?: number;
  /** A hold withheld the answer (see `FakeCloudflare.hold`). */
  held?: boolean;
  /** When the answer was written; absent while held, and forever when it never was. */
  answeredAt?: number;
  /** The connection closed before the answer was written: the client went away (killed, timed out), or the fake stopped. */
  abandoned?: boolean;
}

/** Milliseconds on the clock `RequestRecord.at` uses. */
export const monotonicNow = (): number => performance.now();

/** A stable, non-reversible name for a token in logs and records: 12 hex digits of its SHA-256. */
export function tokenFingerprint(token: string): string {
  return createHash("sha256").update(token).digest("hex").slice(0, 12);
}

/** One time a token was blocked, and what it sent while it was. */
export interface BlockedWindow {
  token: string;
  /** The 429 that started the block. */
  blockedBy: RequestRecord;
  /** `blockedBy.at + Retry-After`: the end of the block as the client was told it. */
  until: number;
  /** Requests with that token that arrived after the 429 and before `until` (their own 429s included). */
  requests: RequestRecord[];
}

/**
 * For each token, the blocks its 429s announced and the requests it made during them.
 * Cloudflare counts calls made while blocked against the client (the block is for the
 * whole window), so a well-behaved client waits out `Retry-After` and sends nothing;
 * a request already in flight when the 429 came may still land, so a test allows a few
 * (at most its concurrency). A 429 inside a block does not start a new one: it is
 * reported as a request made while blocked.
 */
export function requestsWhileBlocked(log: readonly RequestRecord[]): BlockedWindow[] {
  const byToken = new Map<string, RequestRecord[]>();
  for (const record of log) {
    if (record.token === undefined) continue;
    byToken.set(record.token, [...(byToken.get(record.token) ?? []), record]);
  }
  const windows: BlockedWindow[] = [];
  for (const [token, records] of byToken) {
    let current: BlockedWindow | undefined;
    for (const record of [...records].sort((a, b) => a.at - b.at)) {
      if (current && record.at < current.until) {
        current.requests.push(record);
        continue;
      }
      current = undefined;
      if (record.status === 429 && record.retryAfterSeconds !== undefined) {
        current = { token, blockedBy: record, until: record.at + record.retryAfterSeconds * 1000, requests: [] };
        windows.push(current);
      }
    }
  }
  return windows;
}
