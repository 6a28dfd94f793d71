// Controllers: a workqueue of keys fed by event sources, drained by reconcile workers.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Cache } from "./cache.ts";
import { type ObjectRef, parseKey } from "./client.ts";
import { RequeueAfterError, TerminalError } from "./errors.ts";
import { describe, type Informer } from "./informer.ts";
import type { RuntimeMetrics } from "./metrics.ts";
import { ResyncTimer, resyncKeyDelay } from "./resync.ts";
import { type EventSource, toKey } from "./sources.ts";
import { type RateLimiter, WorkQueue } from "./workqueue.ts";

export interface Request extends ObjectRef {
  /** The queue key as it was enqueued; `namespace` and `name` are parsed from it (`ns/name` or `name`). */
  key: string;
}

export interface Result {
  /** Reconcile this key again after this many milliseconds. */
  requeueAfterMs?: number;
}

export interface ReconcileContext {
  controller: string;
  reconcileId: string;
  logger: Logger;
  /**
   * Aborted when this process must stop reconciling now: the lease was lost, or a
   * shutdown's drain deadline passed. Pass it to every slow call (provider SDKs, waits
   * for a rate-limit budget) so an aborted reconcile ends instead of acting late.
   */
  signal: AbortSignal;
}

export type Reconciler = (request: Request, context: ReconcileContext) => Promise<Result | void>;

export interface ControllerOptions {
  maxConcurrentReconciles?: number;
  /**
   * Enqueue every key again about this often (a safety net; 0 disables). The period is
   * jittered by ±10% and the keys are spread over 10% of it (at most 30 s).
   */
  resyncPeriodMs?: number;
  rateLimiter?: RateLimiter;
  /** Fail to start (and make /readyz fail) when the caches have not synced in this long. Default 2 min, as controller-runtime. */
  cacheSyncTimeoutMs?: number;
}

export interface ControllerDeps {
  cache: Cache;
  metrics: RuntimeMetrics;
  logger: Logger;
}

/** What a controller reconciles: objects of one kind, or keys that are not objects. */
export type Primary = { source: EventSource } | { resyncKeys?: () => string[] };

