// Turns the zod schemas into CustomResourceDefinitions (apiextensions.k8s.io/v1).
//
// zod's own JSON Schema export does most of the work; this module bends its output
// into a *structural* schema (the form the API server requires): one canonical
// `anyOf` for int-or-string, no `propertyNames`, no `additionalProperties` next to
// `properties`, and no JavaScript-only integer bounds.
import { z } from "zod";
import { stringify } from "yaml";
import { GROUP, VERSION } from "./common.ts";
import { TunnelBindingSpec, TunnelBindingStatus } from "./tunnel-binding.ts";
import { TunnelProviderSpec, TunnelProviderStatus } from "./tunnel-provider.ts";
import { TunnelSpec, TunnelStatus } from "./tunnel.ts";

export type JsonSchema = { [key: string]: unknown };

interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "date" | "boolean";
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface KindDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  scope: "Namespaced" | "Cluster";
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  printerColumns: PrinterColumn[];
}

const READY_COLUMN: PrinterColumn = {
  name: "Ready",
  type: "string",
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
};
const AGE_COLUMN: PrinterColumn = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" };

export const KINDS: KindDefinition[] = [
  {
    kind: "TunnelProvider",
    plural: "tunnelproviders",
    singular: "tunnelprovider",
    shortNames: ["tp"],
    scope: "Cluster",
    description: "A tunnel provider account: which provider class and which credentials. Cluster-scoped.",
    spec: TunnelProviderSpec,
    status: TunnelProviderStatus,
    printerColumns: [{ name: "Type", type: "string", jsonPath: ".spec.type" }, READY_COLUMN, AGE_COLUMN],
  },
  {
    kind: "Tunnel",
    plural: "tunnels",
    singular: "tunnel",
    shortNames: ["tun"],
    scope: "Namespaced",
    description: "One tunnel instance of a TunnelProvider, which TunnelBindings route through.",
    spec: TunnelSpec,
    status: TunnelStatus,
    printerColumns: [
      { name: "Provider", type: "string", jsonPath: ".spec.providerRef.name" },
      READY_COLUMN,
      { name: "Routes", type: "integer", jsonPath: ".status.boundRoutes" },
      AGE_COLUMN,
    ],
  },
  {
    kind: "TunnelBinding",
    plural: "tunnelbindings",
    singular: "tunnelbinding",
    shortNames: ["tb"],
    scope: "Namespaced",
    description: "Routes from a Tunnel to Services in this namespace; the public URLs appear in status.",
    spec: TunnelBindingSpec,
    status: TunnelBindingStatus,
    printerColumns: [
      { name: "Tunnel", type: "string", jsonPath: ".spec.tunnelRef.name" },
      READY_COLUMN,
      { name: "URL", type: "string", jsonPath: ".status.routes[0].url" },
      AGE_COLUMN,
    ],
  },
];

const JS_SAFE_INTEGER_BOUNDS = new Set([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]);

/** Rewrites one zod-exported JSON Schema node (and its children) into structural form. */
export function toStructural(node: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === "$schema" || key === "propertyNames") continue;
    if ((key === "minimum" || key === "maximum") && JS_SAFE_INTEGER_BOUNDS.has(value as number)) continue;
    if (key === "properties") {
      out.properties = Object.fromEntries(
        Object.entries(value as Record<string, JsonSchema>).map(([name, child]) => [name, toStructural(child)]),
      );
    } else if (key === "items" || key === "additionalProperties") {
      out[key] = typeof value === "object" && value !== null ? toStructural(value as JsonSchema) : value;
    } else {
      out[key] = value;
    }
  }
  if (out["x-kubernetes-int-or-string"] === true) {
    // Structural schemas allow exactly this anyOf, with no constraints inside it. The
    // branches' constraints move up to the node, where each applies only to values of
    // its own JSON type (minimum to numbers, pattern to strings), as core/v1 does for
    // quantities. CEL is no help here: with no maxLength it costs the string as unbounded.
    const merged = pick(out, ["description", "default", "x-kubernetes-validations"], {
      "x-kubernetes-int-or-string": true,
      anyOf: [{ type: "integer" }, { type: "string" }],
    });
    for (const branch of (out.anyOf as JsonSchema[] | undefined) ?? []) {
      pick(branch, ["minimum", "maximum", "minLength", "maxLength", "pattern"], merged);
    }
    return merged;
  }
  if (out["x-kubernetes-preserve-unknown-fields"] === true) {
    delete out.additionalProperties;
    out.type = "object";
  }
  if (out.additionalProperties === false) delete out.additionalProperties;
  if (out.type === "integer" && out.format === undefined) out.format = "int64";
  return out;
}

function pick(from: JsonSchema, keys: string[], base: JsonSchema): JsonSchema {
  for (const key of keys) if (from[key] !== undefined) base[key] = from[key];
  return base;
}

export function openApiSchema(schema: z.ZodType): JsonSchema {
  return toStructural(z.toJSONSchema(schema, { io: "input", target: "openapi-3.0", unrepresentable: "throw" }) as JsonSchema);
}

export function buildCrd(def: KindDefinition): JsonSchema {
  const spec = openApiSchema(def.spec);
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${def.plural}.${GROUP}`,
      labels: { "app.kubernetes.io/part-of": "ktube" },
    },
    spec: {
      group: GROUP,
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: ["ktube"],
      },
      scope: def.scope,
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: def.printerColumns,
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: def.description,
              required: ["spec"],
              properties: {
                apiVersion: { type: "string", description: "APIVersion of this object: ktube.dev/v1alpha1." },
                kind: { type: "string", description: `Kind of this object: ${def.kind}.` },
                metadata: { type: "object" },
                spec: spec,
                status: openApiSchema(def.status),
              },
            },
          },
        },
      ],
    },
  };
}

export const GENERATED_HEADER = "# Generated by packages/api (npm run crds). Do not edit.\n";

/** The CRD files, by file name, exactly as they are committed under crds/. */
export function renderCrdFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const def of KINDS) {
    files.set(`${GROUP}_${def.plural}.yaml`, GENERATED_HEADER + stringify(buildCrd(def), { lineWidth: 0 }));
  }
  return files;
}
