// Shared pieces for turning one written xDS resource into fake-envoy's typed form: the subset
// check with its issues worded for a log line, IP literals, and a stable hash to tell an
// unchanged resource from a changed one (Envoy compares the proto's hash the same way).
import { createHash } from "node:crypto";
import { isIP } from "node:net";
import type { JsonObject, JsonValue } from "@ktube/envoy-validator";
import type { SocketAddress } from "./subset.ts";
import { SpecContext, type Spec } from "./spec.ts";

export class ResourceError extends Error {
  override name = "ResourceError";
  readonly unimplemented: boolean;
  constructor(message: string, unimplemented = false) {
    super(message);
    this.unimplemented = unimplemented;
  }
}

/** The resource without its `@type` (the Any's type is checked by the validator). */
export function resourceBody(resource: JsonObject): JsonObject {
  const { "@type": _type, ...body } = resource;
  return body;
}

/** Parses a resource with `spec`; throws ResourceError naming every field fake-envoy refuses. */
export function parseResource<T>(spec: Spec<T>, body: JsonObject): T {
  const ctx = new SpecContext();
  const parsed = spec.parse(body, "", ctx);
  const invalid = ctx.issues.filter((issue) => issue.kind === "invalid");
  if (invalid.length > 0) throw new ResourceError(invalid.map((issue) => issue.message).join("; "));
  if (ctx.issues.length > 0 || parsed === undefined) {
    throw new ResourceError(ctx.issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ") || "not implemented by fake-envoy", true);
  }
  return parsed;
}

const canonical = (value: JsonValue | undefined): JsonValue | undefined => {
  if (Array.isArray(value)) return value.map((item) => canonical(item) ?? null);
  if (typeof value === "object" && value !== null) {
    const out: JsonObject = {};
    for (const key of Object.keys(value).sort()) {
      const item = canonical(value[key]);
      if (item !== undefined) out[key] = item;
    }
    return out;
  }
  return value;
};

/** A hash of the resource's content, independent of key order. */
export const resourceHash = (resource: JsonObject): string => createHash("sha256").update(JSON.stringify(canonical(resource))).digest("hex");

/** Envoy's `Address::asString()`: `1.2.3.4:443`, `[::1]:443`. */
export const formatAddress = (ip: string, port: number): string => (isIP(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`);

export interface ResolvedSocketAddress {
  ip: string;
  port: number;
  protocol: "TCP" | "UDP";
  /** `ip:port` as Envoy prints it. */
  text: string;
}

/** A socket address whose `address` must be an IP literal (Envoy resolves nothing here). */
export function resolveSocketAddress(address: SocketAddress | undefined): ResolvedSocketAddress {
  const ip = address?.address ?? "";
  if (isIP(ip) === 0) throw new ResourceError(`malformed IP address: ${ip}`);
  const port = address?.port_value ?? 0;
  return { ip, port, protocol: address?.protocol ?? "TCP", text: formatAddress(ip, port) };
}