const abortError = (message: string): DOMException => new DOMException(message, "AbortError");

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  /** The informer of the reconciled kind; undefined for a controller of keys (forKeys). */
  readonly informer?: Informer;
  private readonly deps: ControllerDeps;
  private readonly reconciler: Reconciler;
  private readonly informers: Informer[] = [];
  private readonly resyncKeys: () => string[];
  private readonly kind?: string;
  private readonly maxConcurrent: number;
  private readonly resyncPeriodMs: number;
  private readonly cacheSyncTimeoutMs: number;
  private readonly resyncTimer: ResyncTimer;
  private readonly logger: Logger;
  /** One AbortController per reconcile in flight. */
  private readonly inFlight = new Set<AbortController>();
  private workers: Promise<void>[] = [];
  private running = false;
  private halted = false;

  constructor(name: string, deps: ControllerDeps, primary: Primary, sources: EventSource[], reconciler: Reconciler, options: ControllerOptions) {
    this.name = name;
    this.deps = deps;
    this.reconciler = reconciler;
    this.maxConcurrent = Math.max(1, options.maxConcurrentReconciles ?? 1);
    this.resyncPeriodMs = options.resyncPeriodMs ?? 10 * 60_000;
    this.cacheSyncTimeoutMs = options.cacheSyncTimeoutMs ?? 2 * 60_000;
    this.logger = deps.logger.child({ controller: name });
    this.queue = new WorkQueue({ ...(options.rateLimiter ? { rateLimiter: options.rateLimiter } : {}), metrics: deps.metrics.queueMetrics(name) });
    deps.metrics.trackInFlightWork(name, this.queue);
    if ("source" in primary) {
      const informer = this.attach(primary.source);
      this.informer = informer;
      this.kind = primary.source.type.kind;
      this.resyncKeys = () => informer.keys();
    } else {
      this.resyncKeys = primary.resyncKeys ?? (() => []);
    }
    for (const source of sources) this.attach(source);
    this.resyncTimer = new ResyncTimer(this.resyncPeriodMs, () => this.periodicResync());
    deps.metrics.maxConcurrentReconciles.set({ controller: name }, this.maxConcurrent);
    deps.metrics.activeWorkers.set({ controller: name }, 0);
  }

  get isRunning(): boolean {
    return this.running;
  }

  enqueue(ref: ObjectRef | string): void {
    this.queue.add(toKey(ref));
  }

  /**
   * Enqueues every key at once (the objects of the reconciled kind, or a keyed
   * controller's resyncKeys). For tests and benchmarks; the periodic resync spreads them.
   */
  resync(): void {
    for (const key of this.resyncKeys()) this.queue.add(key);
  }

  /** Keys waiting or being reconciled: zero when the controller is idle. */
  get pending(): number {
    return this.queue.length + this.queue.inFlight;
  }

  /** Keys waiting, in flight, or being gathered by a debounced watch (requeue-after delays not counted). */
  get unsettled(): number {
    return this.pending + this.queue.gathering;
  }

  /**
   * Waits for this controller's caches (failing after cacheSyncTimeoutMs), then runs its
   * workers until stop() or halt().
   */
  async start(): Promise<void> {
    if (this.running || this.halted) return;
    this.running = true;
    try {
      await this.waitForCaches();
      // Keys of objects seen before the workers ran are queued already; resyncKeys are
      // the ones no event may name (a keyed controller's zones with nothing in them).
      if (this.running) this.resync();
    } catch (error) {
      this.running = false;
      throw error;
    }
    if (!this.running) return;
    this.logger.info({ workers: this.maxConcurrent }, "starting workers");
    this.workers = Array.from({ length: this.maxConcurrent }, () => this.worker());
    this.resyncTimer.start();
  }

  /**
   * Stops handing out keys and waits for reconciles in flight; at `timeoutMs` their
   * signals are aborted and stop returns without waiting further.
   */
  async stop(timeoutMs = 30_000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.resyncTimer.stop();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.logger.warn({ inFlight: this.queue.inFlight }, "reconciles still running at the shutdown deadline; aborting them");
        this.abortInFlight(abortError("shutdown deadline passed"));
        resolve();
      }, timeoutMs);
    });
    await Promise.race([this.queue.shutDownWithDrain().then(() => Promise.all(this.workers)), deadline]);
    clearTimeout(timer);
    this.logger.info("stopped");
  }

  /**
   * Stops at once, as when the lease is lost: hands out no more keys, aborts the signal
   * of every reconcile in flight, and does not wait for them (another instance may be
   * leading already, so nothing may be drained).
   */
  halt(reason: string): void {
    if (this.halted) return;
    this.halted = true;
    this.running = false;
    this.resyncTimer.stop();
    this.queue.shutDown();
    this.abortInFlight(abortError(reason));
    this.logger.warn({ reason }, "halted");
  }

  private abortInFlight(reason: DOMException): void {
    for (const controller of this.inFlight) controller.abort(reason);
  }

  private async waitForCaches(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const pending = this.informers.filter((i) => !i.synced).map((i) => i.type.kind);
        reject(new Error(`caches did not sync within ${this.cacheSyncTimeoutMs} ms: ${[...new Set(pending)].join(", ")}`));
      }, this.cacheSyncTimeoutMs);
    });
    try {
      await Promise.race([Promise.all(this.informers.map((i) => i.waitForSync())), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private periodicResync(): void {
    for (const key of this.resyncKeys()) this.queue.addAfter(key, resyncKeyDelay(this.resyncPeriodMs));
  }

  private attach(source: EventSource): Informer {
    const informer = source.attach(this.deps.cache, {
      enqueue: (keys, debounce) => {
        for (const key of keys) {
          if (debounce) this.queue.addDebounced(key, debounce.delayMs, debounce.maxDelayMs);
          else this.queue.add(key);
        }
      },
      mapFailed: (kind, error) => this.logger.error({ err: describe(error), kind }, "map function threw"),
    });
    this.informers.push(informer);
    return informer;
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      // Handed out in the same turn as a halt: another instance may lead already.
      if (this.halted) {
        this.queue.done(key);
        return;
      }
      try {
        await this.reconcileKey(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async reconcileKey(key: string): Promise<void> {
    const { metrics } = this.deps;
    const labels = { controller: this.name };
    const request: Request = { key, ...parseKey(key) };
    const reconcileId = randomUUID();
    const logger = this.logger.child({
      ...(this.kind ? { kind: this.kind, namespace: request.namespace, name: request.name } : { key }),
      reconcileID: reconcileId,
    });
    const abort = new AbortController();
    this.inFlight.add(abort);
    metrics.activeWorkers.inc(labels);
    const started = process.hrtime.bigint();
    try {
      const result = await this.reconciler(request, { controller: this.name, reconcileId, logger, signal: abort.signal });
      this.queue.forget(key);
      if (result?.requeueAfterMs !== undefined && result.requeueAfterMs > 0) {
        this.queue.addAfter(key, result.requeueAfterMs);
        metrics.reconcileTotal.inc({ ...labels, result: "requeue_after" });
      } else {
        metrics.reconcileTotal.inc({ ...labels, result: "success" });
      }
    } catch (error) {
      metrics.reconcileErrors.inc(labels);
      metrics.reconcileTotal.inc({ ...labels, result: "error" });
      if (abort.signal.aborted) {
        logger.info({ reason: describe(abort.signal.reason), err: describe(error) }, "reconcile aborted");
      } else if (error instanceof TerminalError) {
        metrics.terminalReconcileErrors.inc(labels);
        this.queue.forget(key);
        logger.error({ reason: error.reason, err: error.message }, "reconcile failed terminally; not retrying");
      } else if (error instanceof RequeueAfterError) {
        this.queue.addAfter(key, error.delayMs);
        logger.info({ reason: error.reason, err: error.message, retryInMs: error.delayMs }, "reconcile will be retried");
      } else {
        this.queue.addRateLimited(key);
        logger.error({ err: describe(error), retries: this.queue.retries(key) }, "reconcile failed; retrying with backoff");
      }
    } finally {
      this.inFlight.delete(abort);
      metrics.activeWorkers.dec(labels);
      metrics.reconcileTime.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }
}
