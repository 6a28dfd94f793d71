// Event sources: an informer plus the function mapping its objects to queue keys, as
// controller-runtime's source.Kind with a handler.EventHandler.
import type { Cache, CacheSelector } from "./cache.ts";
import type { KubeObject, ObjectRef, ResourceType } from "./client.ts";
import type { Informer } from "./informer.ts";
import type { UpdatePredicate } from "./predicates.ts";

/**
 * Maps an object of a watched kind to the keys to reconcile: object references
 * (`{ namespace, name }`) or any string a keyed controller understands (`zone/example.com`).
 */
export type MapFn<T = KubeObject> = (obj: T) => Array<ObjectRef | string>;

/** The queue key of a reference: `namespace/name`, or `name` for cluster-scoped objects; strings are keys already. */
export const toKey = (ref: ObjectRef | string): string => (typeof ref === "string" ? ref : ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name);

/** The key of the controlling owner of `obj`, if that owner is of `ownerType`. */
export function controllerOwnerKey(obj: KubeObject, ownerType: ResourceType<unknown>): string | undefined {
  const ref = obj.metadata?.ownerReferences?.find((r) => r.controller && r.kind === ownerType.kind && sameGroup(r.apiVersion, ownerType.apiVersion));
  if (!ref) return undefined;
  return ownerType.namespaced && obj.metadata?.namespace ? `${obj.metadata.namespace}/${ref.name}` : ref.name;
}

const group = (apiVersion: string): string => (apiVersion.includes("/") ? apiVersion.split("/")[0]! : "");
const sameGroup = (a: string, b: string): boolean => group(a) === group(b);

/** Where a source delivers the keys its events map to. */
export interface KeySink {
  enqueue(keys: string[], debounce?: { delayMs: number; maxDelayMs?: number }): void;
  mapFailed(kind: string, error: unknown): void;
}

export interface EventSourceOptions {
  /** Update events pass when any of these does (none: every update passes). */
  predicates?: UpdatePredicate[];
  /** Debounce: enqueue once events stopped for this long (at most `maxDelayMs`, default ten times as long, after the first). */
  delayMs?: number;
  maxDelayMs?: number;
}

export interface EventSource {
  readonly type: ResourceType<unknown>;
  readonly selector: CacheSelector;
  /** Registers the informer in `cache` and routes its events to `sink`; returns the informer. */
  attach(cache: Cache, sink: KeySink): Informer;
}

export function eventSource<T>(type: ResourceType<T>, selector: CacheSelector, map: MapFn<T & KubeObject>, options: EventSourceOptions = {}): EventSource {
  const { predicates = [], delayMs, maxDelayMs } = options;
  const debounce = delayMs ? { delayMs, ...(maxDelayMs ? { maxDelayMs } : {}) } : undefined;
  return {
    type,
    selector,
    attach(cache, sink) {
      const informer = cache.informer(type, selector);
      const keysOf = (obj: T & KubeObject): string[] => {
        try {
          return map(obj).map(toKey);
        } catch (error) {
          sink.mapFailed(type.kind, error);
          return [];
        }
      };
      const enqueue = (...objs: Array<T & KubeObject>): void => sink.enqueue([...new Set(objs.flatMap(keysOf))], debounce);
      informer.addHandler({
        add: (obj) => enqueue(obj),
        delete: (obj) => enqueue(obj),
        update: (oldObj, newObj) => {
          if (predicates.length > 0 && !predicates.some((p) => p(oldObj, newObj))) return;
          // A child that changed owner wakes both the old and the new owner, each once.
          enqueue(oldObj, newObj);
        },
      });
      return informer;
    },
  };
}
