// Controllers: a workqueue of keys fed by informers, drained by reconcile workers.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Cache, CacheSelector } from "./cache.ts";
import { type KubeObject, objectKey, parseKey, type ResourceType } from "./client.ts";
import { RequeueAfterError, TerminalError } from "./errors.ts";
import { describe, type Informer } from "./informer.ts";
import type { RuntimeMetrics } from "./metrics.ts";
import type { UpdatePredicate } from "./predicates.ts";
import { type RateLimiter, WorkQueue } from "./workqueue.ts";

export interface Request {
  namespace?: string;
  name: string;
}

export interface Result {
  /** Reconcile this key again after this many milliseconds. */
  requeueAfterMs?: number;
}

export interface ReconcileContext {
  controller: string;
  reconcileId: string;
  logger: Logger;
}

export type Reconciler = (request: Request, context: ReconcileContext) => Promise<Result | void>;

/** Maps an object of a watched kind to the keys of the objects to reconcile. */
export type MapFn<T extends KubeObject = KubeObject> = (obj: T) => Array<Request | string>;

export interface ControllerOptions {
  maxConcurrentReconciles?: number;
  /** Enqueue every object of the `for` kind this often (a safety net; 0 disables). */
  resyncPeriodMs?: number;
  rateLimiter?: RateLimiter;
}

interface WatchSource {
  type: ResourceType;
  selector: CacheSelector;
  map: MapFn;
  predicates: UpdatePredicate[];
  /** Enqueue this long after the event, so a burst of events costs one reconcile. */
  delayMs?: number;
}

export interface WatchOptions extends CacheSelector {
  predicates?: UpdatePredicate[];
  /**
   * Reconcile once events of this kind have stopped for this long (at most ten times
   * as long after the first): a burst folds into one reconcile (e.g. 1,000 bindings
   * changing one tunnel's config).
   */
  delayMs?: number;
}

export interface ControllerDeps {
  cache: Cache;
  metrics: RuntimeMetrics;
  logger: Logger;
}

export const toKey = (r: Request | string): string => (typeof r === "string" ? r : r.namespace ? `${r.namespace}/${r.name}` : r.name);

/** The key of the controlling owner of `obj`, if that owner is of `ownerType`. */
export function controllerOwnerKey(obj: KubeObject, ownerType: ResourceType): string | undefined {
  const ref = obj.metadata?.ownerReferences?.find((r) => r.controller && r.kind === ownerType.kind && sameGroup(r.apiVersion, ownerType.apiVersion));
  if (!ref) return undefined;
  return ownerType.namespaced && obj.metadata?.namespace ? `${obj.metadata.namespace}/${ref.name}` : ref.name;
}

const group = (apiVersion: string): string => (apiVersion.includes("/") ? apiVersion.split("/")[0]! : "");
const sameGroup = (a: string, b: string): boolean => group(a) === group(b);

export class ControllerBuilder {
  private readonly name: string;
  private readonly deps: ControllerDeps;
  private readonly register: (controller: Controller) => void;
  private primary?: WatchSource;
  private readonly sources: WatchSource[] = [];
  private options: ControllerOptions = {};

  constructor(name: string, deps: ControllerDeps, register: (controller: Controller) => void) {
    this.name = name;
    this.deps = deps;
    this.register = register;
  }

  /** The kind this controller reconciles; its keys are the queue's keys. */
  for(type: ResourceType, options: { predicates?: UpdatePredicate[] } & CacheSelector = {}): this {
    const { predicates = [], ...selector } = options;
    this.primary = { type, selector, map: (obj) => [objectKey(obj)], predicates };
    return this;
  }

  /** Objects this controller creates, marked by a controller ownerReference to the `for` kind. */
  owns(type: ResourceType, options: WatchOptions = {}): this {
    const { predicates = [], delayMs, ...selector } = options;
    this.sources.push({
      type,
      selector,
      predicates,
      ...(delayMs ? { delayMs } : {}),
      map: (obj) => {
        const key = this.primary ? controllerOwnerKey(obj, this.primary.type) : undefined;
        return key ? [key] : [];
      },
    });
    return this;
  }

  /** Any other kind, mapped to keys by `map` (e.g. Service -> the bindings that reference it). */
  watches<T extends KubeObject>(type: ResourceType, map: MapFn<T>, options: WatchOptions = {}): this {
    const { predicates = [], delayMs, ...selector } = options;
    this.sources.push({ type, selector, predicates, map: map as MapFn, ...(delayMs ? { delayMs } : {}) });
    return this;
  }

  withOptions(options: ControllerOptions): this {
    this.options = { ...this.options, ...options };
    return this;
  }

