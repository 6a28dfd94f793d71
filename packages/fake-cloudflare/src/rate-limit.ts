// Cloudflare's global API limit: 1,200 requests per five minutes per token. Going over
// blocks the token: "all API calls for the next five minutes will be blocked, receiving
// a HTTP 429" (developers.cloudflare.com, API rate limits), with error code 971 and a
// `Retry-After` in seconds. Calls made while blocked are refused and do not count
// towards the next window.
import { CfError } from "./model.ts";

export interface RateLimit {
  /** Requests per token per window before 429. */
  limit: number;
  windowMs: number;
  /** How long going over blocks the token, from the request that went over; default `windowMs`. */
  blockMs?: number;
}

export const CLOUDFLARE_RATE_LIMIT: RateLimit = { limit: 1200, windowMs: 5 * 60_000 };

/** Thrown for a refused call; carries the `Retry-After` to send. */
export class RateLimited extends CfError {
  readonly retryAfterSeconds: number;

  constructor(retryAfterSeconds: number) {
    super(429, 971, "Please wait and consider throttling your request speed");
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * Whole seconds covering `ms` (Retry-After's unit). Rounded to whole milliseconds first:
 * on the fractional monotonic clock, (t + 60000) - t can come out a hair over 60000.
 */
const secondsUntil = (ms: number): number => Math.ceil(Math.round(ms) / 1000);

/** One token's window, on the monotonic clock the request log uses. */
export class TokenWindow {
  private start = -Infinity;
  private count = 0;
  private blockedUntil = -Infinity;

  /** Counts a call at time `t` or throws `RateLimited`. */
  admit(t: number, rule: RateLimit): void {
    if (t < this.blockedUntil) throw new RateLimited(secondsUntil(this.blockedUntil - t));
    if (t - this.start >= rule.windowMs) {
      this.start = t;
      this.count = 0;
    }
    this.count++;
    if (this.count > rule.limit) {
      this.blockedUntil = t + (rule.blockMs ?? rule.windowMs);
      // The block outlasts the window it began in; counting starts afresh after it.
      this.start = -Infinity;
      throw new RateLimited(secondsUntil(this.blockedUntil - t));
    }
  }

  reset(): void {
    this.start = -Infinity;
    this.count = 0;
    this.blockedUntil = -Infinity;
  }
}
