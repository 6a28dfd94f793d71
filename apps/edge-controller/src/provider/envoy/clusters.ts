// One STATIC cluster per route: an endpoint on every uplink's tunnel address at the route's
// tunnel port, actively health-checked through the uplink's readiness port (HTTP GET
// /ready), with panic routing off so traffic never goes to an uplink known to be down.
//
// A route with PROXY protocol gets it from an upstream transport socket chosen by endpoint
// metadata (`transport_socket_matches`); the health check asks for a socket that matches no
// entry, so it gets the cluster's default (raw) socket and /ready sees plain HTTP, never a
// PROXY header.
//
// A cluster depends on its own route, the uplinks and the health-check settings only, so a
// change to another route leaves it byte-identical and Envoy keeps it (and its connections).
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { ClusterSchema, Cluster_DiscoveryType, type Cluster } from "@ktube/envoy-api/gen/envoy/config/cluster/v3/cluster_pb.ts";
import type { HealthCheckSchema } from "@ktube/envoy-api/gen/envoy/config/core/v3/health_check_pb.ts";
import { ProxyProtocolConfig_Version } from "@ktube/envoy-api/gen/envoy/config/core/v3/proxy_protocol_pb.ts";
import { ProxyProtocolUpstreamTransportSchema } from "@ktube/envoy-api/gen/envoy/extensions/transport_sockets/proxy_protocol/v3/upstream_proxy_protocol_pb.ts";
import { RawBufferSchema } from "@ktube/envoy-api/gen/envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer_pb.ts";
import { EXTENSION, seconds, typedConfig } from "./extensions.ts";
import { clusterName } from "./names.ts";
import type { EdgeHealthCheck, EdgePlan, EdgeRoute } from "./plan.ts";

/** How long Envoy waits for a TCP connection to an uplink (over WireGuard). */
export const CONNECT_TIMEOUT_SECONDS = 5;
/** The uplinks' readiness endpoint. */
export const READY_PATH = "/ready";
/** The Host header of health checks (the default, the cluster name, is not a valid host). */
export const HEALTH_CHECK_HOST = "ktube-uplink";

/** Endpoint metadata key (under `envoy.transport_socket_match`) that selects the PROXY protocol socket. */
const PROXY_PROTOCOL_KEY = "proxy_protocol";
const TRANSPORT_SOCKET_MATCH = "envoy.transport_socket_match";

function healthCheck(check: EdgeHealthCheck, proxyProtocol: boolean): MessageInitShape<typeof HealthCheckSchema> {
  return {
    timeout: seconds(check.timeoutSeconds),
    interval: seconds(check.intervalSeconds),
    // Without traffic Envoy would check only every 60 s; an uplink that comes back must be seen as soon as with traffic.
    noTrafficInterval: seconds(check.intervalSeconds),
    unhealthyThreshold: check.unhealthyThreshold,
    healthyThreshold: check.healthyThreshold,
    healthChecker: { case: "httpHealthCheck", value: { path: READY_PATH, host: HEALTH_CHECK_HOST } },
    // Matches no transport_socket_matches entry: the check uses the cluster's default raw socket.
    ...(proxyProtocol ? { transportSocketMatchCriteria: { [PROXY_PROTOCOL_KEY]: false } } : {}),
  };
}

function proxyProtocolSocket(version: "v1" | "v2") {
  return {
    name: `proxy-protocol-${version}`,
    match: { [PROXY_PROTOCOL_KEY]: true },
    transportSocket: {
      name: EXTENSION.upstreamProxyProtocol,
      configType: typedConfig(ProxyProtocolUpstreamTransportSchema, {
        config: { version: version === "v2" ? ProxyProtocolConfig_Version.V2 : ProxyProtocolConfig_Version.V1 },
        transportSocket: { name: EXTENSION.rawBuffer, configType: typedConfig(RawBufferSchema, {}) },
      }),
    },
  };
}

export function renderCluster(route: EdgeRoute, plan: Pick<EdgePlan, "uplinks" | "healthCheck">): Cluster {
  const name = clusterName(route);
  const proxyProtocol = route.proxyProtocol !== undefined && route.protocol !== "UDP";
  const uplinks = [...new Set(plan.uplinks)].sort();
  return create(ClusterSchema, {
    name,
    clusterDiscoveryType: { case: "type", value: Cluster_DiscoveryType.STATIC },
    connectTimeout: seconds(CONNECT_TIMEOUT_SECONDS),
    loadAssignment: {
      clusterName: name,
      endpoints: [
        {
          lbEndpoints: uplinks.map((address) => ({
            hostIdentifier: {
              case: "endpoint" as const,
              value: {
                address: {
                  address: {
                    case: "socketAddress" as const,
                    // No `protocol: UDP` for UDP routes either: udp_proxy picks the transport, as in Envoy's own examples.
                    value: { address, portSpecifier: { case: "portValue" as const, value: route.tunnelPort } },
                  },
                },
                healthCheckConfig: { portValue: plan.healthCheck.port },
              },
            },
            ...(proxyProtocol ? { metadata: { filterMetadata: { [TRANSPORT_SOCKET_MATCH]: { [PROXY_PROTOCOL_KEY]: true } } } } : {}),
          })),
        },
      ],
    },
    healthChecks: [healthCheck(plan.healthCheck, proxyProtocol)],
    commonLbConfig: { healthyPanicThreshold: { value: 0 } },
    ...(proxyProtocol && route.proxyProtocol ? { transportSocketMatches: [proxyProtocolSocket(route.proxyProtocol)] } : {}),
  });
}

/** One cluster per route, sorted by name. */
export function renderClusters(plan: Pick<EdgePlan, "routes" | "uplinks" | "healthCheck">): Cluster[] {
  return plan.routes.map((route) => renderCluster(route, plan)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
