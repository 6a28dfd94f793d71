// Shared informers, one per resource type and selector, with typed reads and indexes.
//
// Reads go only to informers someone registered (cache.informer(), or a controller's
// for/owns/watches). A read with a selector nobody registered throws instead of quietly
// starting a new informer and answering "not found" while it lists.
import type { Logger } from "pino";
import type { KubeClient, KubeObject, ResourceType } from "./client.ts";
import { Informer, type InformerOptions } from "./informer.ts";
import type { IndexFunc } from "./store.ts";

export type CacheSelector = Pick<InformerOptions, "namespace" | "labelSelector" | "fieldSelector">;

const informerKey = (type: ResourceType<unknown>, selector: CacheSelector): string =>
  [type.apiVersion, type.plural, selector.namespace ?? "", selector.labelSelector ?? "", selector.fieldSelector ?? ""].join("|");

/** `ConfigMap (v1) {namespace=a, labelSelector=x=y}`: how errors name an informer. */
export function describeInformer(type: ResourceType<unknown>, selector: CacheSelector): string {
  const parts = Object.entries(selector)
    .filter(([, value]) => value !== undefined && value !== "")
    .map(([key, value]) => `${key}=${String(value)}`);
  return `${type.kind} (${type.apiVersion}) ${parts.length ? `{${parts.join(", ")}}` : "{all}"}`;
}

export class Cache {
  private readonly client: KubeClient;
  private readonly informers = new Map<string, Informer>();
  private readonly defaults: Omit<InformerOptions, keyof CacheSelector>;
  private started = false;

  constructor(client: KubeClient, defaults: Omit<InformerOptions, keyof CacheSelector> & { logger?: Logger } = {}) {
    this.client = client;
    this.defaults = defaults;
  }

  /** Registers (on first use) and returns the informer for `type` and `selector`, shared after. */
  informer<T = KubeObject>(type: ResourceType<T>, selector: CacheSelector = {}): Informer<T & KubeObject> {
    const key = informerKey(type, selector);
    let informer = this.informers.get(key);
    if (!informer) {
      informer = new Informer(this.client, type, { ...this.defaults, ...selector });
      this.informers.set(key, informer);
      if (this.started) informer.start();
    }
    return narrow<T>(informer);
  }

  /** An object from the registered informer of `type` and `selector`. */
  get<T = KubeObject>(type: ResourceType<T>, namespace: string | undefined, name: string, selector: CacheSelector = {}): (T & KubeObject) | undefined {
    return this.registered(type, selector).get(namespace && type.namespaced ? `${namespace}/${name}` : name);
  }

  /** Every object of the registered informer of `type` and `selector` (of one namespace with `filter.namespace`). */
  list<T = KubeObject>(type: ResourceType<T>, filter: { namespace?: string } = {}, selector: CacheSelector = {}): Array<T & KubeObject> {
    return this.registered(type, selector).list(filter);
  }

  /**
   * Files the objects of the registered informer of `type` and `selector` under the
   * values `fn` returns (e.g. a binding under the key of the tunnel it names), kept
   * current as objects change; objects already cached are filed at once.
   */
  addIndex<T = KubeObject>(type: ResourceType<T>, indexName: string, fn: IndexFunc<T & KubeObject>, selector: CacheSelector = {}): void {
    this.registered(type, selector).addIndex(indexName, fn);
  }

  /** The objects filed under `value` in index `indexName`: O(matches), not O(cache). */
  byIndex<T = KubeObject>(type: ResourceType<T>, indexName: string, value: string, selector: CacheSelector = {}): Array<T & KubeObject> {
    return this.registered(type, selector).byIndex(indexName, value);
  }

  get synced(): boolean {
    return [...this.informers.values()].every((i) => i.synced);
  }

  async waitForSync(): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.waitForSync()));
  }

  start(): void {
    this.started = true;
    for (const informer of this.informers.values()) informer.start();
  }

  async stop(): Promise<void> {
    this.started = false;
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
  }

  private registered<T>(type: ResourceType<T>, selector: CacheSelector): Informer<T & KubeObject> {
    const informer = this.informers.get(informerKey(type, selector));
    if (!informer) {
      throw new Error(
        `no informer for ${describeInformer(type, selector)}: register it with cache.informer(type, selector) or a controller's for/owns/watches, and read with the same selector`,
      );
    }
    return narrow<T>(informer);
  }
}

/**
 * The one place the cache's untyped map meets the caller's type: the informer was made
 * for this ResourceType, whose phantom type is the object type it holds.
 */
function narrow<T>(informer: Informer): Informer<T & KubeObject> {
  return informer as Informer<T & KubeObject>;
}
