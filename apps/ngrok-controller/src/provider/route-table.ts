// A tunnel's route table: the ngrok endpoints its connectors bind, planned from the
// tunnel's accepted bindings. The controller writes it; every connector replica reads it.
// It holds no secret (the authtoken is a mounted file).
import { createHash } from "node:crypto";
import type { AcceptedBinding, RouteOutcome } from "@ktube/provider-kit";
import type { ResolvedRoute } from "@ktube/routing";

/** Where one HTTP path of an endpoint goes. */
export interface UpstreamRoute {
  /** `namespace/binding/route`: how outcomes find their way back to the binding. */
  key: string;
  /** Path prefix; `/` for the whole hostname. */
  path: string;
  /** `http://svc.ns.svc.cluster.local:80`, `https://…`, `tcp://…`. */
  upstream: string;
}

export interface EndpointSpec {
  /** Stable name of the endpoint in the table: `https://host`, `http:` (the dev domain), `tcp:<route key>`, `tls://host`. */
  id: string;
  proto: "http" | "tcp" | "tls";
  /** HTTP and TLS endpoints on a hostname; absent: the account's dev domain (HTTP) or a random address (TCP). */
  domain?: string;
  /** TCP endpoints on a reserved address (`host:port`). */
  remoteAddr?: string;
  /** Pooled: every replica binds it and ngrok balances across them. */
  pooling: boolean;
  /** Unpooled endpoints: the one connector replica (pod name) that binds it; none yet: no replica has reported. */
  servedBy?: string;
  /** HTTP endpoints may carry several paths (routed by the connector); TCP and TLS exactly one. */
  routes: UpstreamRoute[];
  /** PROXY protocol to the upstream (TCP and TLS). */
  proxyProto?: "1" | "2";
  /** JSON `{"ktube":{…}}` so the endpoint can be attributed from ngrok's side, without names in clear. */
  metadata: string;
}

export interface RouteTable {
  /** The Tunnel's uid: a connector never serves another tunnel's table. */
  tunnel: string;
  endpoints: EndpointSpec[];
}

/** A route that the table could not take, and why (its binding reads this). */
export interface Refusal {
  key: string;
  outcome: RouteOutcome;
}

export const routeKey = (namespace: string, binding: string, route: string): string => `${namespace}/${binding}/${route}`;

/** Short, stable hash for marks that leave the cluster (no names in clear). */
export const shortHash = (value: string): string => createHash("sha256").update(value).digest("hex").slice(0, 16);

function upstreamUrl(resolved: ResolvedRoute): string {
  const scheme = resolved.route.protocol === "HTTPS" ? "https" : resolved.route.protocol === "HTTP" ? "http" : "tcp";
  return `${scheme}://${resolved.host}:${resolved.port}`;
}

/**
 * Plans the endpoints of one tunnel. Bindings come oldest first (the kit's order), so
 * where two routes want the one thing only one can have (the dev domain), the older keeps it.
 * Path conflicts between bindings were already settled by the binding rules.
 */
export interface PlanOptions {
  pooling: boolean;
  /**
   * With an API key, TCP routes bind their reserved address: the address, or undefined
   * while it is being reserved (the route waits instead of binding a random one first).
   * Without one (null), TCP routes get a random address.
   */
  reservedAddress: ((key: string) => string | undefined) | null;
}

export function planRouteTable(tunnelUid: string, accepted: readonly AcceptedBinding[], { pooling, reservedAddress }: PlanOptions): { table: RouteTable; refused: Refusal[] } {
  const endpoints = new Map<string, EndpointSpec>();
  const refused: Refusal[] = [];
  const meta = (id: string) => JSON.stringify({ ktube: { controller: "ngrok", tunnel: shortHash(tunnelUid), endpoint: shortHash(id) } });
  for (const { binding, routes } of accepted) {
    for (const resolved of routes) {
      const { route } = resolved;
      const key = routeKey(binding.metadata.namespace!, binding.metadata.name!, route.name);
      const upstream: UpstreamRoute = { key, path: route.path ?? "/", upstream: upstreamUrl(resolved) };
      const proxyProto = route.proxyProtocol === "v1" ? "1" : route.proxyProtocol === "v2" ? "2" : undefined;
      switch (route.protocol) {
        case "HTTP":
        case "HTTPS": {
          const id = route.hostname ? `https://${route.hostname}` : "http:";
          const existing = endpoints.get(id);
          if (existing) {
            if (!route.hostname) {
              const holder = existing.routes[0]!.key;
              refused.push({ key, outcome: { ready: false, reason: "Conflict", message: `route ${route.name}: the account's dev domain already serves ${holder}; give this route a hostname` } });
              continue;
            }
            existing.routes.push(upstream);
            continue;
          }
          endpoints.set(id, { id, proto: "http", ...(route.hostname ? { domain: route.hostname } : {}), pooling, routes: [upstream], metadata: meta(id) });
          continue;
        }
        case "TCP": {
          if (route.hostname) {
            refused.push({ key, outcome: { ready: false, reason: "UnsupportedField", message: `route ${route.name}: ngrok TCP endpoints live on TCP addresses, not hostnames; remove hostname` } });
            continue;
          }
          const id = `tcp:${key}`;
          if (reservedAddress) {
            const address = reservedAddress(key);
            if (!address) {
              refused.push({ key, outcome: { ready: false, reason: "Pending", message: `route ${route.name}: reserving a TCP address` } });
              continue;
            }
            endpoints.set(id, { id, proto: "tcp", remoteAddr: address, pooling, routes: [upstream], ...(proxyProto ? { proxyProto } : {}), metadata: meta(id) });
            continue;
          }
          // A random address cannot be pooled (binding one address from two sessions needs a reservation).
          endpoints.set(id, { id, proto: "tcp", pooling: false, routes: [upstream], ...(proxyProto ? { proxyProto } : {}), metadata: meta(id) });
          continue;
        }
        case "TLS": {
          if (route.tls && route.tls.mode !== "passthrough") {
            refused.push({ key, outcome: { ready: false, reason: "UnsupportedField", message: `route ${route.name}: the ngrok connector passes TLS through to the Service; tls.mode ${route.tls.mode} is not supported` } });
            continue;
          }
          const id = `tls://${route.hostname}`;
          endpoints.set(id, { id, proto: "tls", domain: route.hostname!, pooling, routes: [upstream], ...(proxyProto ? { proxyProto } : {}), metadata: meta(id) });
          continue;
        }
        default:
          refused.push({ key, outcome: { ready: false, reason: "UnsupportedProtocol", message: `route ${route.name}: ngrok does not carry ${route.protocol}` } });
      }
    }
  }
  // Longest path first, so the connector's router can take the first prefix that matches.
  for (const e of endpoints.values()) e.routes.sort((a, b) => b.path.length - a.path.length || a.path.localeCompare(b.path));
  return { table: { tunnel: tunnelUid, endpoints: [...endpoints.values()].sort((a, b) => a.id.localeCompare(b.id)) }, refused };
}

/** The URL a binding's status shows for a route of this endpoint, given the URL ngrok assigned. */
export function routeUrl(endpoint: EndpointSpec, route: UpstreamRoute, assigned: string | undefined): string | undefined {
  const base =
    assigned ??
    (endpoint.remoteAddr ? `tcp://${endpoint.remoteAddr}` : endpoint.domain ? (endpoint.proto === "tls" ? `tls://${endpoint.domain}:443` : `https://${endpoint.domain}`) : undefined);
  if (!base) return undefined;
  if (endpoint.proto !== "http") return base;
  return `${base.replace(/\/$/, "")}${route.path}`;
}