  build(reconciler: Reconciler): Controller {
    if (!this.primary) throw new Error(`controller ${this.name}: call for(kind) before build()`);
    const controller = new Controller(this.name, this.deps, this.primary, this.sources, reconciler, this.options);
    this.register(controller);
    return controller;
  }
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  /** The informer of the reconciled kind; reconcilers read from it. */
  readonly informer: Informer;
  private readonly deps: ControllerDeps;
  private readonly reconciler: Reconciler;
  private readonly informers: Informer[] = [];
  private readonly maxConcurrent: number;
  private readonly resyncPeriodMs: number;
  private readonly logger: Logger;
  private workers: Promise<void>[] = [];
  private resyncTimer?: NodeJS.Timeout;
  private running = false;

  constructor(
    name: string,
    deps: ControllerDeps,
    primary: WatchSource,
    sources: WatchSource[],
    reconciler: Reconciler,
    options: ControllerOptions,
  ) {
    this.name = name;
    this.deps = deps;
    this.reconciler = reconciler;
    this.maxConcurrent = Math.max(1, options.maxConcurrentReconciles ?? 1);
    this.resyncPeriodMs = options.resyncPeriodMs ?? 10 * 60_000;
    this.logger = deps.logger.child({ controller: name });
    this.queue = new WorkQueue({ ...(options.rateLimiter ? { rateLimiter: options.rateLimiter } : {}), metrics: deps.metrics.queueMetrics(name) });
    this.informer = this.subscribe(primary);
    for (const source of sources) this.subscribe(source);
    deps.metrics.maxConcurrentReconciles.set({ controller: name }, this.maxConcurrent);
    deps.metrics.activeWorkers.set({ controller: name }, 0);
  }

  get isRunning(): boolean {
    return this.running;
  }

  enqueue(request: Request | string): void {
    this.queue.add(toKey(request));
  }

  /** Enqueues every object of the reconciled kind, as the periodic resync does. */
  resync(): void {
    for (const key of this.informer.keys()) this.queue.add(key);
  }

  /** Keys waiting or being reconciled: zero when the controller is idle. */
  get pending(): number {
    return this.queue.length + this.queue.inFlight;
  }

  /** Waits for this controller's caches, then runs its workers until stop(). */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await Promise.all(this.informers.map((i) => i.waitForSync()));
    if (!this.running) return;
    // Keys enqueued before the caches synced were for objects the workers can now see.
    for (const key of this.informer.keys()) this.queue.add(key);
    this.logger.info({ workers: this.maxConcurrent }, "starting workers");
    this.workers = Array.from({ length: this.maxConcurrent }, () => this.worker());
    if (this.resyncPeriodMs > 0) {
      this.resyncTimer = setInterval(() => this.resync(), this.resyncPeriodMs);
      this.resyncTimer.unref();
    }
  }

  /** Stops handing out keys and waits for reconciles in flight (up to `timeoutMs`). */
  async stop(timeoutMs = 30_000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.resyncTimer);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.logger.warn({ inFlight: this.queue.inFlight }, "reconciles still running at the shutdown deadline");
        resolve();
      }, timeoutMs);
    });
    await Promise.race([this.queue.shutDownWithDrain().then(() => Promise.all(this.workers)), timeout]);
    clearTimeout(timer);
    this.logger.info("stopped");
  }

  private subscribe(source: WatchSource): Informer {
    const informer = this.deps.cache.informer(source.type, source.selector);
    this.informers.push(informer);
    const keysOf = (obj: KubeObject): string[] => {
      try {
        return source.map(obj).map(toKey);
      } catch (error) {
        this.logger.error({ err: describe(error), kind: source.type.kind }, "map function threw");
        return [];
      }
    };
    const enqueue = (...objs: KubeObject[]): void => {
      for (const key of new Set(objs.flatMap(keysOf))) {
        if (source.delayMs) this.queue.addDebounced(key, source.delayMs);
        else this.queue.add(key);
      }
    };
    informer.addHandler({
      add: (obj) => enqueue(obj),
      delete: (obj) => enqueue(obj),
      update: (oldObj, newObj) => {
        if (source.predicates.length > 0 && !source.predicates.some((p) => p(oldObj, newObj))) return;
        // A child that changed owner wakes both the old and the new owner, each once.
        enqueue(oldObj, newObj);
      },
    });
    return informer;
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
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
    const request = parseKey(key);
    const reconcileId = randomUUID();
    const logger = this.logger.child({ kind: this.informer.type.kind, namespace: request.namespace, name: request.name, reconcileID: reconcileId });
    metrics.activeWorkers.inc(labels);
    const started = process.hrtime.bigint();
    try {
      const result = await this.reconciler(request, { controller: this.name, reconcileId, logger });
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
      if (error instanceof TerminalError) {
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
      metrics.activeWorkers.dec(labels);
      metrics.reconcileTime.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }
}
