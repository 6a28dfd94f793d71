// Building blocks shared by the three kinds. Each schema carries the OpenAPI
// extensions the CRD generator needs (`x-kubernetes-*`) as zod metadata, so the
// zod schema is the single source of both the TypeScript types and the CRD.
import { z } from "zod";

export const GROUP = "ktube.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** A CEL rule attached to a schema node (`x-kubernetes-validations`). */
export interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
  fieldPath?: string;
  optionalOldSelf?: boolean;
}

export function cel(...rules: CelRule[]): { "x-kubernetes-validations": CelRule[] } {
  return { "x-kubernetes-validations": rules };
}

/** `self == oldSelf` with a message that names the field. */
export function immutable(field: string): CelRule {
  return { rule: "self == oldSelf", message: `${field} is immutable` };
}

// RFC 1123 names as Kubernetes uses them.
const DNS_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
export const dnsLabelPattern = `^${DNS_LABEL}$`;
export const dnsSubdomainPattern = `^${DNS_LABEL}(\\.${DNS_LABEL})*$`;

/** The name of a namespaced object (Service, Secret, Tunnel...). */
export const ObjectName = z
  .string()
  .min(1)
  .max(253)
  .regex(new RegExp(dnsSubdomainPattern), "must be a lowercase RFC 1123 subdomain")
  .describe("Name of the referenced object (a lowercase RFC 1123 subdomain).");

export const NamespaceName = z
  .string()
  .min(1)
  .max(63)
  .regex(new RegExp(dnsLabelPattern), "must be a lowercase RFC 1123 label")
  .describe("Namespace of the referenced object.");

/** A public DNS hostname; a leading `*.` label makes it a wildcard. */
export const Hostname = z
  .string()
  .min(1)
  .max(253)
  .regex(
    /^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/,
    "must be a lowercase DNS name such as app.example.com or *.example.com",
  )
  .describe("A lowercase DNS name such as `app.example.com`; `*.example.com` is a wildcard.");

/** A Go-style duration as Kubernetes and Envoy write them: `500ms`, `5s`, `1m30s`, `2h`. */
export const Duration = z
  .string()
  .max(32)
  .regex(/^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/, "must be a duration such as 500ms, 5s, 1m30s or 2h")
  .describe("A duration such as `500ms`, `5s`, `1m30s` or `2h`.");

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a Duration field's value (`1h30m`, `720h`, `500ms`). */
export function durationMs(value: string): number {
  let total = 0;
  for (const [, n, unit] of value.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)) total += Number(n) * DURATION_UNITS[unit!]!;
  return total;
}

export const Port = z.int().min(1).max(65535).meta({ format: "int32" });

/**
 * A Service port given by name or number (`x-kubernetes-int-or-string`). The
 * generator turns the union into the one `anyOf` form structural schemas allow and
 * checks the range and the name syntax with CEL.
 */
export const PortNameOrNumber = z
  .union([Port, z.string().min(1).max(15).regex(new RegExp(dnsLabelPattern))])
  .meta({
    "x-kubernetes-int-or-string": true,
    description: "A port of the Service, by name (`http`) or by number (`8080`).",
  });

export const SecretKeyRef = z
  .object({
    name: ObjectName.describe("Name of the Secret."),
    key: z.string().min(1).max(253).regex(/^[-._a-zA-Z0-9]+$/).describe("Key within the Secret's data."),
  })
  .describe("A key of a Secret in the namespace the controller runs in.");

export const LocalObjectRef = z.object({ name: ObjectName });

/** Kubernetes quantities (`100m`, `128Mi`) as int-or-string, with core/v1's pattern. */
const Quantity = z
  .union([
    z.int(),
    z
      .string()
      .max(64)
      .regex(/^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/),
  ])
  .meta({ "x-kubernetes-int-or-string": true, description: "A quantity such as 100m, 1 or 128Mi." });

export const ResourceRequirements = z
  .object({
    limits: z.record(z.string().max(253), Quantity).optional(),
    requests: z.record(z.string().max(253), Quantity).optional(),
  })
  .describe("Compute resources, as in a container's `resources`.");

export const Toleration = z.object({
  key: z.string().max(316).optional(),
  operator: z.enum(["Exists", "Equal"]).optional(),
  value: z.string().max(63).optional(),
  effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]).optional(),
  tolerationSeconds: z.int().meta({ format: "int64" }).optional(),
});

export const NodeSelector = z
  .record(z.string().max(316), z.string().max(63))
  .describe("Node labels the pods must match.");

/**
 * Pod affinity is passed through to the pods verbatim; the API server validates it
 * there. Writing out core/v1's whole affinity schema here would add nothing.
 */
export const Affinity = z
  .record(z.string(), z.unknown())
  .meta({ "x-kubernetes-preserve-unknown-fields": true, description: "Pod affinity, as in a Pod's `spec.affinity`." });

export const LabelSelectorRequirement = z.object({
  key: z.string().min(1).max(316),
  operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]),
  values: z.array(z.string().max(63)).max(64).optional(),
});

export const LabelSelector = z
  .object({
    matchLabels: z.record(z.string().max(316), z.string().max(63)).optional(),
    matchExpressions: z.array(LabelSelectorRequirement).max(32).optional(),
  })
  .meta({ "x-kubernetes-map-type": "atomic" })
  .describe("A label selector, as in a Deployment's `spec.selector`.");

export const ConditionStatus = z.enum(["True", "False", "Unknown"]);

/** metav1.Condition. */
export const Condition = z.object({
  type: z.string().min(1).max(316).regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/),
  status: ConditionStatus,
  reason: z.string().min(1).max(1024).regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/),
  message: z.string().max(32768),
  observedGeneration: z.int().min(0).meta({ format: "int64" }).optional(),
  lastTransitionTime: z.string().meta({ format: "date-time" }),
});

export const Conditions = z
  .array(Condition)
  .max(32)
  .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] });

export const ObjectMeta = z
  .object({
    name: z.string().optional(),
    namespace: z.string().optional(),
    uid: z.string().optional(),
    generation: z.number().optional(),
    resourceVersion: z.string().optional(),
    creationTimestamp: z.union([z.string(), z.date()]).optional(),
    deletionTimestamp: z.union([z.string(), z.date()]).optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    finalizers: z.array(z.string()).optional(),
  })
  .loose();

export type Condition = z.infer<typeof Condition>;
export type ConditionStatus = z.infer<typeof ConditionStatus>;
export type SecretKeyRef = z.infer<typeof SecretKeyRef>;
export type LabelSelector = z.infer<typeof LabelSelector>;
export type ResourceRequirements = z.infer<typeof ResourceRequirements>;
export type Toleration = z.infer<typeof Toleration>;
