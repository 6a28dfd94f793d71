// The informer's object store: objects by key, plus named secondary indexes (client-go's
// Indexer), so a lookup by reference (bindings of a tunnel, tunnels of a provider) costs
// O(matches) instead of a scan of every cached object.
import type { KubeObject } from "./client.ts";

/** The values an object is filed under in one index (e.g. the tunnel keys a binding refers to). */
export type IndexFunc<T> = (obj: T) => string[];

// Members that take a T are methods (bivariant), so an ObjectStore<Sub> is an
// ObjectStore<KubeObject>: the cache keeps informers of every type in one map.
//
// Most objects are filed under one value (their tunnel, their namespace) and many values
// name one object (a hostname): a lone key or value is kept as a plain string, and a Set
// or an array only where there are several. A Set and an array for every object in every
// index took more memory than the keys and values they held.
interface Index<T> {
  valuesOf(obj: T): string[];
  /** value -> the key of the object filed under it, or the keys of several */
  keysByValue: Map<string, string | Set<string>>;
  /** key -> the value (or values) it is filed under now, so an update or delete can unfile it */
  valuesByKey: Map<string, string | string[]>;
}

export class ObjectStore<T extends KubeObject> {
  private readonly objects = new Map<string, T>();
  private readonly indexes = new Map<string, Index<T>>();
  /** Called when an index function throws; the object is then filed under no value of it. */
  private readonly onIndexError: (index: string, key: string, error: unknown) => void;

  constructor(onIndexError: (index: string, key: string, error: unknown) => void = () => {}) {
    this.onIndexError = onIndexError;
  }

  get size(): number {
    return this.objects.size;
  }

  get(key: string): T | undefined {
    return this.objects.get(key);
  }

  has(key: string): boolean {
    return this.objects.has(key);
  }

  keys(): IterableIterator<string> {
    return this.objects.keys();
  }

  values(): IterableIterator<T> {
    return this.objects.values();
  }

  entries(): IterableIterator<[string, T]> {
    return this.objects.entries();
  }

  set(key: string, obj: T): void {
    this.objects.set(key, obj);
    for (const [name, index] of this.indexes) this.file(name, index, key, obj);
  }

  delete(key: string): void {
    if (!this.objects.delete(key)) return;
    for (const index of this.indexes.values()) this.unfile(index, key);
  }

  /** Adds an index and files every object already stored under it. */
  addIndex(name: string, fn: IndexFunc<T>): void {
    if (this.indexes.has(name)) throw new Error(`index "${name}" already exists`);
    const index: Index<T> = { valuesOf: fn, keysByValue: new Map(), valuesByKey: new Map() };
    this.indexes.set(name, index);
    for (const [key, obj] of this.objects) this.file(name, index, key, obj);
  }

  hasIndex(name: string): boolean {
    return this.indexes.has(name);
  }

  /** The objects filed under `value` in index `name`. */
  byIndex(name: string, value: string): T[] {
    const index = this.indexes.get(name);
    if (!index) throw new Error(`no index "${name}"`);
    const keys = index.keysByValue.get(value);
    if (keys === undefined) return [];
    const found: T[] = [];
    for (const key of typeof keys === "string" ? [keys] : keys) {
      const obj = this.objects.get(key);
      if (obj) found.push(obj);
    }
    return found;
  }

  /** The values of index `name` that have at least one object. */
  indexValues(name: string): string[] {
    const index = this.indexes.get(name);
    if (!index) throw new Error(`no index "${name}"`);
    return [...index.keysByValue.keys()];
  }

  private file(name: string, index: Index<T>, key: string, obj: T): void {
    let values: string[];
    try {
      values = [...new Set(index.valuesOf(obj))];
    } catch (error) {
      this.onIndexError(name, key, error);
      values = [];
    }
    this.unfile(index, key);
    if (values.length === 0) return;
    index.valuesByKey.set(key, values.length === 1 ? values[0]! : values);
    for (const value of values) {
      const keys = index.keysByValue.get(value);
      if (keys === undefined) index.keysByValue.set(value, key);
      else if (typeof keys === "string") index.keysByValue.set(value, new Set([keys, key]));
      else keys.add(key);
    }
  }

  private unfile(index: Index<T>, key: string): void {
    const old = index.valuesByKey.get(key);
    if (old === undefined) return;
    index.valuesByKey.delete(key);
    for (const value of typeof old === "string" ? [old] : old) {
      const keys = index.keysByValue.get(value);
      if (keys === undefined) continue;
      if (typeof keys === "string") {
        if (keys === key) index.keysByValue.delete(value);
        continue;
      }
      keys.delete(key);
      if (keys.size === 1) index.keysByValue.set(value, keys.values().next().value!);
    }
  }
}
