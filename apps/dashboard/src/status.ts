// One summary word per object, from its conditions: never colour alone in the page.
import type { Condition } from "@ktube/api";

export type Summary = "Deleting" | "Reconciling" | "Ready" | "Not ready" | "Pending";

export interface StatusLike {
  metadata?: { generation?: number; deletionTimestamp?: string | Date };
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

export interface ObjectSummary {
  summary: Summary;
  /** The Ready condition's reason and message, where there is one. */
  reason?: string;
  message?: string;
}

export function summarize(object: StatusLike): ObjectSummary {
  const ready = object.status?.conditions?.find((c) => c.type === "Ready");
  const detail = ready ? { reason: ready.reason, message: ready.message } : {};
  if (object.metadata?.deletionTimestamp) return { summary: "Deleting", ...detail };
  if (object.status?.observedGeneration === undefined && !ready) return { summary: "Pending" };
  if (object.metadata?.generation !== undefined && object.status?.observedGeneration !== object.metadata.generation) {
    return { summary: "Reconciling", ...detail };
  }
  if (ready?.status === "True") return { summary: "Ready", ...detail };
  if (ready?.status === "False") return { summary: "Not ready", ...detail };
  return { summary: "Pending", ...detail };
}

/** Only http(s) URLs become links: a status is written by controllers, and `javascript:` there must stay text. */
export function safeHttpUrl(value: string | undefined): string | undefined {
  if (!value) return undefined;
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : undefined;
  } catch {
    return undefined;
  }
}
