// Which accepted routes the VPS serves, on which public port, through which tunnel port.
//
// A public port serves one kind of traffic: raw TCP (one route), UDP (one route), TLS
// (TLS and HTTPS routes, fanned out by SNI, one default chain at most) or HTTP (routes by
// Host and path). Routing's claims keep two routes from taking the same TCP/UDP port, SNI
// name or host+path; what they cannot see, a port already serving another kind, the
// WireGuard, SSH or Envoy admin port, or a port outside the Tunnel's listenPorts, is decided here: the
// older binding keeps the port and the younger route gets a ListenPortConflict outcome,
// never a failed tunnel. Each served route gets its own port on the uplinks' tunnel
// address (the uplink forwards it to the target); a route keeps the one it had.
import { durationMs, type EdgeTunnelSpec, type Route } from "@ktube/api";
import type { AcceptedBinding, RouteOutcome } from "@ktube/provider-kit";
import type { EdgeRoute } from "./envoy/plan.ts";

/** Tunnel ports are handed out from this range on the uplinks' tunnel addresses. */
export const TUNNEL_PORT_FIRST = 20_000;
export const TUNNEL_PORT_LAST = 39_999;
/** The uplinks' readiness port (HTTP GET /ready) on their tunnel address. */
export const UPLINK_READY_PORT = 40_500;

type PortKind = "TCP" | "UDP" | "TLS" | "HTTP";

const kindOf = (protocol: Route["protocol"]): PortKind => (protocol === "HTTPS" ? "TLS" : protocol);
const transportOf = (kind: PortKind): "TCP" | "UDP" => (kind === "UDP" ? "UDP" : "TCP");

/** The public port a route listens on: its own, or the protocol's usual one. */
export function listenPortOf(route: Route): number | undefined {
  if (route.listenPort !== undefined) return route.listenPort;
  if (route.protocol === "HTTP") return 80;
  if (route.protocol === "HTTPS" || route.protocol === "TLS") return 443;
  return undefined;
}

/** A route served with TLS terminated at the edge needs its binding's Secret. */
export interface TlsSecretRef {
  /** The SDS resource name: `<namespace>.<secret>`. */
  name: string;
  namespace: string;
  secret: string;
  mutual: boolean;
}

/** Where a route goes in the cluster: a Service (reached at its cluster IP) or a raw address. */
export interface EdgeTarget {
  host: string;
  port: number;
  service?: { namespace: string; name: string };
}

export interface PortPlan {
  routes: Array<EdgeRoute & { target: EdgeTarget }>;
  /** Routes the VPS cannot serve, by route key, with the reason. */
  refused: Array<{ key: string; outcome: RouteOutcome }>;
  secrets: TlsSecretRef[];
}

const inRanges = (port: number, ranges: EdgeTunnelSpec["listenPorts"]): boolean => ranges.some((r) => port >= r.from && port <= (r.to ?? r.from));
const describeRanges = (ranges: EdgeTunnelSpec["listenPorts"]): string => ranges.map((r) => (r.to && r.to !== r.from ? `${r.from}-${r.to}` : `${r.from}`)).join(", ");

/**
 * `recorded(key)` is the tunnel port a route had (from memory or its binding's status),
 * kept when still free, so the uplinks' forwarding for unchanged routes never moves.
 */
