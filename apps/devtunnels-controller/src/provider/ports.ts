// A tunnel's ports: one per accepted route, planned from the tunnel's bindings (oldest
// first, so who fits under the port limit is decided the same way every time). The port
// number is the public URL's key (`https://<id>-<port>.<region>.devtunnels.ms`): the route's
// listenPort if it names one, else the port it already has (status), else its Service's
// port if free, else the lowest free one from 8000.
import { createHash } from "node:crypto";
import type { AcceptedBinding, RouteOutcome } from "@ktube/provider-kit";

export interface PortPlan {
  port: number;
  /** `namespace/binding/route`. */
  key: string;
  /** The backend speaks plain HTTP or TLS (the relay terminates the public TLS either way). */
  protocol: "http" | "https";
  /** In-cluster `host:port` of the Service. */
  upstream: string;
}

export interface PortTable {
  /** The Tunnel's uid: a host never serves another tunnel's table. */
  tunnel: string;
  tunnelId: string;
  region: string;
  ports: PortPlan[];
}

export interface Refusal {
  key: string;
  outcome: RouteOutcome;
}

export const DEFAULT_MAX_PORTS = 10;
const FIRST_ALLOCATED = 8000;

export const routeKey = (namespace: string, binding: string, route: string): string => `${namespace}/${binding}/${route}`;
export const tableHash = (table: PortTable): string => createHash("sha256").update(JSON.stringify(table)).digest("hex").slice(0, 16);

export function planPorts(accepted: readonly AcceptedBinding[], recorded: (key: string) => number | undefined, maxPorts = DEFAULT_MAX_PORTS): { ports: PortPlan[]; refused: Refusal[] } {
  const routes = accepted.flatMap(({ binding, routes: rs }) =>
    rs.map((r) => ({ key: routeKey(binding.metadata.namespace!, binding.metadata.name!, r.route.name), resolved: r })),
  );
  const fits = routes.slice(0, maxPorts);
  const refused: Refusal[] = routes.slice(maxPorts).map(({ key, resolved }) => ({
    key,
    outcome: {
      ready: false,
      reason: "PortLimitExceeded",
      message: `route ${resolved.route.name}: a dev tunnel has at most ${maxPorts} ports and older bindings' routes hold them (${routes.length} routes on this tunnel); move it to another Tunnel`,
    },
  }));
  const taken = new Set<number>();
  const chosen = new Map<string, number>();
  // Explicit ports first, then kept ones, so an allocation never takes a port someone asked for.
  for (const { key, resolved } of fits) {
    const port = resolved.route.listenPort;
    if (port !== undefined && !taken.has(port)) {
      taken.add(port);
      chosen.set(key, port);
    }
  }
  for (const { key } of fits) {
    const port = recorded(key);
    if (!chosen.has(key) && port !== undefined && !taken.has(port)) {
      taken.add(port);
      chosen.set(key, port);
    }
  }
  for (const { key, resolved } of fits) {
    if (chosen.has(key)) continue;
    let port = taken.has(resolved.port) ? FIRST_ALLOCATED : resolved.port;
    while (taken.has(port)) port++;
    taken.add(port);
    chosen.set(key, port);
  }
  const ports = fits.map(({ key, resolved }) => ({
    port: chosen.get(key)!,
    key,
    protocol: resolved.route.protocol === "HTTPS" ? ("https" as const) : ("http" as const),
    upstream: `${resolved.host}:${resolved.port}`,
  }));
  return { ports: ports.sort((a, b) => a.port - b.port), refused };
}
