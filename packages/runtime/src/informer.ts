// A list-then-watch cache of one resource type that never gives up.
//
// @kubernetes/client-node ships an informer, but it stops for good on a 500 or a
// reset connection and has no idle timeout, so a controller built on it silently
// goes deaf. This one relists on 410 Gone, restarts forever with capped backoff,
// asks for bookmarks, and aborts a watch that has been silent for too long.
import { Watch } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { type KubeClient, type KubeObject, type ListOptions, objectKey, resourcePath, type ResourceType } from "./client.ts";
import { Backoff, sleep } from "./backoff.ts";
import { type IndexFunc, ObjectStore } from "./store.ts";

export type InformerEvent = "add" | "update" | "delete";
// Methods, not function-typed properties: they are bivariant, so an Informer<Sub> is an
// Informer<KubeObject> (the cache keeps informers of every type in one map).
export interface EventHandler<T> {
  add?(obj: T): void;
  update?(oldObj: T, newObj: T): void;
  delete?(obj: T): void;
}

export interface InformerOptions extends Omit<ListOptions, "limit"> {
  /** Abort a watch that delivered nothing (not even a bookmark) for this long. */
  idleTimeoutMs?: number;
  /** Page size of the initial and recovery lists. */
  pageSize?: number;
  backoff?: Backoff;
  logger?: Logger;
}

class GoneError extends Error {}

/**
 * A watch that ends cleanly this soon after it started, having delivered nothing, is
 * treated as a failure (client-go's rule): a server or proxy that answers 200 and hangs
 * up at once must meet growing backoff, not a tight re-watch loop.
 */
export const SHORT_WATCH_MS = 1000;

/** The namespace index every informer keeps, so a namespaced list is O(objects in it). */
const NAMESPACE_INDEX = "ktube.dev/namespace";

/**
 * What the cache keeps of an object from a list or a watch. managedFields are large
 * (often most of a small object's bytes) and no controller reads them: dropped, as
 * controller-runtime users do with a transform. apiVersion and kind are the type's own
 * strings, one for every object, instead of a copy per object parsed from the JSON.
 */
function cachedForm<T extends KubeObject>(type: ResourceType<unknown>, obj: T): T {
  const cached = { apiVersion: type.apiVersion, kind: type.kind, ...obj };
  cached.apiVersion = type.apiVersion;
  cached.kind = type.kind;
  if (cached.metadata?.managedFields !== undefined) delete cached.metadata.managedFields;
  return cached;
}

export class Informer<T extends KubeObject = KubeObject> {
  readonly type: ResourceType<unknown>;
  private readonly client: KubeClient;
  private readonly options: InformerOptions;
  private readonly store: ObjectStore<T>;
  private readonly handlers: Array<EventHandler<T>> = [];
  private readonly syncWaiters: Array<() => void> = [];
  private resourceVersion = "";
  private hasSynced = false;
  private stopped = true;
  private abort?: AbortController;
  private loop?: Promise<void>;
  private readonly backoff: Backoff;
  private readonly logger?: Logger;
  /** Counts of what the informer did, for tests and metrics. */
  readonly stats = { lists: 0, watches: 0, relistsOnGone: 0, idleTimeouts: 0, errors: 0, shortWatches: 0 };

  constructor(client: KubeClient, type: ResourceType<unknown>, options: InformerOptions = {}) {
    this.client = client;
    this.type = type;
    this.options = options;
    this.backoff = options.backoff ?? new Backoff(200, 30_000);
    this.logger = options.logger?.child({ informer: type.kind });
    this.store = new ObjectStore<T>((index, key, error) => this.logger?.error({ index, key, err: describe(error) }, "index function threw"));
    this.store.addIndex(NAMESPACE_INDEX, (obj) => [obj.metadata?.namespace ?? ""]);
  }

  get synced(): boolean {
    return this.hasSynced;
  }

  addHandler(handler: EventHandler<T>): void {
    this.handlers.push(handler);
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(filter?: { namespace?: string }): T[] {
    return filter?.namespace === undefined ? [...this.store.values()] : this.store.byIndex(NAMESPACE_INDEX, filter.namespace);
  }

  /**
   * Files every object under the values `fn` returns, kept current on add, update,
   * delete and relist; objects already cached are filed at once.
   */
  addIndex(name: string, fn: IndexFunc<T>): void {
    this.store.addIndex(name, fn);
  }

  hasIndex(name: string): boolean {
    return this.store.hasIndex(name);
  }

  /** The cached objects filed under `value` in index `name`: O(matches). */
  byIndex(name: string, value: string): T[] {
    if (!this.store.hasIndex(name)) throw new Error(`${this.type.kind} informer has no index "${name}"; add it with addIndex() first`);
    return this.store.byIndex(name, value);
  }

  keys(): string[] {
    return [...this.store.keys()];
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    this.backoff.cancel();
    await this.loop;
  }

  waitForSync(): Promise<void> {
    if (this.hasSynced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  private async run(): Promise<void> {
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
        }
        const started = Date.now();
        const delivered = await this.watchOnce();
        if (this.stopped) break;
        if (delivered === 0 && Date.now() - started < SHORT_WATCH_MS) {
          this.stats.shortWatches++;
          this.logger?.warn("watch closed at once without events; retrying with backoff");
          await this.backoff.wait();
        } else {
          this.backoff.reset();
        }
      } catch (error) {
        if (this.stopped) break;
        if (error instanceof GoneError) {
          this.stats.relistsOnGone++;
          this.logger?.info({ resourceVersion: this.resourceVersion }, "watch expired (410 Gone); relisting");
          needList = true;
          continue;
        }
        this.stats.errors++;
        const status = (error as { statusCode?: number }).statusCode;
        if (status === 410) needList = true;
        this.logger?.warn({ err: describe(error) }, "list/watch failed; retrying with backoff");
        await this.backoff.wait();
      }
    }
  }

