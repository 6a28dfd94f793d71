// The tunnel's remote-managed configuration: one ingress document built from every
// accepted route, sorted so the most specific rule matches first, ending with the
// catch-all. cloudflared takes the first rule that matches, so order is meaning.
import type { Route } from "@ktube/api";
import { normalizePath, type ResolvedRoute } from "@ktube/routing";

export interface IngressRule {
  hostname?: string;
  path?: string;
  service: string;
  originRequest?: Record<string, unknown>;
}

export interface IngressConfig {
  ingress: IngressRule[];
}

export const CATCH_ALL: IngressRule = { service: "http_status:404" };

const SCHEME: Partial<Record<Route["protocol"], string>> = { HTTP: "http", HTTPS: "https", TCP: "tcp" };

/**
 * A route's path prefix as the regular expression cloudflared matches paths with;
 * undefined for the whole hostname. `/api`, `/api/` and `/api//` are one prefix (the
 * same claim in @ktube/routing), so they render the same.
 */
export function pathRegex(prefix: string | undefined): string | undefined {
  const normalized = normalizePath(prefix);
  if (normalized === "/") return undefined;
  return `^${normalized.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(/.*)?$`;
}

/** originRequest keys the API takes as whole seconds; the route writes them as durations ("10s", "1m30s"). */
const SECONDS_KEYS: ReadonlySet<string> = new Set(["connectTimeout", "tlsTimeout", "tcpKeepAlive", "keepAliveTimeout"]);
const DURATION_UNITS_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration as the whole seconds Cloudflare's remote configuration takes (rounded up: never 0 for a positive duration). */
export function durationSeconds(duration: string): number {
  let ms = 0;
  for (const [, value, unit] of duration.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(value) * DURATION_UNITS_MS[unit!]!;
  return Math.ceil(ms / 1000);
}

/** cloudflared's originRequest keys, from the route's (the API takes timeouts as integer seconds). */
function originRequest(route: Route): Record<string, unknown> | undefined {
  const o = route.originRequest;
  if (!o) return undefined;
  const out = Object.fromEntries(
    Object.entries(o)
      .filter(([, v]) => v !== undefined)
      .map(([key, value]) => [key, SECONDS_KEYS.has(key) && typeof value === "string" ? durationSeconds(value) : value]),
  );
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Exact hostnames before wildcards, longer paths before shorter, then by hostname and path. */
export function compareRules(a: IngressRule, b: IngressRule): number {
  const wa = a.hostname?.startsWith("*.") ? 1 : 0;
  const wb = b.hostname?.startsWith("*.") ? 1 : 0;
  if (wa !== wb) return wa - wb;
  const pa = a.path?.length ?? 0;
  const pb = b.path?.length ?? 0;
  if (pa !== pb) return pb - pa;
  return `${a.hostname}${a.path ?? ""}`.localeCompare(`${b.hostname}${b.path ?? ""}`);
}

/** The rule for one route, or undefined for a route a named tunnel does not serve by hostname (UDP, TLS, no hostname). */
export function ingressRule({ route, host, port }: ResolvedRoute): IngressRule | undefined {
  const scheme = SCHEME[route.protocol];
  if (!scheme || !route.hostname) return undefined;
  const path = pathRegex(route.path);
  const origin = originRequest(route);
  return { hostname: route.hostname, ...(path ? { path } : {}), service: `${scheme}://${host}:${port}`, ...(origin ? { originRequest: origin } : {}) };
}

/**
 * The ingress document for the accepted routes of one tunnel. Pass them oldest binding
 * first: when two routes render the same hostname and path, the first one's rule is kept
 * (routing admits only one; this keeps the document well-formed if it did not).
 */
export function renderIngressConfig(routes: Iterable<ResolvedRoute>): IngressConfig {
  const rules = new Map<string, IngressRule>();
  for (const resolved of routes) {
    const rule = ingressRule(resolved);
    if (!rule) continue;
    const key = `${rule.hostname}\u0000${rule.path ?? ""}`;
    if (!rules.has(key)) rules.set(key, rule);
  }
  return { ingress: [...[...rules.values()].sort(compareRules), CATCH_ALL] };
}

/** The public URL of a route served by a named tunnel. */
export function routeUrl(route: Route): string | undefined {
  if (!route.hostname) return undefined;
  if (route.protocol === "TCP") return `tcp://${route.hostname}`;
  return `https://${route.hostname}${route.path && route.path !== "/" ? route.path : "/"}`;
}