export function planPorts(
  edge: EdgeTunnelSpec,
  accepted: readonly AcceptedBinding[],
  recorded: (key: string) => number | undefined,
  options: { envoyAdminPort: number },
): PortPlan {
  const plan: PortPlan = { routes: [], refused: [], secrets: [] };
  /** `<transport>/<port>` -> the kind it serves and who set it. */
  const ports = new Map<string, { kind: PortKind; by: string }>();
  const placed: Array<{ key: string; route: EdgeRoute & { target: EdgeTarget }; want: number | undefined }> = [];
  const refuse = (key: string, reason: string, message: string): void => {
    plan.refused.push({ key, outcome: { ready: false, reason, message } });
  };

  for (const { binding, routes } of accepted) {
    const owner = `${binding.metadata.namespace}/${binding.metadata.name}`;
    for (const { route, host, port } of routes) {
      const key = `${owner}/${route.name}`;
      const listenPort = listenPortOf(route);
      const kind = kindOf(route.protocol);
      const transport = transportOf(kind);
      if (listenPort === undefined) {
        refuse(key, "ListenPortRequired", `route ${route.name}: a ${route.protocol} route on the edge needs listenPort`);
        continue;
      }
      if (transport === "UDP" && listenPort === edge.wireguard.listenPort) {
        refuse(key, "ListenPortConflict", `route ${route.name}: ${listenPort}/UDP is the tunnel's WireGuard port`);
        continue;
      }
      if (transport === "TCP" && listenPort === options.envoyAdminPort) {
        refuse(key, "ListenPortConflict", `route ${route.name}: ${listenPort}/TCP is Envoy's admin port on the VPS`);
        continue;
      }
      if (transport === "TCP" && listenPort === edge.ssh.port) {
        refuse(key, "ListenPortConflict", `route ${route.name}: ${listenPort}/TCP is the VPS's SSH port`);
        continue;
      }
      if (!inRanges(listenPort, edge.listenPorts)) {
        refuse(key, "ListenPortNotAllowed", `route ${route.name}: port ${listenPort} is not one of the tunnel's listenPorts (${describeRanges(edge.listenPorts)})`);
        continue;
      }
      const slot = `${transport}/${listenPort}`;
      const held = ports.get(slot);
      if (held && held.kind !== kind) {
        refuse(key, "ListenPortConflict", `route ${route.name}: port ${slot} already serves ${held.kind} routes of ${held.by}, which is older`);
        continue;
      }
      if (!held) ports.set(slot, { kind, by: owner });

      const terminates = route.tls !== undefined && route.tls.mode !== "passthrough" && route.tls.secretRef !== undefined;
      let secret: string | undefined;
      if (terminates) {
        const namespace = binding.metadata.namespace!;
        secret = `${namespace}.${route.tls!.secretRef!.name}`;
        if (!plan.secrets.some((s) => s.name === secret)) {
          plan.secrets.push({ name: secret, namespace, secret: route.tls!.secretRef!.name, mutual: false });
        }
        if (route.tls!.mode === "mutual") plan.secrets.find((s) => s.name === secret)!.mutual = true;
      }
      const edgeRoute: EdgeRoute & { target: EdgeTarget } = {
        key,
        protocol: route.protocol,
        listenPort,
        tunnelPort: 0,
        target: { host, port, ...(route.service ? { service: { namespace: binding.metadata.namespace!, name: route.service.name } } : {}) },
        ...(route.hostname ? { hostname: route.hostname } : {}),
        ...(route.path ? { path: route.path } : {}),
        ...(route.tls ? { tls: { mode: route.tls.mode, ...(secret ? { secret } : {}) } } : {}),
        ...(route.proxyProtocol ? { proxyProtocol: route.proxyProtocol } : {}),
        ...(route.udp ? { udpSessionTimeoutSeconds: Math.max(1, Math.round(durationMs(route.udp.sessionTimeout) / 1000)) } : {}),
      };
      placed.push({ key, route: edgeRoute, want: recorded(key) });
    }
  }

  // Tunnel ports: kept where recorded and still free, the lowest free one otherwise.
  const taken = new Set<number>();
  for (const p of placed) {
    if (p.want !== undefined && p.want >= TUNNEL_PORT_FIRST && p.want <= TUNNEL_PORT_LAST && !taken.has(p.want)) {
      p.route.tunnelPort = p.want;
      taken.add(p.want);
    }
  }
  let next = TUNNEL_PORT_FIRST;
  for (const p of placed) {
    if (p.route.tunnelPort === 0) {
      while (taken.has(next)) next++;
      if (next > TUNNEL_PORT_LAST) {
        refuse(p.key, "TooManyRoutes", `the edge carries at most ${TUNNEL_PORT_LAST - TUNNEL_PORT_FIRST + 1} routes per tunnel`);
        continue;
      }
      p.route.tunnelPort = next;
      taken.add(next);
    }
    plan.routes.push(p.route);
  }
  return plan;
}

/** The URL a route is reached at through the VPS. */
export function publicUrl(address: string, route: EdgeRoute): string {
  const host = route.hostname ?? address;
  switch (route.protocol) {
    case "HTTP":
      return `http://${host}${route.listenPort === 80 ? "" : `:${route.listenPort}`}${route.path ?? ""}`;
    case "HTTPS":
      return `https://${host}${route.listenPort === 443 ? "" : `:${route.listenPort}`}${route.path ?? ""}`;
    case "TLS":
      return `tls://${host}:${route.listenPort}`;
    case "TCP":
      return `tcp://${address}:${route.listenPort}`;
    case "UDP":
      return `udp://${address}:${route.listenPort}`;
  }
}