  /** Lists everything and reconciles the store with it, emitting the differences. */
  private async relist(): Promise<void> {
    this.stats.lists++;
    const { items, metadata } = await this.client.list<T>(this.type, {
      namespace: this.options.namespace,
      labelSelector: this.options.labelSelector,
      fieldSelector: this.options.fieldSelector,
      limit: this.options.pageSize ?? 500,
    });
    const seen = new Set<string>();
    for (const item of items) {
      const obj = cachedForm(this.type, item);
      const key = objectKey(obj);
      seen.add(key);
      this.upsert(key, obj);
    }
    for (const [key, old] of this.store.entries()) {
      if (!seen.has(key)) {
        this.store.delete(key);
        this.emit("delete", old);
      }
    }
    this.resourceVersion = metadata.resourceVersion ?? "";
    if (!this.hasSynced) {
      this.hasSynced = true;
      for (const resolve of this.syncWaiters.splice(0)) resolve();
    }
  }

  /** One watch connection, from the last resourceVersion until it ends; resolves to the number of events it delivered. */
  private watchOnce(): Promise<number> {
    this.stats.watches++;
    const watch = new Watch(this.client.kubeConfig);
    const idleTimeoutMs = this.options.idleTimeoutMs ?? 90_000;
    // Watch aborts a connection that is silent for requestTimeoutMs (30 s by default,
    // shorter than the API server's bookmark interval). The field is private in the
    // typings but is the library's only knob for it.
    Reflect.set(watch, "requestTimeoutMs", idleTimeoutMs);
    const path = resourcePath(this.type, this.options.namespace);
    return new Promise<number>((resolve, reject) => {
      let settled = false;
      let delivered = 0;
      const finish = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        if (error) reject(error);
        else resolve(delivered);
      };
      const onEvent = (phase: string, obj: T): void => {
        if (settled) return;
        delivered++;
        if (phase === "ERROR") {
          const status = obj as unknown as { code?: number; message?: string };
          this.abort?.abort();
          finish(status.code === 410 ? new GoneError(status.message) : Object.assign(new Error(status.message), { statusCode: status.code }));
          return;
        }
        const rv = obj.metadata?.resourceVersion;
        if (rv) this.resourceVersion = rv;
        if (phase === "BOOKMARK") return;
        const full = cachedForm(this.type, obj);
        const key = objectKey(full);
        if (phase === "DELETED") {
          const old = this.store.get(key);
          this.store.delete(key);
          this.emit("delete", old ?? full);
        } else {
          this.upsert(key, full);
        }
      };
      const onDone = (error: unknown): void => {
        if ((error as { name?: string } | null)?.name === "TimeoutError") {
          this.stats.idleTimeouts++;
          this.logger?.debug({ idleTimeoutMs }, "watch idle for too long; reconnecting");
          finish();
          return;
        }
        const status = (error as { statusCode?: number } | null)?.statusCode;
        if (status === 410) finish(new GoneError("410 Gone"));
        else if (error && !this.stopped) finish(error);
        else finish();
      };
      watch
        .watch(
          path,
          {
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            // The server closes the watch after this; spread reconnects like client-go does.
            timeoutSeconds: 300 + Math.floor(Math.random() * 300),
            labelSelector: this.options.labelSelector,
            fieldSelector: this.options.fieldSelector,
          },
          onEvent as (phase: string, apiObj: unknown) => void,
          onDone,
        )
        .then((controller) => {
          this.abort = controller;
          if (this.stopped) controller.abort();
        }, finish);
    });
  }

  private upsert(key: string, obj: T): void {
    const old = this.store.get(key);
    this.store.set(key, obj);
    if (!old) this.emit("add", obj);
    else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit("update", old, obj);
  }

  private emit(event: InformerEvent, a: T, b?: T): void {
    for (const handler of this.handlers) {
      try {
        if (event === "add") handler.add?.(a);
        else if (event === "update") handler.update?.(a, b!);
        else handler.delete?.(a);
      } catch (error) {
        this.logger?.error({ err: describe(error) }, "event handler threw");
      }
    }
  }
}

export function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

export { sleep };
