// A rate-limited work queue with client-go's semantics: a key waiting in the queue
// is held once however often it is added; a key being processed is never handed to
// a second worker, and if it is added meanwhile it runs again after `done`.

export interface RateLimiter {
  /** How long to wait before `key` may be retried. */
  when(key: string): number;
  forget(key: string): void;
  retries(key: string): number;
}

/** Per-key exponential backoff: base * 2^failures, capped. */
export class ExponentialBackoffLimiter implements RateLimiter {
  private readonly failures = new Map<string, number>();
  readonly baseMs: number;
  readonly maxMs: number;

  constructor(baseMs = 5, maxMs = 15 * 60_000) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
  }

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return Math.min(this.baseMs * 2 ** n, this.maxMs);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/** An overall token bucket (qps, burst) shared by all keys. */
export class TokenBucketLimiter implements RateLimiter {
  private tokens: number;
  private last = Date.now();
  readonly qps: number;
  readonly burst: number;

  constructor(qps = 10, burst = 100) {
    this.qps = qps;
    this.burst = burst;
    this.tokens = burst;
  }

  when(): number {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1; // reserve, possibly going into debt: the debt is the delay
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.qps) * 1000);
  }

  forget(): void {}

  retries(): number {
    return 0;
  }
}

/** The longest delay of several limiters (controller-runtime's default combination). */
export class MaxOfLimiter implements RateLimiter {
  private readonly limiters: RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    return Math.max(...this.limiters.map((l) => l.when(key)));
  }

  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }

  retries(key: string): number {
    return Math.max(...this.limiters.map((l) => l.retries(key)));
  }
}

export const defaultRateLimiter = (): RateLimiter =>
  new MaxOfLimiter(new ExponentialBackoffLimiter(5, 15 * 60_000), new TokenBucketLimiter(10, 100));

export interface QueueMetrics {
  add(): void;
  depth(n: number): void;
  retry(): void;
  queued(seconds: number): void;
  worked(seconds: number): void;
}

const noMetrics: QueueMetrics = { add() {}, depth() {}, retry() {}, queued() {}, worked() {} };

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly addedAt = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly debounced = new Map<string, { first: number; timer: NodeJS.Timeout }>();
  private waiters: Array<(key: string | undefined) => void> = [];
  private drainWaiters: Array<() => void> = [];
  private shuttingDown = false;
  private readonly rateLimiter: RateLimiter;
  private readonly metrics: QueueMetrics;

  constructor(options: { rateLimiter?: RateLimiter; metrics?: QueueMetrics } = {}) {
    this.rateLimiter = options.rateLimiter ?? defaultRateLimiter();
    this.metrics = options.metrics ?? noMetrics;
  }

  get length(): number {
    return this.queue.length;
  }

  /** Is `key` waiting to be added later (a retry, a requeue-after, or a gathered burst)? */
  isScheduled(key: string): boolean {
    return this.delayed.has(key) || this.debounced.has(key);
  }

  /** Keys whose debounced add has not fired yet (a burst still being gathered). */
  get gathering(): number {
    return this.debounced.size;
  }

  get inFlight(): number {
    return this.processing.size;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Seconds of work in flight and not yet done, summed over the keys being processed (client-go's unfinished work). */
  unfinishedWorkSeconds(now: number = Date.now()): number {
    let total = 0;
    for (const started of this.startedAt.values()) total += now - started;
    return total / 1000;
  }

  /** Seconds the longest-running key in flight has been processed for; 0 when none is. */
  longestRunningProcessorSeconds(now: number = Date.now()): number {
    let oldest = now;
    for (const started of this.startedAt.values()) oldest = Math.min(oldest, started);
    return (now - oldest) / 1000;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.metrics.add();
    this.dirty.add(key);
    this.addedAt.set(key, Date.now());
    if (this.processing.has(key)) return;
    this.push(key);
  }

  /** Adds `key` after `delayMs`; an earlier pending add of the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.delayed.set(key, { at, timer });
  }

  /**
   * Adds `key` once events stop arriving for `delayMs`, but no later than `maxDelayMs`
   * after the first of them: a burst of changes becomes one reconcile.
   */
  addDebounced(key: string, delayMs: number, maxDelayMs: number = delayMs * 10): void {
    if (this.shuttingDown) return;
    const now = Date.now();
    const pending = this.debounced.get(key);
    const first = pending?.first ?? now;
    const at = Math.min(now + delayMs, first + maxDelayMs);
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.debounced.delete(key);
      this.add(key);
    }, Math.max(0, at - now));
    this.debounced.set(key, { first, timer });
  }

  addRateLimited(key: string): void {
    this.metrics.retry();
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /** Clears the key's failure history (after a success or a terminal error). */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  retries(key: string): number {
    return this.rateLimiter.retries(key);
  }

  /** The next key to process, or undefined once the queue shuts down. */
  get(): Promise<string | undefined> {
    const key = this.pop();
    if (key !== undefined || this.shuttingDown) return Promise.resolve(key);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    const started = this.startedAt.get(key);
    if (started !== undefined) this.metrics.worked((Date.now() - started) / 1000);
    this.startedAt.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key);
    else if (this.dirty.has(key)) this.dirty.delete(key);
    if (this.processing.size === 0) for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  /** Stops handing out keys and drops the waiting ones. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of [...this.delayed.values(), ...this.debounced.values()]) clearTimeout(timer);
    this.delayed.clear();
    this.debounced.clear();
    this.queue.length = 0;
    this.metrics.depth(0);
    for (const resolve of this.waiters.splice(0)) resolve(undefined);
  }

  /** Shuts down, then waits until every key being processed is done. */
  async shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.processing.size === 0) return;
    await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  private push(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      this.begin(key);
      waiter(key);
      return;
    }
    this.queue.push(key);
    this.metrics.depth(this.queue.length);
  }

  private pop(): string | undefined {
    const key = this.queue.shift();
    if (key === undefined) return undefined;
    this.metrics.depth(this.queue.length);
    this.begin(key);
    return key;
  }

  private begin(key: string): void {
    this.processing.add(key);
    this.dirty.delete(key);
    const added = this.addedAt.get(key);
    if (added !== undefined) this.metrics.queued((Date.now() - added) / 1000);
    this.addedAt.delete(key);
    this.startedAt.set(key, Date.now());
  }
}
