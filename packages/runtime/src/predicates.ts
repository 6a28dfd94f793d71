// Filters for update events, as controller-runtime's predicate package has them.
import type { KubeObject } from "./client.ts";
import { deepEqual } from "./status.ts";

export type UpdatePredicate = (oldObj: KubeObject, newObj: KubeObject) => boolean;

/**
 * Spec changes (metadata.generation) and the start of a deletion. Status-only
 * updates, which a controller's own status writes cause, do not pass.
 */
export const generationChanged: UpdatePredicate = (o, n) =>
  o.metadata?.generation !== n.metadata?.generation || !o.metadata?.deletionTimestamp !== !n.metadata?.deletionTimestamp;

export const labelsChanged: UpdatePredicate = (o, n) => !deepEqual(o.metadata?.labels ?? {}, n.metadata?.labels ?? {});

export const annotationsChanged: UpdatePredicate = (o, n) =>
  !deepEqual(o.metadata?.annotations ?? {}, n.metadata?.annotations ?? {});

export const finalizersChanged: UpdatePredicate = (o, n) =>
  !deepEqual(o.metadata?.finalizers ?? [], n.metadata?.finalizers ?? []);

/**
 * Passes when the value `select` picks differs (deep equality) between the old and the
 * new object, so a watch wakes its controller only for the fields that controller reads:
 * `changed((t) => [t.metadata?.generation, conditionStatus(t, "Ready")])` ignores a
 * status write that only updates counts.
 */
export const changed =
  (select: (obj: KubeObject) => unknown): UpdatePredicate =>
  (o, n) =>
    !deepEqual(select(o), select(n));

export const anyOf =
  (...predicates: UpdatePredicate[]): UpdatePredicate =>
  (o, n) =>
    predicates.some((p) => p(o, n));
