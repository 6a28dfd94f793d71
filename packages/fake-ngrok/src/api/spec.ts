// ngrok's published OpenAPI document (shared/specs/ngrok-openapi.yaml, unchanged from
// ngrok/ngrok-openapi) as the fake uses it: operations matched by method and path
// template, and every request and response checked against the operation's schemas.
//
// Two readings of the document are the fake's, both applied alike to requests and
// responses:
// - Strict objects. The document never says `additionalProperties`; the fake treats every
//   object with `properties` as closed, so a field the document does not name is refused
//   (ngrok answers ERR_NGROK_214 for an unknown request field) and the fake cannot answer
//   a field ngrok's clients do not know.
// - Documented nulls. The generator drops `nullable`, but the live API sends null where a
//   field's description says so ("…, or null if …": next_page_uri, cname_target,
//   certificate…). A property whose description mentions null accepts null; no other does.
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { ApiErrors, type NgrokApiError } from "./errors.ts";

/** The published schema, from the team's shared/ checkout beside the repository (or $KTUBE_NGROK_SPEC). */
export const DEFAULT_SPEC_PATH =
  process.env.KTUBE_NGROK_SPEC ?? join(import.meta.dirname, "..", "..", "..", "..", "..", "shared", "specs", "ngrok-openapi.yaml");

/** The API versions the fake serves (the `ngrok-version` header). ngrok: 2; 0 and 1 are deprecated. */
export const SUPPORTED_VERSIONS = ["2"] as const;

type Json = Record<string, unknown>;

interface Parameter {
  name: string;
  in: "path" | "query" | "header";
  required?: boolean;
  schema?: Json;
}

interface QueryParameter {
  required: boolean;
  array: boolean;
  schema: Json;
}

/** One operation of the document. */
export interface SpecOperation {
  /** The operationId, e.g. `ReservedDomainsCreate`. */
  id: string;
  method: string;
  /** The path template, e.g. `/reserved_domains/{id}`. */
  template: string;
  pathParams: string[];
  query: ReadonlyMap<string, QueryParameter>;
  body?: { required: boolean; schema: Json };
  /** The one success status the document gives (200, 201 or 204). */
  successStatus: number;
  /** The success response's schema; absent for 204. */
  responseSchema?: Json;
}

export interface MatchedOperation {
  operation: SpecOperation;
  params: Record<string, string>;
}

interface Route {
  operation: SpecOperation;
  pattern: RegExp;
}

/** The document, loaded once per path per process (it is 330 kB of YAML). */
export class NgrokOpenApi {
  private readonly routes: Route[] = [];
  private readonly byId = new Map<string, SpecOperation>();
  private readonly ajv: Ajv;
  private readonly validators = new Map<Json, ValidateFunction>();

  private static readonly loaded = new Map<string, NgrokOpenApi>();

  /** The document at `specPath`, parsed at most once per process. */
  static load(specPath: string = DEFAULT_SPEC_PATH): NgrokOpenApi {
    let spec = NgrokOpenApi.loaded.get(specPath);
    if (!spec) {
      spec = new NgrokOpenApi(specPath);
      NgrokOpenApi.loaded.set(specPath, spec);
    }
    return spec;
  }

