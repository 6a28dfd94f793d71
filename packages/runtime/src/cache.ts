// Shared informers, one per resource type and selector, with typed reads.
import type { Logger } from "pino";
import { type KubeClient, type KubeObject, type ResourceType } from "./client.ts";
import { Informer, type InformerOptions } from "./informer.ts";

export type CacheSelector = Pick<InformerOptions, "namespace" | "labelSelector" | "fieldSelector">;

export class Cache {
  private readonly client: KubeClient;
  private readonly informers = new Map<string, Informer>();
  private readonly defaults: Omit<InformerOptions, keyof CacheSelector>;
  private started = false;

  constructor(client: KubeClient, defaults: Omit<InformerOptions, keyof CacheSelector> & { logger?: Logger } = {}) {
    this.client = client;
    this.defaults = defaults;
  }

  /** The informer for `type` (and selector), created on first use and shared after. */
  informer<T extends KubeObject>(type: ResourceType, selector: CacheSelector = {}): Informer<T> {
    const key = [type.apiVersion, type.plural, selector.namespace ?? "", selector.labelSelector ?? "", selector.fieldSelector ?? ""].join("|");
    let informer = this.informers.get(key);
    if (!informer) {
      informer = new Informer(this.client, type, { ...this.defaults, ...selector });
      this.informers.set(key, informer);
      if (this.started) informer.start();
    }
    return informer as unknown as Informer<T>;
  }

  /** An object from the informer of `type` and `selector` (the one a controller's for/owns/watches made). */
  get<T extends KubeObject>(type: ResourceType, namespace: string | undefined, name: string, selector: CacheSelector = {}): T | undefined {
    return this.informer<T>(type, selector).get(namespace ? `${namespace}/${name}` : name);
  }

  list<T extends KubeObject>(type: ResourceType, filter: { namespace?: string } = {}, selector: CacheSelector = {}): T[] {
    return this.informer<T>(type, selector).list(filter);
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
}
