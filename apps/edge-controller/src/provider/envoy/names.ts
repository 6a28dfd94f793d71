// Names of the Envoy resources a plan renders to. Each derives from what it serves only (a
// route's key, a port, a hostname), never from a position in a list, so adding or removing
// one route renames nothing else.
import type { EdgeRoute } from "./plan.ts";

export type Transport = "tcp" | "udp";

export const transportOf = (route: Pick<EdgeRoute, "protocol">): Transport => (route.protocol === "UDP" ? "udp" : "tcp");

/** One listener per public port and transport: `tcp-443`, `udp-53`. */
export const listenerName = (transport: Transport, port: number): string => `${transport}-${port}`;

/** A route's cluster (and its tcp_proxy/udp_proxy stat prefix): the route's key, `<namespace>/<binding>/<route>`. */
export const clusterName = (route: Pick<EdgeRoute, "key">): string => route.key;

/** The filter chain that serves a single route (TCP, TLS passthrough, TLS offload): the route's key. */
export const routeChainName = (route: Pick<EdgeRoute, "key">): string => route.key;

/** The filter chain that serves plain HTTP on a port. */
export const httpChainName = (port: number): string => `http:${port}`;

/** The filter chain that terminates TLS for one SNI name (or none: the port's default) and serves HTTP behind it. */
export const httpsChainName = (hostname: string | undefined): string => `https:${hostname ?? "*"}`;
