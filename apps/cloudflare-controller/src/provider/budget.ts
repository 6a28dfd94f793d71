// The call budget of one API token. Cloudflare allows 1200 requests per 5 minutes per
// token (per user, whichever accounts it serves) and, once a token goes over, answers
// every call with 429 until the block ends. So the controller spends at most
// `callsPerWindow` per window and, after a 429, makes no call at all with that token
// until the block is over.

export interface CallBudgetOptions {
  /** Calls per window (Cloudflare's limit is 1200; the default leaves room for people and other tools). */
  callsPerWindow?: number;
  windowMs?: number;
  /** Calls that may go at once after a quiet spell. */
  burst?: number;
  /** A call whose turn is at most this far off waits for it; a later one is refused. */
  maxWaitMs?: number;
  /** The spread of refused callers' retry times: this fraction of the wait... */
  spreadFraction?: number;
  /** ...and at least this long. */
  minSpreadMs?: number;
  /** [0, 1): jitter source (tests may pin it). */
  random?: () => number;
}

/** What the budget says about one call. */
export type Turn =
  /** Go now (a positive `waitMs`: after waiting that long; the turn is reserved). */
  | { kind: "go"; waitMs: number }
  /** Not within `maxWaitMs` (or the token is blocked): nothing was reserved; come back after `retryAfterMs`. */
  | { kind: "refused"; retryAfterMs: number; blocked: boolean };

/**
 * A token bucket. Callers queue for turns in order (the bucket goes into debt), so a
 * thousand reconciles do not all retry at once: a turn within `maxWaitMs` is waited
 * for, a later one ends the reconcile with a requeue. A refused caller is told to come
 * back at a jittered time (the wait plus up to `spreadFraction` of it, at least
 * `minSpreadMs`), so a thousand requeued keys do not return in the same instant.
 */
export class CallBudget {
  readonly callsPerWindow: number;
  readonly windowMs: number;
  readonly burst: number;
  readonly maxWaitMs: number;
  private readonly spreadFraction: number;
  private readonly minSpreadMs: number;
  private readonly random: () => number;
  private tokens: number;
  private last = Date.now();
  private block?: { until: number; lengthMs: number };

  constructor(options: CallBudgetOptions = {}) {
    this.callsPerWindow = options.callsPerWindow ?? 1000;
    this.windowMs = options.windowMs ?? 5 * 60_000;
    this.burst = Math.min(this.callsPerWindow, options.burst ?? 200);
    this.maxWaitMs = options.maxWaitMs ?? 5_000;
    this.spreadFraction = options.spreadFraction ?? 0.2;
    this.minSpreadMs = options.minSpreadMs ?? 5_000;
    this.random = options.random ?? Math.random;
    this.tokens = this.burst;
  }

  /** Asks for one call's turn. */
  take(): Turn {
    const now = Date.now();
    if (this.block && now < this.block.until) {
      return { kind: "refused", retryAfterMs: this.spread(this.block.until - now, this.block.lengthMs), blocked: true };
    }
    const rate = this.callsPerWindow / this.windowMs;
    this.tokens = Math.min(this.burst, this.tokens + Math.max(0, now - this.last) * rate);
    this.last = Math.max(this.last, now);
    const waitMs = this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) / rate);
    if (waitMs > this.maxWaitMs) return { kind: "refused", retryAfterMs: this.spread(waitMs, waitMs), blocked: false };
    this.tokens -= 1;
    return { kind: "go", waitMs };
  }

  /**
   * Cloudflare blocked the token for `ms` (its Retry-After). No turn is given until
   * then, and the bucket starts empty when the block ends: the tokens a quiet spell
   * would have earned were spent by whoever went over, so no burst leaves at its end.
   */
  blockFor(ms: number): void {
    const until = Date.now() + ms;
    if (this.block && this.block.until >= until) return;
    this.block = { until, lengthMs: ms };
    this.tokens = 0;
    this.last = until;
  }

  /** True while Cloudflare's block lasts. */
  get blocked(): boolean {
    return this.block !== undefined && Date.now() < this.block.until;
  }

  /** When a refused caller should come back: after `waitMs`, plus a random share of the spread. */
  private spread(waitMs: number, lengthMs: number): number {
    const spreadMs = Math.max(this.minSpreadMs, this.spreadFraction * lengthMs);
    return Math.ceil(waitMs + this.random() * spreadMs);
  }
}
