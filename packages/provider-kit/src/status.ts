// Status through the status subresource, with observedGeneration, written only when it
// changed; an Event for each condition change a person needs to see (a condition
// turning False, or Ready turning True).
import { setCondition, type Condition, type ConditionInput } from "@ktube/api";
import type { KubeObject, Manager, ResourceType } from "@ktube/runtime";

type WithStatus = KubeObject & { status?: { conditions?: Condition[] } & object };

export async function recordConditionEvents(manager: Manager, object: KubeObject, before: Condition[] | undefined, updates: ConditionInput[]): Promise<void> {
  for (const update of updates) {
    const previous = before?.find((c) => c.type === update.type);
    if (previous?.status === update.status && previous?.reason === update.reason) continue;
    if (update.status === "False") await manager.events.record(object, "Warning", update.reason, "Reconcile", update.message || `${update.type} is False`);
    else if (update.type === "Ready" && update.status === "True") await manager.events.record(object, "Normal", update.reason, "Reconcile", update.message || "Ready");
  }
}

/**
 * Sets `conditions` (and status `fields`) on `object` for its current generation,
 * records Events for the changes, and patches status when anything differs. Returns
 * the updated object, or `object` when nothing needed writing.
 */
export async function writeStatus<T extends WithStatus>(
  manager: Manager,
  type: ResourceType,
  object: T,
  conditions: ConditionInput[],
  fields: Record<string, unknown> = {},
): Promise<T> {
  const generation = object.metadata?.generation;
  const status = (object.status ?? {}) as Record<string, unknown> & { conditions?: Condition[] };
  let next = status.conditions ?? [];
  for (const c of conditions) next = setCondition(next, c, generation);
  await recordConditionEvents(manager, object, status.conditions, conditions);
  const desired = { ...status, ...fields, observedGeneration: generation, conditions: next };
  return ((await manager.status.update(type, object, desired as NonNullable<T["status"]>)) as T | undefined) ?? object;
}
