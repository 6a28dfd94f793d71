// One listener per public port and transport, built from the routes on it:
//
// - TCP: a chain without a match, tcp_proxy to the route's cluster.
// - UDP: udp_proxy in its matcher form, every datagram to the route's cluster.
// - TLS and HTTPS (they may share a port): tls_inspector, then one chain per SNI name, or
//   one without server_names for a route without a hostname (the port's default). A
//   passthrough chain proxies the TLS bytes; offload and mutual terminate TLS with the
//   route's SDS certificate (mutual: client certificates required, checked against the
//   secret's CA) and then proxy TCP (TLS) or serve HTTP (HTTPS: one chain per hostname with
//   every path routed in it).
// - HTTP: one chain with an http_connection_manager: a virtual host per hostname (`*` for
//   routes without one), path prefixes longest first.
//
// Each chain is built from the routes it serves only, so changing one route leaves the other
// chains byte-identical and Envoy keeps their connections. The renderer does not judge the
// plan: routes that cannot share a port or an SNI name render as conflicting chains and
// listeners, which lintEnvoyConfig reports.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { packAny } from "@ktube/envoy-api";
import { SocketAddress_Protocol } from "@ktube/envoy-api/gen/envoy/config/core/v3/address_pb.ts";
import type { FilterChainSchema } from "@ktube/envoy-api/gen/envoy/config/listener/v3/listener_components_pb.ts";
import { ListenerSchema, type Listener } from "@ktube/envoy-api/gen/envoy/config/listener/v3/listener_pb.ts";
import type { RouteSchema, VirtualHostSchema } from "@ktube/envoy-api/gen/envoy/config/route/v3/route_components_pb.ts";
import { RouterSchema } from "@ktube/envoy-api/gen/envoy/extensions/filters/http/router/v3/router_pb.ts";
import { TlsInspectorSchema } from "@ktube/envoy-api/gen/envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector_pb.ts";
import { HttpConnectionManagerSchema } from "@ktube/envoy-api/gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.ts";
import { TcpProxySchema } from "@ktube/envoy-api/gen/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy_pb.ts";
import { RouteSchema as UdpRouteSchema } from "@ktube/envoy-api/gen/envoy/extensions/filters/udp/udp_proxy/v3/route_pb.ts";
import { UdpProxyConfigSchema } from "@ktube/envoy-api/gen/envoy/extensions/filters/udp/udp_proxy/v3/udp_proxy_pb.ts";
import { DownstreamTlsContextSchema } from "@ktube/envoy-api/gen/envoy/extensions/transport_sockets/tls/v3/tls_pb.ts";
import { EXTENSION, seconds, typedConfig } from "./extensions.ts";
import { clusterName, httpChainName, httpsChainName, listenerName, routeChainName, transportOf, type Transport } from "./names.ts";
import { validationSecretName } from "./paths.ts";
import type { EdgePlan, EdgeRoute } from "./plan.ts";
import { sdsSecretConfig } from "./secrets.ts";

type ChainInit = MessageInitShape<typeof FilterChainSchema>;

/** Every listener binds all IPv4 addresses of the VPS. */
export const LISTEN_ADDRESS = "0.0.0.0";
/** ALPN offered where TLS is terminated in front of HTTP. */
const HTTP_ALPN = ["h2", "http/1.1"];

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const tlsModeOf = (route: EdgeRoute): "passthrough" | "offload" | "mutual" => route.tls?.mode ?? "passthrough";

function tcpProxyFilter(route: EdgeRoute) {
  return {
    name: EXTENSION.tcpProxy,
    configType: typedConfig(TcpProxySchema, { statPrefix: clusterName(route), clusterSpecifier: { case: "cluster", value: clusterName(route) } }),
  };
}

function serverNames(hostname: string | undefined) {
  return hostname === undefined ? {} : { filterChainMatch: { serverNames: [hostname] } };
}

