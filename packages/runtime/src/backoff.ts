// Capped exponential backoff with jitter, whose waits can be cut short on shutdown.

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class Backoff {
  private attempt = 0;
  private pending?: { timer: NodeJS.Timeout; resolve: () => void };
  readonly initialMs: number;
  readonly maxMs: number;

  constructor(initialMs: number, maxMs: number) {
    this.initialMs = initialMs;
    this.maxMs = maxMs;
  }

  /** The next delay: initial * 2^attempt, capped, with up to 20% jitter. */
  next(): number {
    const base = Math.min(this.initialMs * 2 ** this.attempt, this.maxMs);
    this.attempt++;
    return Math.round(base * (0.8 + Math.random() * 0.2));
  }

  wait(): Promise<void> {
    const ms = this.next();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        resolve();
      }, ms);
      this.pending = { timer, resolve };
    });
  }

  reset(): void {
    this.attempt = 0;
  }

  /** Ends a wait in progress at once. */
  cancel(): void {
    if (!this.pending) return;
    clearTimeout(this.pending.timer);
    this.pending.resolve();
    this.pending = undefined;
  }
}
