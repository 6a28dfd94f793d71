// Request validation against Cloudflare's published OpenAPI document
// (../shared/specs/cloudflare-openapi-subset.json): path, query parameters and JSON body.
import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => void;

/** The published schema, from the team's shared/ checkout beside the repository (or $KTUBE_CLOUDFLARE_SPEC). */
export const DEFAULT_SPEC_PATH =
  process.env.KTUBE_CLOUDFLARE_SPEC ?? join(import.meta.dirname, "..", "..", "..", "..", "shared", "specs", "cloudflare-openapi-subset.json");

interface Parameter {
  name: string;
  in: "path" | "query" | "header";
  required?: boolean;
  explode?: boolean;
  schema?: object;
}

interface QueryParameter {
  required: boolean;
  /** `style: form, explode: false` arrays arrive as one comma-separated value. */
  commaSeparated: boolean;
  validate?: ValidateFunction;
}

interface Operation {
  id: string;
  method: string;
  template: string;
  pattern: RegExp;
  pathParams: string[];
  query: Map<string, QueryParameter>;
  body?: { required: boolean; validate: ValidateFunction };
  pageSize?: PageSizeLimits;
}

/**
 * What a list operation's `per_page` parameter declares. Read from the document, so the
 * fake pages each endpoint as Cloudflare documents it (DNS: 100 by default, up to
 * 5,000,000; zones: 20, 5..50; Access applications: 1000; identity providers: 200...).
 */
export interface PageSizeLimits {
  default?: number;
  minimum?: number;
  maximum?: number;
}

export interface MatchedRequest {
  /** The document's operationId, or `METHOD template` where it gives none (the Access paths). */
  operation: string;
  method: string;
  /** The path template, e.g. `/zones/{zone_id}/dns_records`. */
  template: string;
  params: Record<string, string>;
  violations: string[];
  /** Present on list operations (those with a `per_page` parameter). */
  pageSize?: PageSizeLimits;
}

type Json = Record<string, unknown>;

export class OpenApiSchema {
  private readonly described: Operation[] = [];

