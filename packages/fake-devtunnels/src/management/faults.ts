// Faults a test injects into the management API, the per-IP rate limit's window, and the
// request log (the same shape as fake-ngrok's REST side).

/** `5xx`: answer with `status`; `429`: a throttling answer with Retry-After; `timeout`: never answer. */
export type FaultKind = "5xx" | "429" | "timeout";

export interface FaultSpec {
  /** How many matching requests fail; default 1. */
  count?: number;
  kind?: FaultKind;
  /** The status of a `5xx` fault; default 503. */
  status?: number;
  /**
   * `before`: refused before it takes effect. `after`: it takes effect (the tunnel exists)
   * and then fails, the commit-without-answer a controller must recover from. Default `before`.
   */
  when?: "before" | "after";
}

export interface Fault {
  kind: FaultKind;
  status: number;
  when: "before" | "after";
}

/** An operation name (`createTunnel`, the SDK method that makes the request) or `*`. */
export type OperationMatcher = string;

interface Armed extends Fault {
  operation: OperationMatcher;
  remaining: number;
}

/** Armed faults, first armed first taken; each takes `count` requests that passed rate limit, auth and validation. */
export class Faults {
  private readonly armed: Armed[] = [];

  inject(operation: OperationMatcher, spec: FaultSpec = {}): void {
    const kind = spec.kind ?? "5xx";
    this.armed.push({
      operation,
      remaining: spec.count ?? 1,
      kind,
      status: kind === "429" ? 429 : (spec.status ?? 503),
      when: spec.when ?? "before",
    });
  }

  take(operation: string): Fault | undefined {
    const index = this.armed.findIndex((f) => f.operation === operation || f.operation === "*");
    if (index < 0) return undefined;
    const fault = this.armed[index]!;
    if (--fault.remaining <= 0) this.armed.splice(index, 1);
    return { kind: fault.kind, status: fault.status, when: fault.when };
  }

  pending(): Array<{ operation: string; remaining: number }> {
    return this.armed.map(({ operation, remaining }) => ({ operation, remaining }));
  }

  clear(): void {
    this.armed.length = 0;
  }
}

/** A rolling window of admitted requests per key (client IP), on the caller's clock. Refused requests do not count. */
export class RollingWindows {
  private readonly admitted = new Map<string, number[]>();

  /** Admits at `now` if fewer than `limit` were admitted within `windowMs`; else the ms until a slot frees. */
  tryAdmit(key: string, now: number, limit: number, windowMs: number): { admitted: true } | { admitted: false; retryAfterMs: number } {
    const times = this.admitted.get(key) ?? [];
    while (times.length > 0 && times[0]! <= now - windowMs) times.shift();
    this.admitted.set(key, times);
    if (times.length >= limit) return { admitted: false, retryAfterMs: times[0]! + windowMs - now };
    times.push(now);
    return { admitted: true };
  }

  inWindow(key: string, now: number, windowMs: number): number {
    return (this.admitted.get(key) ?? []).filter((t) => t > now - windowMs).length;
  }

  reset(): void {
    this.admitted.clear();
  }
}

/** One request the API received. */
export interface ManagementRequestRecord {
  /** Arrival, on the API's clock. */
  at: number;
  method: string;
  /** The path without the query. */
  path: string;
  /** The raw query string (without `?`). */
  query: string;
  /** The SDK method the route belongs to (`createTunnel`, `getTunnelPort`…), or `METHOD path` for an unknown route. */
  operation: string;
  /** The status answered; 0 when never answered (a `timeout` fault). */
  status: number;
  /** The identity of a user token, or `tunnel:<tunnelId>` for a tunnel access token. */
  caller?: string;
  clientIp: string;
  fault?: FaultKind;
}

/** A request refused for breaking the SDK's contract. Tests assert none for SDK-made requests. */
export interface ContractViolation {
  method: string;
  path: string;
  operation: string;
  status: number;
  problems: string[];
}
