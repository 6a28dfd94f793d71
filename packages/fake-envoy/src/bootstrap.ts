// The bootstrap (`-c`): read like any config file, checked by the validator (strict protojson
// + PGV) and then against the subset fake-envoy implements; any failure keeps the server
// from starting, as `error initializing configuration '<path>': <reason>`.
import type { JsonObject, JsonValue } from "@ktube/envoy-validator";
import { loadConfigFile } from "./config/load-file.ts";
import { checkDocument } from "./config/proto-check.ts";
import { SpecContext } from "./config/spec.ts";
import { bootstrapSpec, type Bootstrap } from "./config/subset.ts";

export class InitializationError extends Error {
  override name = "InitializationError";
  /** The failure is config fake-envoy does not implement (Envoy would have started). */
  readonly unimplemented: boolean;
  constructor(message: string, unimplemented = false) {
    super(message);
    this.unimplemented = unimplemented;
  }
}

export interface LoadedBootstrap {
  path: string;
  json: JsonObject;
  bootstrap: Bootstrap;
  /** The static resources as written (each validated with the bootstrap). */
  staticListeners: JsonObject[];
  staticClusters: JsonObject[];
  staticSecrets: JsonObject[];
}

const isObject = (value: JsonValue | undefined): value is JsonObject => typeof value === "object" && value !== null && !Array.isArray(value);

/** A field of a written message under its proto name or its lowerCamelCase JSON name. */
export function fieldOf(object: JsonObject | undefined, name: string): JsonValue | undefined {
  if (!object) return undefined;
  if (Object.hasOwn(object, name)) return object[name];
  const camel = name.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
  return Object.hasOwn(object, camel) ? object[camel] : undefined;
}

const objects = (value: JsonValue | undefined): JsonObject[] => (Array.isArray(value) ? value.filter(isObject) : []);

export async function loadBootstrap(path: string): Promise<LoadedBootstrap> {
  const loaded = await loadConfigFile(path);
  if (!loaded.ok) throw new InitializationError(loaded.message);
  const fault = await checkDocument("bootstrap", "envoy.config.bootstrap.v3.Bootstrap", loaded.json);
  if (fault) throw new InitializationError(fault.message);
  const ctx = new SpecContext();
  const bootstrap = bootstrapSpec.parse(loaded.json, "", ctx);
  const invalid = ctx.issues.filter((issue) => issue.kind === "invalid");
  if (invalid.length > 0) throw new InitializationError(invalid.map((issue) => `${issue.path}: ${issue.message}`).join("; "));
  if (ctx.issues.length > 0 || bootstrap === undefined) {
    throw new InitializationError(ctx.issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ") || "not implemented by fake-envoy", true);
  }
  const dynamic = bootstrap.dynamic_resources;
  for (const key of ["lds_config", "cds_config"] as const) {
    const source = dynamic?.[key];
    if (source && !source.path_config_source?.path) {
      throw new InitializationError(`dynamic_resources.${key}: only path_config_source { path } is implemented by fake-envoy`, true);
    }
  }
  const resources = fieldOf(loaded.json, "static_resources");
  const staticResources = isObject(resources) ? resources : undefined;
  return {
    path,
    json: loaded.json,
    bootstrap,
    staticListeners: objects(fieldOf(staticResources, "listeners")),
    staticClusters: objects(fieldOf(staticResources, "clusters")),
    staticSecrets: objects(fieldOf(staticResources, "secrets")),
  };
}
