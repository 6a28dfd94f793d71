// The request-body schema, taken from the SDK's contract types (there is no published
// OpenAPI document; research §5). Each object's field table is typed against the contract
// interface with `satisfies FieldsOf<T>`, so the compiler refuses a table that misses a
// contract field or names one the contract lacks; test/management-contracts.test.ts also
// compares the tables with the .d.ts files on disk. Constraints come from the runtime
// `TunnelConstraints` (anchored: the SDK's regexes are not) and the C# attributes the
// .d.ts doc comments repeat (description ≤ 400, ≤ 100 labels, ≤ 40 ACEs…).
//
// Server-set fields (status, created, expiration, accessTokens, portForwardingUris…) are
// accepted and ignored, as ASP.NET model binding would; a field no contract names is refused.
import {
  TunnelAccessControlEntryType,
  TunnelAccessScopes,
  TunnelConnectionMode,
  TunnelConstraints,
  TunnelProtocol,
  type Tunnel,
  type TunnelAccessControl,
  type TunnelAccessControlEntry,
  type TunnelOptions,
  type TunnelPort,
  type TunnelRelayTunnelEndpoint,
} from "@microsoft/dev-tunnels-contracts";
import type { LocalNetworkTunnelEndpoint } from "@microsoft/dev-tunnels-contracts/localNetworkTunnelEndpoint.js";

export type Field =
  | { kind: "string"; pattern?: RegExp; maxLength?: number; enum?: readonly string[] }
  | { kind: "integer"; min?: number; max?: number }
  | { kind: "boolean" }
  | { kind: "date" }
  | { kind: "strings"; item?: { pattern?: RegExp; maxLength?: number; enum?: readonly string[] }; maxItems?: number }
  | { kind: "object"; schema: ObjectSchema }
  | { kind: "objects"; schema: ObjectSchema; maxItems?: number }
  /** Set by the service; accepted in requests and ignored. */
  | { kind: "readOnly" };

export interface ObjectSchema {
  /** The contract type's name, for messages. */
  name: string;
  fields: Readonly<Record<string, Field>>;
  required?: readonly string[];
}

/** One entry per contract field, no more, no less. */
type FieldsOf<T> = { [K in keyof Required<T>]-?: Field };

const anchored = (pattern: string): RegExp => new RegExp(`^(?:${pattern})$`);

export const Patterns = {
  tunnelId: anchored(TunnelConstraints.newTunnelIdPattern),
  tunnelName: anchored(TunnelConstraints.tunnelNamePattern),
  label: anchored(TunnelConstraints.labelPattern),
  domain: anchored(TunnelConstraints.tunnelDomainPattern),
  subject: anchored(TunnelConstraints.accessControlSubjectPattern),
} as const;

export const SCOPES: readonly string[] = Object.values(TunnelAccessScopes);
export const PROTOCOLS: readonly string[] = Object.values(TunnelProtocol);
/** Protocols served by web forwarding (they get `portForwardingUris`). */
export const WEB_PROTOCOLS: readonly string[] = [TunnelProtocol.Auto, TunnelProtocol.Http, TunnelProtocol.Https];

const labels: Field = {
  kind: "strings",
  item: { pattern: Patterns.label, maxLength: TunnelConstraints.labelMaxLength },
  maxItems: TunnelConstraints.maxLabels,
};

const optionsFields = {
  isGloballyAvailable: { kind: "boolean" },
  hostHeader: { kind: "string", maxLength: 253 },
  isHostHeaderUnchanged: { kind: "boolean" },
  originHeader: { kind: "string", maxLength: 2048 },
  isOriginHeaderUnchanged: { kind: "boolean" },
  isInspectionEnabled: { kind: "boolean" },
  isCrossSiteAuthenticationEnabled: { kind: "boolean" },
  isPartitionedSiteAuthenticationEnabled: { kind: "boolean" },
  isBearerTokenAuthenticationEnabled: { kind: "boolean" },
  requestTimeoutSeconds: { kind: "integer", min: 0 },
} as const satisfies FieldsOf<TunnelOptions>;
export const TunnelOptionsSchema: ObjectSchema = { name: "TunnelOptions", fields: optionsFields };

