// Plans for the renderer's tests: a base plan and terse route builders.
import type { JsonObject, JsonValue } from "@ktube/envoy-validator";
import type { EdgePlan, EdgeRoute, EdgeTlsSecret } from "../../../src/provider/envoy/plan.ts";
import type { RenderedEnvoyConfig } from "../../../src/provider/envoy/render.ts";

export const SSH_PORT = 22;
export const WIREGUARD_PORT = 51820;
export const ADMIN_PORT = 9901;
export const LINT_OPTIONS = { sshPort: SSH_PORT, wireguardPort: WIREGUARD_PORT };

let nextTunnelPort = 20_000;
/** A route with a fresh tunnel port; `key` defaults to `ns/binding/<name>`. */
export function route(name: string, init: Omit<EdgeRoute, "key" | "tunnelPort"> & { key?: string; tunnelPort?: number }): EdgeRoute {
  return { key: `ns/binding/${name}`, tunnelPort: nextTunnelPort++, ...init };
}

export const tcp = (name: string, listenPort: number, extra: Partial<EdgeRoute> = {}): EdgeRoute => route(name, { protocol: "TCP", listenPort, ...extra });
export const udp = (name: string, listenPort: number, extra: Partial<EdgeRoute> = {}): EdgeRoute => route(name, { protocol: "UDP", listenPort, ...extra });
export const tls = (name: string, hostname: string | undefined, extra: Partial<EdgeRoute> = {}): EdgeRoute =>
  route(name, { protocol: "TLS", listenPort: 443, ...(hostname ? { hostname } : {}), tls: { mode: "passthrough" }, ...extra });
export const http = (name: string, hostname: string | undefined, path: string | undefined, extra: Partial<EdgeRoute> = {}): EdgeRoute =>
  route(name, { protocol: "HTTP", listenPort: 80, ...(hostname ? { hostname } : {}), ...(path ? { path } : {}), ...extra });
export const https = (name: string, hostname: string | undefined, path: string | undefined, extra: Partial<EdgeRoute> = {}): EdgeRoute =>
  route(name, { protocol: "HTTPS", listenPort: 443, ...(hostname ? { hostname } : {}), ...(path ? { path } : {}), ...extra });

export interface Pem {
  cert: string;
  key: string;
  ca: string;
}

export function secret(name: string, pem: Pem, mutual = false): EdgeTlsSecret {
  return { name, certificateChain: pem.cert, privateKey: pem.key, ...(mutual ? { caCertificate: pem.ca } : {}) };
}

export function plan(routes: EdgeRoute[], extra: Partial<EdgePlan> = {}): EdgePlan {
  return {
    nodeId: "platform/edge",
    adminPort: ADMIN_PORT,
    uplinks: ["10.77.0.2"],
    healthCheck: { intervalSeconds: 5, timeoutSeconds: 2, healthyThreshold: 2, unhealthyThreshold: 2, port: 40_500 },
    routes,
    secrets: [],
    ...extra,
  };
}

/** The JSON of one rendered file, by its name below the config directory (`lds.json`, `sds/x.json`). */
export function fileJson(rendered: RenderedEnvoyConfig, name: string): JsonObject {
  const file = rendered.files.find((f) => f.path.endsWith(`/${name}`));
  if (!file) throw new Error(`no ${name} in ${rendered.files.map((f) => f.path).join(", ")}`);
  return JSON.parse(file.content) as JsonObject;
}

/** Replaces a file's content with `json`. */
export function withFile(rendered: RenderedEnvoyConfig, name: string, json: JsonObject): RenderedEnvoyConfig {
  return { ...rendered, files: rendered.files.map((f) => (f.path.endsWith(`/${name}`) ? { ...f, content: `${JSON.stringify(json, null, 2)}\n` } : f)) };
}

/** The value at `path` (`resources[0].filter_chains[1].name`, `map["a.b"]`, the lint's path syntax); throws if absent. */
export function at(value: JsonValue, path: string): JsonValue {
  let here: JsonValue = value;
  for (const [, key, index, quoted] of path.matchAll(/\.?([^.[\]]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/g)) {
    const step: string | number = key ?? (index !== undefined ? Number(index) : (JSON.parse(quoted!) as string));
    const next: JsonValue | undefined =
      typeof step === "number" ? (Array.isArray(here) ? here[step] : undefined) : here !== null && typeof here === "object" && !Array.isArray(here) ? here[step] : undefined;
    if (next === undefined) throw new Error(`${path}: nothing at ${String(step)}`);
    here = next;
  }
  return here;
}

export function list(value: JsonValue, path = ""): JsonValue[] {
  const found = path ? at(value, path) : value;
  if (!Array.isArray(found)) throw new Error(`${path}: not a list`);
  return found;
}

export function object(value: JsonValue, path = ""): JsonObject {
  const found = path ? at(value, path) : value;
  if (found === null || typeof found !== "object" || Array.isArray(found)) throw new Error(`${path}: not an object`);
  return found;
}

/** The element of `items` whose `name` is `name`. */
export function named(items: JsonValue[], name: string): JsonObject {
  const found = items.map((item) => object(item)).find((item) => item.name === name);
  if (!found) throw new Error(`nothing named ${name} among ${items.map((item) => object(item).name).join(", ")}`);
  return found;
}

export const listener = (rendered: RenderedEnvoyConfig, name: string): JsonObject => named(list(fileJson(rendered, "lds.json"), "resources"), name);
export const cluster = (rendered: RenderedEnvoyConfig, name: string): JsonObject => named(list(fileJson(rendered, "cds.json"), "resources"), name);
export const chain = (rendered: RenderedEnvoyConfig, listenerName: string, chainName: string): JsonObject =>
  named(list(listener(rendered, listenerName), "filter_chains"), chainName);