  private constructor(specPath: string) {
    if (!existsSync(specPath)) {
      throw new Error(
        `ngrok's OpenAPI document is not at ${specPath}: the fake checks every request against it. ` +
          "Check out the team's shared/ directory beside this repository (shared/specs/ngrok-openapi.yaml), or set KTUBE_NGROK_SPEC.",
      );
    }
    const doc = parseYaml(readFileSync(specPath, "utf8")) as {
      paths: Record<string, Record<string, Json>>;
      components: { schemas: Record<string, Json>; parameters: Record<string, Parameter> };
    };
    this.ajv = new Ajv({ strict: false, allErrors: true, verbose: true, coerceTypes: false });
    this.ajv.addSchema({ $id: "ngrok", components: { schemas: mapValues(doc.components.schemas, strictSchema) } });

    for (const [template, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
        const params = ((op.parameters as Array<Parameter | { $ref: string }>) ?? []).map((p) =>
          "$ref" in p ? doc.components.parameters[p.$ref.split("/").pop()!]! : p,
        );
        const query = new Map<string, QueryParameter>();
        for (const p of params.filter((x) => x.in === "query")) {
          const schema = strictSchema(p.schema ?? {});
          query.set(p.name, { required: Boolean(p.required), array: schema.type === "array", schema });
        }
        const requestBody = op.requestBody as { required?: boolean; content?: Record<string, { schema: Json }> } | undefined;
        const bodySchema = requestBody?.content?.["application/json"]?.schema;
        const responses = (op.responses ?? {}) as Record<string, { content?: Record<string, { schema: Json }> }>;
        const success = Object.keys(responses).map(Number).find((s) => s >= 200 && s < 300) ?? 200;
        const responseSchema = responses[String(success)]?.content?.["application/json"]?.schema;
        const operation: SpecOperation = {
          id: op.operationId as string,
          method: method.toUpperCase(),
          template,
          pathParams: [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!),
          query,
          ...(bodySchema ? { body: { required: Boolean(requestBody?.required), schema: strictSchema(bodySchema) } } : {}),
          successStatus: success,
          ...(responseSchema ? { responseSchema: strictSchema(responseSchema) } : {}),
        };
        this.routes.push({ operation, pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, "([^/]+)")}$`) });
        this.byId.set(operation.id, operation);
      }
    }
    // Literal paths first, so /reserved_domains/{id}/certificate is not taken for something shorter.
    this.routes.sort((a, b) => a.operation.pathParams.length - b.operation.pathParams.length);
  }

  /** Every operation the document describes. */
  operations(): SpecOperation[] {
    return this.routes.map((r) => r.operation);
  }

  operation(id: string): SpecOperation {
    const op = this.byId.get(id);
    if (!op) throw new Error(`ngrok's OpenAPI document has no operation ${id}`);
    return op;
  }

  /** The operation a request is for, or undefined where the API has none. */
  match(method: string, path: string): MatchedOperation | undefined {
    for (const { operation, pattern } of this.routes) {
      if (operation.method !== method) continue;
      const m = pattern.exec(path);
      if (!m) continue;
      const values = m.slice(1).map(decodeURIComponent);
      return { operation, params: Object.fromEntries(operation.pathParams.map((name, i) => [name, values[i]!])) };
    }
    return undefined;
  }

  /** The `ngrok-version` header: absent → ERR_NGROK_218, anything but a supported integer → ERR_NGROK_217. */
  checkVersion(header: string | undefined): NgrokApiError | undefined {
    if (header === undefined || header.trim() === "") return ApiErrors.missingVersion();
    if (!(SUPPORTED_VERSIONS as readonly string[]).includes(header.trim())) return ApiErrors.unsupportedVersion(header);
    return undefined;
  }

  /** Query parameters against the operation's: unknown ones, wrong types, missing required ones. */
  checkQuery(op: SpecOperation, query: URLSearchParams): NgrokApiError[] {
    const errors: NgrokApiError[] = [];
    const names = [...new Set(query.keys())];
    const unknown = names.filter((n) => !op.query.has(n));
    if (unknown.length > 0) errors.push(ApiErrors.unknownQueryParameters(unknown, [...op.query.keys()]));
    for (const [name, spec] of op.query) {
      const values = query.getAll(name);
      if (values.length === 0) {
        if (spec.required) errors.push(ApiErrors.invalidParameter(name));
        continue;
      }
      // Arrays are form-encoded and exploded, as OpenAPI 3 defaults: `ids=a&ids=b`.
      if (!spec.array && values.length > 1) {
        errors.push(ApiErrors.invalidParameter(name));
        continue;
      }
      if (!this.validator(spec.schema)(spec.array ? values : values[0])) errors.push(ApiErrors.invalidParameter(name));
    }
    return errors;
  }

  /**
   * The body, as received: JSON of the right content type where the operation takes one
   * (it is optional unless the document says required), nothing where it does not.
   * Returns the parsed body, or the errors.
   */
  checkBody(op: SpecOperation, contentType: string | undefined, raw: string): { body: Json } | { errors: NgrokApiError[] } {
    if (!op.body) return raw.length > 0 ? { errors: [ApiErrors.bodyNotExpected(op.method)] } : { body: {} };
    if (raw.length === 0) return op.body.required ? { errors: [ApiErrors.invalidParameter("body")] } : { body: {} };
    const type = contentType?.split(";")[0]!.trim().toLowerCase();
    if (!type) return { errors: [ApiErrors.missingContentType()] };
    if (type !== "application/json") return { errors: [ApiErrors.unsupportedContentType(type)] };
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return { errors: [ApiErrors.unparsableBody(type)] };
    }
    const validate = this.validator(op.body.schema);
    if (validate(body)) return { body: body as Json };
    return { errors: (validate.errors ?? []).map(toApiError) };
  }

  /**
   * What is wrong with a response the fake is about to send, against the document: the
   * status and the body shape (closed objects, documented nulls only). Empty when right.
   */
  checkResponse(op: SpecOperation, status: number, body: unknown): string[] {
    const problems: string[] = [];
    if (status !== op.successStatus) problems.push(`status ${status}, the document says ${op.successStatus}`);
    if (!op.responseSchema) {
      if (body !== undefined) problems.push("a body where the document describes none");
      return problems;
    }
    const validate = this.validator(op.responseSchema);
    if (!validate(body)) problems.push(...(validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? ""}`.trim()));
    return problems;
  }

  /** A validator for a schema of this document (for tests that check shapes themselves). */
  validator(schema: Json): ValidateFunction {
    let validate = this.validators.get(schema);
    if (!validate) {
      validate = this.ajv.compile(schema);
      this.validators.set(schema, validate);
    }
    return validate;
  }
}

/** The request field an ajv error is about, as ngrok names it (`certificate_management_policy.authority`). */
function toApiError(e: ErrorObject): NgrokApiError {
  const at = e.instancePath.split("/").filter(Boolean).join(".");
  if (e.keyword === "additionalProperties") {
    const extra = (e.params as { additionalProperty: string }).additionalProperty;
    const supported = Object.keys(((e.parentSchema as Json | undefined)?.properties as Json | undefined) ?? {});
    return ApiErrors.unknownField(at ? `${at}.${extra}` : extra, supported);
  }
  return ApiErrors.invalidParameter(at || "body");
}

/**
 * The document's schema as the fake reads it (see the file comment): refs into the
 * "ngrok" schema, objects closed, documented nulls allowed, descriptions dropped.
 */
function strictSchema(schema: Json): Json {
  if (typeof schema.$ref === "string") return { $ref: schema.$ref.replace(/^#\//, "ngrok#/") };
  const out: Json = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === "description") continue;
    if (key === "properties") {
      out.properties = mapValues(value as Record<string, Json>, (prop) => {
        const strict = strictSchema(prop);
        return typeof prop.description === "string" && /\bnull\b/i.test(prop.description) ? { anyOf: [strict, { type: "null" }] } : strict;
      });
      out.additionalProperties = false;
    } else if (key === "items") {
      out.items = strictSchema(value as Json);
    } else {
      out[key] = value;
    }
  }
  return out;
}

function mapValues<T, U>(record: Record<string, T>, f: (value: T) => U): Record<string, U> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, f(v)]));
}
