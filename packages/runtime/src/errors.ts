// Errors a reconciler throws to steer the controller. Each carries a reason that
// maps straight to a condition reason.

/** A failure that retrying cannot fix (bad input, a forbidden reference...): recorded, not retried. */
export class TerminalError extends Error {
  override name = "TerminalError";
  readonly reason: string;

  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** A failure to retry after a delay the reconciler knows (e.g. a provider's Retry-After). */
export class RequeueAfterError extends Error {
  override name = "RequeueAfterError";
  readonly reason: string;
  readonly delayMs: number;

  constructor(reason: string, message: string, delayMs: number) {
    super(message);
    this.reason = reason;
    this.delayMs = delayMs;
  }
}
