// Finalizer helpers, after kube-rs's `finalizer()`: the finalizer goes on before the
// first external side effect, cleanup runs when the object is being deleted, and the
// finalizer comes off only after cleanup succeeded. Every patch is a JSON patch with
// a `test` op, so a concurrent change makes it fail instead of clobbering the list.
import { ApiError, type KubeClient, type KubeObject, PatchType, type ResourceType } from "@ktube/runtime";

export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return obj.metadata?.finalizers?.includes(finalizer) ?? false;
}

export function isBeingDeleted(obj: KubeObject): boolean {
  return Boolean(obj.metadata?.deletionTimestamp);
}

/** Adds `finalizer` if missing. Returns the patched object, or `obj` when nothing was needed. */
export async function addFinalizer<T extends KubeObject>(client: KubeClient, type: ResourceType, obj: T, finalizer: string): Promise<T> {
  if (hasFinalizer(obj, finalizer)) return obj;
  const current = obj.metadata?.finalizers;
  const patch = current
    ? [
        { op: "test", path: "/metadata/finalizers", value: current },
        { op: "add", path: "/metadata/finalizers/-", value: finalizer },
      ]
    : [
        { op: "test", path: "/metadata/resourceVersion", value: obj.metadata?.resourceVersion },
        { op: "add", path: "/metadata/finalizers", value: [finalizer] },
      ];
  return client.patch<T>(type, obj.metadata?.namespace, obj.metadata!.name!, patch, PatchType.json);
}

/** Removes `finalizer` if present; an object already gone counts as done. */
export async function removeFinalizer<T extends KubeObject>(client: KubeClient, type: ResourceType, obj: T, finalizer: string): Promise<T | undefined> {
  const index = obj.metadata?.finalizers?.indexOf(finalizer) ?? -1;
  if (index < 0) return obj;
  try {
    return await client.patch<T>(type, obj.metadata?.namespace, obj.metadata!.name!, [
      { op: "test", path: `/metadata/finalizers/${index}`, value: finalizer },
      { op: "remove", path: `/metadata/finalizers/${index}` },
    ], PatchType.json);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return undefined;
    throw error;
  }
}

export type FinalizerEvent<T> = { type: "apply"; obj: T } | { type: "cleanup"; obj: T };

/**
 * Runs `apply` for a live object (after making sure the finalizer is on it) and
 * `cleanup` for one being deleted (removing the finalizer once it returned). Cleanup
 * must tolerate side effects that never happened. A failing cleanup throws, so the
 * finalizer stays and the controller retries with backoff.
 */
export async function finalize<T extends KubeObject, R>(
  client: KubeClient,
  type: ResourceType,
  obj: T,
  finalizer: string,
  handlers: { apply: (obj: T) => Promise<R>; cleanup: (obj: T) => Promise<void> },
): Promise<R | undefined> {
  if (isBeingDeleted(obj)) {
    if (!hasFinalizer(obj, finalizer)) return undefined;
    await handlers.cleanup(obj);
    await removeFinalizer(client, type, obj, finalizer);
    return undefined;
  }
  const withFinalizer = await addFinalizer(client, type, obj, finalizer);
  return handlers.apply(withFinalizer);
}
