// What the ingress records for tests: every RPC in either direction, every connection it
// pushed to an agent, and lifecycle events, with secrets replaced by fingerprints.
import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";

export interface RpcRecord {
  /** Milliseconds on a monotonic clock (`performance.now()`). */
  at: number;
  /** The transport connection (1, 2, …); one agent session may span several after reconnects. */
  connection: number;
  /** The session, once Auth assigned one. */
  sessionId?: string;
  /** "agent": an RPC the agent called (Auth, Bind, Unbind, …); "fake": a command the fake sent (Stop, StopTunnel, …). */
  from: "agent" | "fake";
  type: string;
  /** The request as sent, secrets replaced by fingerprints. */
  request: unknown;
  /** The reply, once there is one (absent while pending and for requests never answered). */
  reply?: unknown;
  /** The error the reply carried. */
  error?: { code?: string; message: string };
}

export interface ProxyRecord {
  at: number;
  sessionId: string;
  endpointId: string;
  tunnelId: string;
  url: string;
  clientAddr: string;
}

export interface SessionEvent {
  at: number;
  connection: number;
  sessionId?: string;
  event: "connected" | "authenticated" | "resumed" | "closed" | "heartbeat";
  detail?: string;
}

export const monotonicNow = (): number => performance.now();

/** A stable, non-reversible name for a secret: 12 hex digits of its SHA-256. */
export const fingerprint = (secret: string): string => `sha256:${createHash("sha256").update(secret).digest("hex").slice(0, 12)}`;

const SECRET_KEYS = new Set(["AuthToken", "Cookie", "Token", "key", "sealed_key"]);

/** A copy of an RPC document with secret fields fingerprinted. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, field]) => [key, SECRET_KEYS.has(key) && typeof field === "string" && field !== "" ? fingerprint(field) : redact(field)]),
  );
}
