// The controller builder: what a controller reconciles (for / forKeys), what wakes it
// (owns / watches), and how it runs (withOptions), as controller-runtime's builder.
import type { CacheSelector } from "./cache.ts";
import { type KubeObject, objectKey, type ResourceType } from "./client.ts";
import { Controller, type ControllerDeps, type ControllerOptions, type Primary, type Reconciler } from "./controller.ts";
import type { UpdatePredicate } from "./predicates.ts";
import { controllerOwnerKey, type EventSource, eventSource, type MapFn } from "./sources.ts";

export interface WatchOptions extends CacheSelector {
  predicates?: UpdatePredicate[];
  /**
   * Reconcile once events of this kind have stopped for this long (at most ten times
   * as long after the first, or `maxDelayMs`): a burst folds into one reconcile (e.g.
   * 1,000 bindings changing one tunnel's config).
   */
  delayMs?: number;
  maxDelayMs?: number;
}

export interface KeysOptions {
  /**
   * The keys the periodic resync (and the start) enqueues: those that must be visited
   * even when no watched object names them (e.g. every DNS zone, to delete stale records).
   */
  resyncKeys?: () => string[];
}

export class ControllerBuilder {
  private readonly name: string;
  private readonly deps: ControllerDeps;
  private readonly register: (controller: Controller) => void;
  private primary?: Primary;
  private primaryCalls = 0;
  private readonly owned: Array<{ type: ResourceType<unknown>; options: WatchOptions }> = [];
  private readonly watched: EventSource[] = [];
  private options: ControllerOptions = {};

  constructor(name: string, deps: ControllerDeps, register: (controller: Controller) => void) {
    this.name = name;
    this.deps = deps;
    this.register = register;
  }

  /** The kind this controller reconciles; its objects' keys are the queue's keys. */
  for<T>(type: ResourceType<T>, options: { predicates?: UpdatePredicate[] } & CacheSelector = {}): this {
    const { predicates = [], ...selector } = options;
    this.primary = { source: eventSource(type, selector, (obj) => [objectKey(obj)], { predicates }) };
    this.primaryCalls++;
    return this;
  }

  /**
   * A controller of keys that are not objects (controller-runtime's source.Channel): a
   * DNS zone, a provider account. Keys come from watches() map functions, from
   * `controller.enqueue(key)`, and from `resyncKeys`. A reconcile gets the raw key in
   * `request.key`.
   */
  forKeys(options: KeysOptions = {}): this {
    this.primary = options.resyncKeys ? { resyncKeys: options.resyncKeys } : {};
    this.primaryCalls++;
    return this;
  }

  /** Objects this controller creates, marked by a controller ownerReference to the `for` kind. */
  owns<T>(type: ResourceType<T>, options: WatchOptions = {}): this {
    this.owned.push({ type, options });
    return this;
  }

  /** Any other kind, mapped to keys by `map` (e.g. Service -> the bindings that reference it). */
  watches<T>(type: ResourceType<T>, map: MapFn<T & KubeObject>, options: WatchOptions = {}): this {
    const { predicates, delayMs, maxDelayMs, ...selector } = options;
    this.watched.push(eventSource(type, selector, map, { ...(predicates ? { predicates } : {}), ...(delayMs ? { delayMs } : {}), ...(maxDelayMs ? { maxDelayMs } : {}) }));
    return this;
  }

  withOptions(options: ControllerOptions): this {
    this.options = { ...this.options, ...options };
    return this;
  }

  build(reconciler: Reconciler): Controller {
    const primary = this.primary;
    if (!primary) throw new Error(`controller ${this.name}: call for(kind) or forKeys() before build()`);
    if (this.primaryCalls > 1) throw new Error(`controller ${this.name}: for() and forKeys() name what it reconciles; call one of them once`);
    if (!("source" in primary) && this.owned.length > 0) {
      throw new Error(`controller ${this.name}: owns(${this.owned.map((o) => o.type.kind).join(", ")}) needs a for(kind) owner; a forKeys() controller maps children with watches()`);
    }
    const ownerType = "source" in primary ? primary.source.type : undefined;
    const owned = this.owned.map(({ type, options: { predicates, delayMs, maxDelayMs, ...selector } }) =>
      eventSource(type, selector, (obj) => {
        const key = ownerType ? controllerOwnerKey(obj, ownerType) : undefined;
        return key ? [key] : [];
      }, { ...(predicates ? { predicates } : {}), ...(delayMs ? { delayMs } : {}), ...(maxDelayMs ? { maxDelayMs } : {}) }),
    );
    const controller = new Controller(this.name, this.deps, primary, [...owned, ...this.watched], reconciler, this.options);
    this.register(controller);
    return controller;
  }
}