/** Terminates TLS with the secret's certificate; mutual also demands a client certificate signed by the secret's CA. */
function downstreamTls(route: EdgeRoute, alpn: string[]) {
  const secret = route.tls?.secret;
  const mutual = tlsModeOf(route) === "mutual";
  return {
    name: EXTENSION.tls,
    configType: typedConfig(DownstreamTlsContextSchema, {
      commonTlsContext: {
        tlsCertificateSdsSecretConfigs: secret === undefined ? [] : [sdsSecretConfig(secret)],
        ...(mutual && secret !== undefined
          ? { validationContextType: { case: "validationContextSdsSecretConfig" as const, value: sdsSecretConfig(validationSecretName(secret)) } }
          : {}),
        alpnProtocols: alpn,
      },
      ...(mutual ? { requireClientCertificate: true } : {}),
    }),
  };
}

/** Path prefixes longest first (then by path and key), so the most specific wins; no path is `/`. */
function httpRoutes(routes: readonly EdgeRoute[]): MessageInitShape<typeof RouteSchema>[] {
  return [...routes]
    .map((route) => ({ route, prefix: route.path ?? "/" }))
    .sort((a, b) => b.prefix.length - a.prefix.length || compare(a.prefix, b.prefix) || compare(a.route.key, b.route.key))
    .map(({ route, prefix }) => ({
      name: route.key,
      match: { pathSpecifier: { case: "prefix" as const, value: prefix } },
      // No route timeout: long polls, streams and WebSockets stay up as long as the app keeps them.
      action: { case: "route" as const, value: { clusterSpecifier: { case: "cluster" as const, value: clusterName(route) }, timeout: seconds(0) } },
    }));
}

/** Virtual hosts by hostname (`*` for routes without one), sorted by name. */
function virtualHosts(routes: readonly EdgeRoute[]): MessageInitShape<typeof VirtualHostSchema>[] {
  const byHost = new Map<string, EdgeRoute[]>();
  for (const route of routes) byHost.set(route.hostname ?? "*", [...(byHost.get(route.hostname ?? "*") ?? []), route]);
  return [...byHost.entries()]
    .sort(([a], [b]) => compare(a, b))
    .map(([host, hostRoutes]) => ({ name: host, domains: [host], routes: httpRoutes(hostRoutes) }));
}

function httpConnectionManager(statPrefix: string, routeConfigName: string, routes: readonly EdgeRoute[]) {
  return {
    name: EXTENSION.httpConnectionManager,
    configType: typedConfig(HttpConnectionManagerSchema, {
      statPrefix,
      routeSpecifier: { case: "routeConfig", value: { name: routeConfigName, virtualHosts: virtualHosts(routes) } },
      httpFilters: [{ name: EXTENSION.router, configType: typedConfig(RouterSchema, {}) }],
      // Envoy is the edge: the client's address is the connection's, appended to X-Forwarded-For.
      useRemoteAddress: true,
      // `Host: shop.example.com:8443` matches the virtual host `shop.example.com`.
      stripPortMode: { case: "stripAnyHostPort", value: true },
      upgradeConfigs: [{ upgradeType: "websocket" }],
    }),
  };
}

/** The chains of a TCP port that carries TLS and HTTPS routes. */
function tlsChains(port: number, routes: readonly EdgeRoute[]): ChainInit[] {
  const chains: Array<ChainInit & { name: string }> = [];
  const terminatedHttp = new Map<string, EdgeRoute[]>();
  for (const route of routes) {
    const mode = tlsModeOf(route);
    if (mode === "passthrough") {
      chains.push({ name: routeChainName(route), ...serverNames(route.hostname), filters: [tcpProxyFilter(route)] });
    } else if (route.protocol === "TLS") {
      chains.push({ name: routeChainName(route), ...serverNames(route.hostname), transportSocket: downstreamTls(route, []), filters: [tcpProxyFilter(route)] });
    } else {
      // HTTPS routes terminated with the same SNI name, mode and secret share one chain; different ones conflict (the lint says so).
      const group = JSON.stringify([route.hostname ?? null, mode, route.tls?.secret ?? null]);
      terminatedHttp.set(group, [...(terminatedHttp.get(group) ?? []), route]);
    }
  }
  for (const group of terminatedHttp.values()) {
    const first = [...group].sort((a, b) => compare(a.key, b.key))[0]!;
    chains.push({
      name: httpsChainName(first.hostname),
      ...serverNames(first.hostname),
      transportSocket: downstreamTls(first, HTTP_ALPN),
      filters: [httpConnectionManager(`https_${port}`, `https:${port}:${first.hostname ?? "*"}`, group)],
    });
  }
  return chains.sort((a, b) => compare(a.name, b.name) || compare(JSON.stringify(a), JSON.stringify(b)));
}

