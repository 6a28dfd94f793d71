// What the bench counts on ngrok's side, from the fake's own logs: REST calls by operation
// (all of them count against 120 per rolling minute), the busiest 60 s window, 429s; and
// the agents' RPCs on the ingress (a Bind per endpoint and replica).
import type { BenchEnv } from "./setup.ts";

const WINDOW_MS = 60_000;

export interface RestCalls {
  total: number;
  byOperation: Record<string, number>;
  /** POST, PATCH, PUT, DELETE. */
  writes: number;
  /** Answered 429 (ERR_NGROK_226). */
  rateLimited: number;
}

export interface Mark {
  rest: number;
  rpcs: number;
}

export const mark = (env: BenchEnv): Mark => ({ rest: env.fake.api.requests.length, rpcs: env.fake.ingress.rpcs.length });

/** REST calls since a mark. */
export function restSince(env: BenchEnv, from: Mark): RestCalls {
  const made = env.fake.api.requests.slice(from.rest);
  const byOperation: Record<string, number> = {};
  for (const r of made) byOperation[r.operation] = (byOperation[r.operation] ?? 0) + 1;
  return { total: made.length, byOperation, writes: made.filter((r) => r.method !== "GET").length, rateLimited: made.filter((r) => r.status === 429).length };
}

/** The most REST calls in any 60 s window of the whole run (ngrok allows 120). */
export function busiestMinute(env: BenchEnv): number {
  const at = env.fake.api.requests.map((r) => r.at);
  let most = 0;
  for (let i = 0, j = 0; i < at.length; i++) {
    while (at[i]! - at[j]! >= WINDOW_MS) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

/** RPCs the agents called since a mark, by type (Bind, Unbind, Auth...). */
export function agentRpcsSince(env: BenchEnv, from: Mark): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of env.fake.ingress.rpcs.slice(from.rpcs)) if (r.from === "agent") counts[r.type] = (counts[r.type] ?? 0) + 1;
  return counts;
}