const aceFields = {
  type: { kind: "string", enum: Object.values(TunnelAccessControlEntryType) },
  provider: { kind: "string", maxLength: 200 },
  isInherited: { kind: "boolean" },
  isDeny: { kind: "boolean" },
  isInverse: { kind: "boolean" },
  organization: { kind: "string", maxLength: TunnelConstraints.accessControlSubjectMaxLength },
  subjects: {
    kind: "strings",
    item: { pattern: Patterns.subject, maxLength: TunnelConstraints.accessControlSubjectMaxLength },
    maxItems: TunnelConstraints.accessControlMaxSubjects,
  },
  scopes: { kind: "strings", item: { enum: SCOPES }, maxItems: TunnelConstraints.accessControlMaxScopes },
  expiration: { kind: "date" },
} as const satisfies FieldsOf<TunnelAccessControlEntry>;
export const TunnelAccessControlEntrySchema: ObjectSchema = {
  name: "TunnelAccessControlEntry",
  fields: aceFields,
  required: ["type", "subjects", "scopes"],
};

const accessControlFields = {
  entries: { kind: "objects", schema: TunnelAccessControlEntrySchema, maxItems: TunnelConstraints.accessControlMaxEntries },
} as const satisfies FieldsOf<TunnelAccessControl>;
export const TunnelAccessControlSchema: ObjectSchema = { name: "TunnelAccessControl", fields: accessControlFields, required: ["entries"] };

const portFields = {
  clusterId: { kind: "string", maxLength: TunnelConstraints.clusterIdMaxLength },
  tunnelId: { kind: "string", pattern: Patterns.tunnelId },
  portNumber: { kind: "integer", min: 1, max: 65535 },
  name: { kind: "string", maxLength: 100 },
  description: { kind: "string", maxLength: TunnelConstraints.descriptionMaxLength },
  labels,
  protocol: { kind: "string", enum: PROTOCOLS },
  isDefault: { kind: "boolean" },
  accessTokens: { kind: "readOnly" },
  accessControl: { kind: "object", schema: TunnelAccessControlSchema },
  options: { kind: "object", schema: TunnelOptionsSchema },
  status: { kind: "readOnly" },
  sshUser: { kind: "string", maxLength: TunnelConstraints.sshUserMaxLength },
  portForwardingUris: { kind: "readOnly" },
  inspectionUri: { kind: "readOnly" },
} as const satisfies FieldsOf<TunnelPort>;
export const TunnelPortSchema: ObjectSchema = { name: "TunnelPort", fields: portFields, required: ["portNumber"] };

type AnyEndpoint = TunnelRelayTunnelEndpoint & LocalNetworkTunnelEndpoint;
const endpointFields = {
  id: { kind: "string", maxLength: 200 },
  connectionMode: { kind: "string", enum: Object.values(TunnelConnectionMode) },
  hostId: { kind: "string", maxLength: 200 },
  hostPublicKeys: { kind: "strings", maxItems: 10 },
  portUriFormat: { kind: "readOnly" },
  tunnelUri: { kind: "readOnly" },
  portSshCommandFormat: { kind: "readOnly" },
  tunnelSshCommand: { kind: "readOnly" },
  sshGatewayPublicKey: { kind: "readOnly" },
  hostRelayUri: { kind: "readOnly" },
  clientRelayUri: { kind: "readOnly" },
  hostEndpoints: { kind: "strings", maxItems: 100 },
} as const satisfies FieldsOf<AnyEndpoint>;
/** `TunnelEndpoint` with the fields of both subtypes (`TunnelRelayTunnelEndpoint`, `LocalNetworkTunnelEndpoint`). */
export const TunnelEndpointSchema: ObjectSchema = { name: "TunnelEndpoint", fields: endpointFields, required: ["connectionMode", "hostId"] };

const tunnelFields = {
  clusterId: { kind: "string", maxLength: TunnelConstraints.clusterIdMaxLength },
  tunnelId: { kind: "string", pattern: Patterns.tunnelId },
  name: { kind: "string", pattern: Patterns.tunnelName, maxLength: TunnelConstraints.tunnelNameMaxLength },
  description: { kind: "string", maxLength: TunnelConstraints.descriptionMaxLength },
  labels,
  domain: { kind: "string", pattern: Patterns.domain, maxLength: TunnelConstraints.tunnelDomainMaxLength },
  accessTokens: { kind: "readOnly" },
  accessControl: { kind: "object", schema: TunnelAccessControlSchema },
  options: { kind: "object", schema: TunnelOptionsSchema },
  status: { kind: "readOnly" },
  endpoints: { kind: "objects", schema: TunnelEndpointSchema },
  ports: { kind: "objects", schema: TunnelPortSchema, maxItems: TunnelConstraints.tunnelMaxPorts },
  created: { kind: "readOnly" },
  expiration: { kind: "readOnly" },
  customExpiration: { kind: "integer", min: 0 },
} as const satisfies FieldsOf<Tunnel>;
export const TunnelSchema: ObjectSchema = { name: "Tunnel", fields: tunnelFields };

