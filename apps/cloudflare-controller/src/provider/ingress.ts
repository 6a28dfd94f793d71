// The tunnel's remote-managed configuration: one ingress document built from every
// accepted binding, sorted so the most specific rule matches first, ending with the
// catch-all. cloudflared takes the first rule that matches, so order is meaning.
import type { Route } from "@ktube/api";
import type { BindingVerdict } from "@ktube/routing";

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

/** A route's path prefix as the regular expression cloudflared matches paths with. */
export function pathRegex(prefix: string | undefined): string | undefined {
  if (!prefix || prefix === "/") return undefined;
  const trimmed = prefix.replace(/\/+$/, "");
  return `^${trimmed.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(/.*)?$`;
}

/** cloudflared's originRequest keys, from the route's (durations are Go durations in both). */
function originRequest(route: Route): Record<string, unknown> | undefined {
  const o = route.originRequest;
  if (!o) return undefined;
  const out = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Exact hostnames before wildcards, longer paths before shorter, then by name. */
export function compareRules(a: IngressRule, b: IngressRule): number {
  const wa = a.hostname?.startsWith("*.") ? 1 : 0;
  const wb = b.hostname?.startsWith("*.") ? 1 : 0;
  if (wa !== wb) return wa - wb;
  const pa = a.path?.length ?? 0;
  const pb = b.path?.length ?? 0;
  if (pa !== pb) return pb - pa;
  return `${a.hostname}${a.path ?? ""}`.localeCompare(`${b.hostname}${b.path ?? ""}`);
}

export function renderIngressConfig(verdicts: Iterable<BindingVerdict>): IngressConfig {
  const rules: IngressRule[] = [];
  for (const verdict of verdicts) {
    if (verdict.accepted.status !== "True") continue;
    for (const { resolved } of verdict.routes) {
      if (!resolved) continue;
      const { route, host, port } = resolved;
      const scheme = SCHEME[route.protocol];
      if (!scheme || !route.hostname) continue;
      const path = pathRegex(route.path);
      const origin = originRequest(route);
      rules.push({ hostname: route.hostname, ...(path ? { path } : {}), service: `${scheme}://${host}:${port}`, ...(origin ? { originRequest: origin } : {}) });
    }
  }
  return { ingress: [...rules.sort(compareRules), CATCH_ALL] };
}

/** The public URL of a route served by a named tunnel. */
export function routeUrl(route: Route): string | undefined {
  if (!route.hostname) return undefined;
  if (route.protocol === "TCP") return `tcp://${route.hostname}`;
  return `https://${route.hostname}${route.path && route.path !== "/" ? route.path : "/"}`;
}
