// Writes status through the status subresource, only when it changed.
import { type KubeClient, type KubeObject, PatchType, type ResourceType } from "./client.ts";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    return a.length === other.length && a.every((v, i) => deepEqual(v, other[i]));
  }
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** An RFC 7386 merge patch turning `from` into `to` (null removes a key; arrays are replaced whole). */
export function mergePatch(from: unknown, to: unknown): Json | undefined {
  if (deepEqual(from, to)) return undefined;
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(from) || !isObject(to)) return (to === undefined ? null : to) as Json;
  const patch: Record<string, Json> = {};
  for (const key of new Set([...Object.keys(from), ...Object.keys(to)])) {
    if (to[key] === undefined) {
      if (from[key] !== undefined) patch[key] = null;
      continue;
    }
    const sub = mergePatch(from[key], to[key]);
    if (sub !== undefined) patch[key] = sub;
  }
  return patch;
}

export class StatusWriter {
  private readonly client: KubeClient;
  private readonly fieldManager: string;

  constructor(client: KubeClient, fieldManager: string) {
    this.client = client;
    this.fieldManager = fieldManager;
  }

  /**
   * Patches `status` of `current` to `desired` when they differ, guarded by the
   * resourceVersion `current` was read at (a stale read fails with 409 Conflict and the
   * reconcile runs again on the fresh object). Returns the updated object, or
   * undefined when nothing needed writing.
   */
  async update<T extends KubeObject & { status?: unknown }>(type: ResourceType<unknown>, current: T, desired: NonNullable<T["status"]>): Promise<T | undefined> {
    const diff = mergePatch(current.status ?? {}, desired);
    if (diff === undefined) return undefined;
    return this.client.patch<T>(
      type,
      current.metadata?.namespace,
      current.metadata!.name!,
      { metadata: { resourceVersion: current.metadata?.resourceVersion }, status: diff },
      PatchType.merge,
      { subresource: "status", fieldManager: this.fieldManager },
    );
  }
}