function socketAddress(transport: Transport, port: number) {
  return {
    address: {
      case: "socketAddress" as const,
      value: {
        address: LISTEN_ADDRESS,
        portSpecifier: { case: "portValue" as const, value: port },
        ...(transport === "udp" ? { protocol: SocketAddress_Protocol.UDP } : {}),
      },
    },
  };
}

function tcpListener(port: number, routes: readonly EdgeRoute[]): Listener {
  const byKey = (a: EdgeRoute, b: EdgeRoute): number => compare(a.key, b.key);
  const tls = routes.filter((route) => route.protocol === "TLS" || route.protocol === "HTTPS");
  const http = routes.filter((route) => route.protocol === "HTTP");
  const tcp = routes.filter((route) => route.protocol === "TCP").sort(byKey);
  const chains: ChainInit[] = [
    ...tcp.map((route) => ({ name: routeChainName(route), filters: [tcpProxyFilter(route)] })),
    ...(http.length > 0 ? [{ name: httpChainName(port), filters: [httpConnectionManager(`http_${port}`, `http:${port}`, http)] }] : []),
    ...tlsChains(port, tls),
  ];
  return create(ListenerSchema, {
    name: listenerName("tcp", port),
    address: socketAddress("tcp", port),
    ...(tls.length > 0 ? { listenerFilters: [{ name: EXTENSION.tlsInspector, configType: typedConfig(TlsInspectorSchema, {}) }] } : {}),
    filterChains: chains,
  });
}

function udpListener(route: EdgeRoute): Listener {
  return create(ListenerSchema, {
    name: listenerName("udp", route.listenPort),
    address: socketAddress("udp", route.listenPort),
    listenerFilters: [
      {
        name: EXTENSION.udpProxy,
        configType: typedConfig(UdpProxyConfigSchema, {
          statPrefix: clusterName(route),
          routeSpecifier: {
            case: "matcher",
            value: { onNoMatch: { onMatch: { case: "action", value: { name: "route", typedConfig: packAny(UdpRouteSchema, { cluster: clusterName(route) }) } } } },
          },
          ...(route.udpSessionTimeoutSeconds !== undefined ? { idleTimeout: seconds(route.udpSessionTimeoutSeconds) } : {}),
        }),
      },
    ],
  });
}

/** The plan's listeners, sorted by transport and port (a UDP port with two routes renders two listeners: a conflict the lint reports). */
export function renderListeners(plan: Pick<EdgePlan, "routes">): Listener[] {
  const tcpPorts = new Map<number, EdgeRoute[]>();
  const udp: EdgeRoute[] = [];
  for (const route of plan.routes) {
    if (transportOf(route) === "udp") udp.push(route);
    else tcpPorts.set(route.listenPort, [...(tcpPorts.get(route.listenPort) ?? []), route]);
  }
  const listeners = [
    ...[...tcpPorts.entries()].map(([port, routes]) => ({ sort: ["tcp", port, ""] as const, listener: tcpListener(port, routes) })),
    ...udp.map((route) => ({ sort: ["udp", route.listenPort, route.key] as const, listener: udpListener(route) })),
  ];
  return listeners
    .sort((a, b) => compare(a.sort[0], b.sort[0]) || a.sort[1] - b.sort[1] || compare(a.sort[2], b.sort[2]))
    .map(({ listener }) => listener);
}
