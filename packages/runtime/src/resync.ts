// The periodic resync's timing. Enqueueing every key of every controller at one instant
// makes a CPU and API spike each period (and the replicas of a sharded controller all
// spike together), so both the period and each key's moment within it are jittered.

/** The share of the period that a resync's keys are spread over, and its cap. */
const SPREAD_SHARE = 0.1;
const MAX_SPREAD_MS = 30_000;

/** The period, jittered by ±10% each time so that resyncs of different controllers drift apart. */
export function jitteredResyncPeriod(periodMs: number, random: () => number = Math.random): number {
  return Math.round(periodMs * (0.9 + 0.2 * random()));
}

/** How long after a resync fires each key may be enqueued: 10% of the period, at most 30 s. */
export function resyncSpreadMs(periodMs: number): number {
  return Math.min(periodMs * SPREAD_SHARE, MAX_SPREAD_MS);
}

/** The delay of one key within a resync: uniform over the spread. */
export function resyncKeyDelay(periodMs: number, random: () => number = Math.random): number {
  return Math.floor(random() * resyncSpreadMs(periodMs));
}

/** Fires `onResync` every jittered period until stopped. */
export class ResyncTimer {
  private readonly periodMs: number;
  private readonly onResync: () => void;
  private timer?: NodeJS.Timeout;

  constructor(periodMs: number, onResync: () => void) {
    this.periodMs = periodMs;
    this.onResync = onResync;
  }

  start(): void {
    if (this.periodMs <= 0 || this.timer) return;
    this.schedule();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.schedule();
      this.onResync();
    }, jitteredResyncPeriod(this.periodMs));
    // A safety net must not keep a process alive that has nothing else to do.
    this.timer.unref();
  }
}
