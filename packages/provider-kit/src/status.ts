// Status through the status subresource, with observedGeneration, written only when it
// changed; an Event for each condition change a person needs to see: a condition
// turning False, or Ready turning True after a failure. The first Ready of a new object
// (or after it only waited, reason Pending) is progress the status shows; a thousand
// new bindings do not need a thousand Events saying so.
import { setCondition, type Condition, type ConditionInput } from "@ktube/api";
import type { KubeObject, Manager, ResourceType } from "@ktube/runtime";

type WithStatus = KubeObject & { status?: { conditions?: Condition[] } & object };

export async function recordConditionEvents(manager: Manager, object: KubeObject, before: Condition[] | undefined, updates: ConditionInput[]): Promise<void> {
  // Conditions often share a cause (ConnectorsReady and Ready both False for the same
  // reason): a person needs one Event for it, not one per condition.
  const recorded = new Set<string>();
  for (const update of updates) {
    const previous = before?.find((c) => c.type === update.type);
    if (previous?.status === update.status && previous?.reason === update.reason) continue;
    const event =
      update.status === "False"
        ? { type: "Warning" as const, note: update.message || `${update.type} is False` }
        : update.type === "Ready" && update.status === "True" && previous?.status === "False" && previous.reason !== "Pending"
          ? { type: "Normal" as const, note: update.message || "Ready" }
          : undefined;
    if (!event || recorded.has(`${event.type}/${update.reason}/${event.note}`)) continue;
    recorded.add(`${event.type}/${update.reason}/${event.note}`);
    await manager.events.record(object, event.type, update.reason, "Reconcile", event.note);
  }
}

/**
 * Sets `conditions` (and status `fields`) on `object` for its current generation,
 * patches status when anything differs, then records Events for the changes. Returns
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
  const desired = { ...status, ...fields, observedGeneration: generation, conditions: next };
  const updated = (await manager.status.update(type, object, desired as NonNullable<T["status"]>)) as T | undefined;
  // Events follow a status change that happened: a reconcile working from a stale read
  // (its write fails with a conflict) or one that changes nothing records none.
  if (updated) await recordConditionEvents(manager, object, status.conditions, conditions);
  return updated ?? object;
}