  constructor(specPath: string = DEFAULT_SPEC_PATH) {
    if (!existsSync(specPath)) {
      throw new Error(
        `Cloudflare's OpenAPI schema is not at ${specPath}: the fake checks every request against it. ` +
          "Check out the team's shared/ directory beside this repository, or set KTUBE_CLOUDFLARE_SPEC.",
      );
    }
    const spec = JSON.parse(readFileSync(specPath, "utf8")) as {
      paths: Record<string, Record<string, Json>>;
      components: Json & { parameters?: Record<string, Parameter> };
    };
    const ajv = new Ajv({ strict: false, allErrors: true, coerceTypes: false });
    addFormats(ajv);
    // Formats the spec names that no standard defines (e.g. url-encoded-date-time) are
    // accepted as they come; the standard ones (date-time, uuid...) are checked.
    for (const format of new Set([...JSON.stringify(spec).matchAll(/"format":"([^"]+)"/g)].map((m) => m[1]!))) {
      if (!ajv.formats[format]) ajv.addFormat(format, true);
    }
    ajv.addSchema({ $id: "cf", components: spec.components });
    const rebase = (schema: object): object =>
      JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"cf#/components/')) as object;
    const resolveParam = (p: Parameter | { $ref: string }): Parameter =>
      "$ref" in p ? spec.components.parameters![p.$ref.split("/").pop()!]! : p;
    const resolveSchema = (schema: Json | undefined): Json | undefined => {
      const ref = schema?.$ref;
      if (typeof ref !== "string") return schema;
      let target: unknown = spec;
      for (const key of ref.replace(/^#\//, "").split("/")) target = (target as Json)[key];
      return resolveSchema(target as Json);
    };

    for (const [template, methods] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
        const params = ((op.parameters as Array<Parameter | { $ref: string }>) ?? []).map(resolveParam);
        const query = new Map<string, QueryParameter>();
        let pageSize: PageSizeLimits | undefined;
        for (const p of params.filter((x) => x.in === "query")) {
          const schema = resolveSchema(p.schema as Json | undefined);
          query.set(p.name, {
            required: Boolean(p.required),
            commaSeparated: schema?.type === "array" && p.explode === false,
            ...(p.schema ? { validate: ajv.compile(rebase(p.schema)) } : {}),
          });
          if (p.name === "per_page") pageSize = pageSizeLimits(schema);
        }
        const requestBody = op.requestBody as { required?: boolean; content?: Record<string, { schema: object }> } | undefined;
        const bodySchema = requestBody?.content?.["application/json"]?.schema;
        const pathParams = [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
        this.described.push({
          id: (op.operationId as string | undefined) ?? `${method.toUpperCase()} ${template}`,
          method: method.toUpperCase(),
          template,
          pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, "([^/]+)")}$`),
          pathParams,
          query,
          ...(bodySchema ? { body: { required: Boolean(requestBody?.required), validate: ajv.compile(rebase(bodySchema)) } } : {}),
          ...(pageSize ? { pageSize } : {}),
        });
      }
    }
    // Literal paths first, so /zones/{id}/dns_records/batch is not taken for /{id}.
    this.described.sort((a, b) => a.pathParams.length - b.pathParams.length);
  }

  /** Every operation the document describes. */
  operations(): Array<{ id: string; method: string; template: string }> {
    return this.described.map(({ id, method, template }) => ({ id, method, template }));
  }

  /**
   * Finds the operation for a request and lists everything in it the schema rejects.
   * `undefined` means the API has no such operation at all.
   */
  match(method: string, path: string, query: URLSearchParams, body: unknown): MatchedRequest | undefined {
    const op = this.described.find((o) => o.method === method && o.pattern.test(path));
    if (!op) return undefined;
    const values = op.pattern.exec(path)!.slice(1).map(decodeURIComponent);
    const params = Object.fromEntries(op.pathParams.map((name, i) => [name, values[i]!]));
    const violations: string[] = [];
    for (const [name, value] of query) {
      const spec = op.query.get(name);
      if (!spec) {
        violations.push(`query parameter "${name}" is not in the schema of ${op.id}`);
        continue;
      }
      const coerced = spec.commaSeparated ? value.split(",").map(coerceQuery) : coerceQuery(value);
      if (spec.validate && !spec.validate(coerced)) {
        violations.push(`query parameter "${name}"=${JSON.stringify(value)}: ${describeErrors(spec.validate)}`);
      }
    }
    for (const [name, spec] of op.query) if (spec.required && !query.has(name)) violations.push(`query parameter "${name}" is required`);
    if (op.body) {
      if (body === undefined) {
        if (op.body.required) violations.push("a JSON body is required");
      } else if (!op.body.validate(withKnownGapsFilled(op.id, body))) {
        violations.push(`body: ${describeErrors(op.body.validate)}`);
      }
    } else if (body !== undefined && method !== "DELETE") {
      violations.push(`${op.id} takes no body`);
    }
    return { operation: op.id, method: op.method, template: op.template, params, violations, ...(op.pageSize ? { pageSize: op.pageSize } : {}) };
  }
}

function pageSizeLimits(schema: Json | undefined): PageSizeLimits {
  const limits: PageSizeLimits = {};
  for (const key of ["default", "minimum", "maximum"] as const) {
    const value = schema?.[key];
    if (typeof value === "number") limits[key] = value;
  }
  return limits;
}

function coerceQuery(value: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  if (value === "true" || value === "false") return value === "true";
  return value;
}

function describeErrors(validate: ValidateFunction): string {
  return (validate.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || "/"} ${e.message}`).join("; ");
}

/**
 * The one documented gap between schema and live API (specs/README.md): the last
 * ingress rule of a tunnel configuration, the `http_status:NNN` catch-all, has no
 * hostname. The live API accepts it, so the check does too, and nothing else.
 */
function withKnownGapsFilled(operation: string, body: unknown): unknown {
  if (operation !== "cloudflare-tunnel-configuration-put-configuration") return body;
  const ingress = (body as { config?: { ingress?: Array<Record<string, unknown>> } }).config?.ingress;
  if (!ingress?.length) return body;
  const last = ingress[ingress.length - 1]!;
  if (last.hostname !== undefined || !/^http_status:\d{3}$/.test(String(last.service))) return body;
  const copy = structuredClone(body) as { config: { ingress: Array<Record<string, unknown>> } };
  copy.config.ingress[ingress.length - 1] = { ...last, hostname: "catch-all.invalid" };
  return copy;
}
