// ngrok's API rate limit: "120 requests over a rolling 60 second window" per account;
// over it, HTTP 429 with ERR_NGROK_226 (ngrok-docs api/index.mdx, "Rate limits"; the
// message as users report it: "Your account is rate limited to 120 API requests per
// minute.", ngrok/ngrok-operator#278).
//
// What the docs do not say, and the fake therefore assumes:
// - Refused requests do not count: the window holds the requests that were served, so a
//   client that backs off is admitted again as soon as its oldest served request is
//   60 s old. (A client that keeps hammering is refused for as long as it would be
//   anyway; no test here depends on the difference.)
// - No `Retry-After` header: the docs do not mention one, so the fake sends none and a
//   client must fall back to waiting out the window (~60 s).
// - Only authenticated requests count (the limit is per account).

export const NGROK_WINDOW_MS = 60_000;

/** A rolling window of admitted requests, on whatever clock the caller passes. */
export class RollingWindow {
  private readonly admitted: number[] = [];
  private readonly windowMs: number;

  constructor(windowMs: number = NGROK_WINDOW_MS) {
    this.windowMs = windowMs;
  }

  /** Admits a request at time `now` (ms) if fewer than `limit` were admitted in the window before it. */
  tryAdmit(now: number, limit: number): boolean {
    while (this.admitted.length > 0 && this.admitted[0]! <= now - this.windowMs) this.admitted.shift();
    if (this.admitted.length >= limit) return false;
    this.admitted.push(now);
    return true;
  }

  /** Requests admitted within the window ending at `now`. */
  inWindow(now: number): number {
    return this.admitted.filter((t) => t > now - this.windowMs).length;
  }

  reset(): void {
    this.admitted.length = 0;
  }
}
