// Faults a test injects into the REST API, and the log of what it answered.
import { createHash } from "node:crypto";

export type FaultKind = "5xx" | "timeout";

export interface FaultSpec {
  /** How many matching requests fail; default 1. */
  count?: number;
  /** `5xx`: answer with `status`; `timeout`: never answer (the client's own timeout fires). Default `5xx`. */
  kind?: FaultKind;
  /** The status of a `5xx` fault; default 503. */
  status?: number;
  /**
   * `before`: the request is refused before it takes effect. `after`: it takes effect
   * (the reservation exists, the session is stopped) and then fails, the realistic
   * commit-without-answer a controller must recover from by listing. Default `before`.
   */
  when?: "before" | "after";
}

export interface Fault {
  kind: FaultKind;
  status: number;
  when: "before" | "after";
}

/** Which requests a fault takes: an operationId (`ReservedDomainsCreate`) or `*` for any. */
export type OperationMatcher = string;

interface Armed extends Fault {
  operation: OperationMatcher;
  remaining: number;
}

/** Armed faults, first armed first taken; each takes `count` requests that passed validation, auth and the rate limit. */
export class Faults {
  private readonly armed: Armed[] = [];

  inject(operation: OperationMatcher, spec: FaultSpec = {}): void {
    this.armed.push({
      operation,
      remaining: spec.count ?? 1,
      kind: spec.kind ?? "5xx",
      status: spec.status ?? 503,
      when: spec.when ?? "before",
    });
  }

  /** The fault for a request of `operation`, if one is armed. */
  take(operation: string): Fault | undefined {
    const index = this.armed.findIndex((f) => f.operation === operation || f.operation === "*");
    if (index < 0) return undefined;
    const fault = this.armed[index]!;
    if (--fault.remaining <= 0) this.armed.splice(index, 1);
    return { kind: fault.kind, status: fault.status, when: fault.when };
  }

  /** Faults still armed, with how many requests each will still take. */
  pending(): Array<{ operation: string; remaining: number }> {
    return this.armed.map(({ operation, remaining }) => ({ operation, remaining }));
  }

  clear(): void {
    this.armed.length = 0;
  }
}

/** One request the API received. */
export interface ApiRequestRecord {
  /** Arrival, on the API's clock (`NgrokApiOptions.now`; default `performance.now()`). */
  at: number;
  method: string;
  path: string;
  /** The operationId, or `METHOD path` for a route the document lacks. */
  operation: string;
  /** The status answered; 0 when never answered (a `timeout` fault). */
  status: number;
  /** The ERR_NGROK code of an error answer. */
  errorCode?: string;
  /** The injected fault that shaped the answer. */
  fault?: FaultKind;
  /** Fingerprint of the bearer key presented (`keyFingerprint`), never the key. */
  apiKey?: string;
}

/** A stable, non-reversible name for a key in logs: 12 hex digits of its SHA-256. */
export function keyFingerprint(key: string): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 12);
}