/** The tables by contract name (for the test that compares them with the .d.ts files). */
export const CONTRACT_SCHEMAS: Readonly<Record<string, ObjectSchema>> = {
  Tunnel: TunnelSchema,
  TunnelPort: TunnelPortSchema,
  TunnelOptions: TunnelOptionsSchema,
  TunnelAccessControl: TunnelAccessControlSchema,
  TunnelAccessControlEntry: TunnelAccessControlEntrySchema,
  TunnelEndpoint: TunnelEndpointSchema,
};

/** Validation errors by JSON path (`labels[0]`, `accessControl.entries[1].scopes`), ASP.NET style. */
export type FieldErrors = Record<string, string[]>;

/** Checks `value` against `schema`; returns the errors (empty when valid). */
export function validateObject(value: unknown, schema: ObjectSchema, path = ""): FieldErrors {
  const errors: FieldErrors = {};
  checkObject(value, schema, path, errors);
  return errors;
}

const add = (errors: FieldErrors, path: string, message: string): void => {
  (errors[path || "$"] ??= []).push(message);
};

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkObject(value: unknown, schema: ObjectSchema, path: string, errors: FieldErrors): void {
  if (!isPlainObject(value)) {
    add(errors, path, `Expected a JSON object of type '${schema.name}'.`);
    return;
  }
  for (const [key, fieldValue] of Object.entries(value)) {
    const field = schema.fields[key];
    const at = path ? `${path}.${key}` : key;
    if (!field) {
      add(errors, at, `Could not find member '${key}' on object of type '${schema.name}'.`);
      continue;
    }
    if (fieldValue === null) continue; // JSON null = absent, as the service's deserializer reads it
    checkField(fieldValue, field, at, errors);
  }
  for (const key of schema.required ?? []) {
    if (value[key] === undefined || value[key] === null) add(errors, path ? `${path}.${key}` : key, `The ${key} field is required.`);
  }
}

function checkString(value: unknown, rule: { pattern?: RegExp; maxLength?: number; enum?: readonly string[] }, path: string, errors: FieldErrors): void {
  if (typeof value !== "string") return add(errors, path, "Expected a string.");
  if (rule.maxLength !== undefined && value.length > rule.maxLength) add(errors, path, `The field must be a string with a maximum length of ${rule.maxLength}.`);
  if (rule.pattern && !rule.pattern.test(value)) add(errors, path, `The field must match the regular expression '${rule.pattern.source}'.`);
  if (rule.enum && !rule.enum.includes(value)) add(errors, path, `'${value}' is not one of: ${rule.enum.join(", ")}.`);
}

function checkField(value: unknown, field: Field, path: string, errors: FieldErrors): void {
  switch (field.kind) {
    case "readOnly":
      return;
    case "string":
      return checkString(value, field, path, errors);
    case "integer":
      if (typeof value !== "number" || !Number.isInteger(value)) return add(errors, path, "Expected an integer.");
      if (field.min !== undefined && value < field.min) add(errors, path, `The field must be at least ${field.min}.`);
      if (field.max !== undefined && value > field.max) add(errors, path, `The field must be at most ${field.max}.`);
      return;
    case "boolean":
      if (typeof value !== "boolean") add(errors, path, "Expected a boolean.");
      return;
    case "date":
      if (typeof value !== "string" || Number.isNaN(Date.parse(value))) add(errors, path, "Expected a date-time string.");
      return;
    case "strings":
      if (!Array.isArray(value)) return add(errors, path, "Expected an array of strings.");
      if (field.maxItems !== undefined && value.length > field.maxItems) add(errors, path, `The array may have at most ${field.maxItems} items.`);
      value.forEach((item, i) => checkString(item, field.item ?? {}, `${path}[${i}]`, errors));
      return;
    case "object":
      return checkObject(value, field.schema, path, errors);
    case "objects":
      if (!Array.isArray(value)) return add(errors, path, `Expected an array of '${field.schema.name}'.`);
      if (field.maxItems !== undefined && value.length > field.maxItems) add(errors, path, `The array may have at most ${field.maxItems} items.`);
      value.forEach((item, i) => checkObject(item, field.schema, `${path}[${i}]`, errors));
      return;
  }
}
