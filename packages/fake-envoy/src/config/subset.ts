// The part of Envoy's v3 API fake-envoy implements: what KTube's edge controller renders
// (see README.md, "What it implements"). Everything else is refused by name. To serve a new
// field, add it here and implement it; the types below follow.
import {
  bool,
  bytes,
  double,
  duration,
  enumOf,
  extension,
  list,
  map,
  message,
  string,
  struct,
  uint,
  type Infer,
} from "./spec.ts";

// --- envoy.config.core.v3 -------------------------------------------------------------

export const socketAddressSpec = message("envoy.config.core.v3.SocketAddress", {
  protocol: enumOf("envoy.config.core.v3.SocketAddress.Protocol", { TCP: 0, UDP: 1 }, ["TCP", "UDP"]),
  address: string,
  port_value: uint,
});

export const addressSpec = message("envoy.config.core.v3.Address", { socket_address: socketAddressSpec });

const watchedDirectorySpec = message("envoy.config.core.v3.WatchedDirectory", { path: string });

export const pathConfigSourceSpec = message("envoy.config.core.v3.PathConfigSource", {
  path: string,
  watched_directory: watchedDirectorySpec,
});

/** File-based xDS only. */
export const configSourceSpec = message(
  "envoy.config.core.v3.ConfigSource",
  {
    path_config_source: pathConfigSourceSpec,
    resource_api_version: enumOf("envoy.config.core.v3.ApiVersion", { AUTO: 0, V2: 1, V3: 2 }, ["AUTO", "V3"]),
    // Read synchronously from a file, the initial fetch never waits: the timeout has nothing to bound.
    initial_fetch_timeout: duration,
  },
  { hints: { path: "the deprecated form of a file source; use path_config_source { path, watched_directory }" } },
);

const dataSourceSpec = message(
  "envoy.config.core.v3.DataSource",
  { inline_string: string, inline_bytes: bytes },
  { hints: { filename: "secrets are served inline (SDS file rotation replaces them)" } },
);

const metadataSpec = message("envoy.config.core.v3.Metadata", { filter_metadata: map(struct) });

// --- TLS: secrets and the downstream context ---------------------------------------------

export const secretSpec = message("envoy.extensions.transport_sockets.tls.v3.Secret", {
  name: string,
  tls_certificate: message("envoy.extensions.transport_sockets.tls.v3.TlsCertificate", {
    certificate_chain: dataSourceSpec,
    private_key: dataSourceSpec,
  }),
  validation_context: message("envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext", {
    trusted_ca: dataSourceSpec,
  }),
});

export const sdsSecretConfigSpec = message("envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig", {
  name: string,
  sds_config: configSourceSpec,
});

const tlsVersion = enumOf(
  "envoy.extensions.transport_sockets.tls.v3.TlsParameters.TlsProtocol",
  { TLS_AUTO: 0, TLSv1_0: 1, TLSv1_1: 2, TLSv1_2: 3, TLSv1_3: 4 },
  ["TLS_AUTO", "TLSv1_2", "TLSv1_3"],
);

export const downstreamTlsContextSpec = message("envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext", {
  common_tls_context: message(
    "envoy.extensions.transport_sockets.tls.v3.CommonTlsContext",
    {
      tls_params: message("envoy.extensions.transport_sockets.tls.v3.TlsParameters", {
        tls_minimum_protocol_version: tlsVersion,
        tls_maximum_protocol_version: tlsVersion,
      }),
      tls_certificate_sds_secret_configs: list(sdsSecretConfigSpec),
      validation_context_sds_secret_config: sdsSecretConfigSpec,
      alpn_protocols: list(string),
    },
    { hints: { tls_certificates: "certificates come over SDS (tls_certificate_sds_secret_configs)" } },
  ),
  require_client_certificate: bool,
});

// --- Listener ------------------------------------------------------------------------------

export const TLS_INSPECTOR = "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector";
export const UDP_PROXY = "envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig";
export const TCP_PROXY = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
export const HTTP_CONNECTION_MANAGER = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
export const ROUTER = "envoy.extensions.filters.http.router.v3.Router";
export const DOWNSTREAM_TLS_CONTEXT = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
export const PROXY_PROTOCOL_UPSTREAM = "envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport";
export const RAW_BUFFER = "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";
export const UDP_PROXY_ROUTE = "envoy.extensions.filters.udp.udp_proxy.v3.Route";

export const tcpProxySpec = message(TCP_PROXY, { stat_prefix: string, cluster: string, idle_timeout: duration });

const routeSpec = message("envoy.config.route.v3.Route", {
  name: string,
  match: message("envoy.config.route.v3.RouteMatch", { prefix: string, path: string }),
  route: message("envoy.config.route.v3.RouteAction", { cluster: string, timeout: duration }),
});

export const routeConfigurationSpec = message("envoy.config.route.v3.RouteConfiguration", {
  name: string,
  virtual_hosts: list(
    message("envoy.config.route.v3.VirtualHost", {
      name: string,
      domains: list(string),
      routes: list(routeSpec),
    }),
  ),
});

export const httpConnectionManagerSpec = message(
  HTTP_CONNECTION_MANAGER,
  {
    stat_prefix: string,
    codec_type: enumOf(
      "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.CodecType",
      { AUTO: 0, HTTP1: 1, HTTP2: 2, HTTP3: 3 },
      ["AUTO", "HTTP1"],
    ),
    route_config: routeConfigurationSpec,
    http_filters: list(extension("http_filter", { [ROUTER]: message(ROUTER, {}) })),
    // The edge's HTTP listeners: the client's address in X-Forwarded-For, Host matched
    // without its port, WebSocket upgrades passed through (served by part 2's data path).
    use_remote_address: bool,
    strip_any_host_port: bool,
    upgrade_configs: list(
      message("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.UpgradeConfig", { upgrade_type: string }),
    ),
  },
  { hints: { rds: "routes are served inline (route_config)" } },
);

export const udpProxySpec = message(UDP_PROXY, {
  stat_prefix: string,
  idle_timeout: duration,
  matcher: message(
    "xds.type.matcher.v3.Matcher",
    {
      on_no_match: message("xds.type.matcher.v3.Matcher.OnMatch", {
        action: extension("udp_proxy_action", { [UDP_PROXY_ROUTE]: message(UDP_PROXY_ROUTE, { cluster: string }) }),
      }),
    },
    { hints: { matcher_list: "a UDP listener routes everything to one cluster (on_no_match)", matcher_tree: "a UDP listener routes everything to one cluster (on_no_match)" } },
  ),
});

export const filterChainSpec = message("envoy.config.listener.v3.FilterChain", {
  name: string,
  filter_chain_match: message("envoy.config.listener.v3.FilterChainMatch", {
    server_names: list(string),
    transport_protocol: string,
  }),
  filters: list(extension("network_filter", { [TCP_PROXY]: tcpProxySpec, [HTTP_CONNECTION_MANAGER]: httpConnectionManagerSpec })),
  transport_socket: extension("downstream_transport_socket", { [DOWNSTREAM_TLS_CONTEXT]: downstreamTlsContextSpec }),
});

export const listenerSpec = message("envoy.config.listener.v3.Listener", {
  name: string,
  address: addressSpec,
  filter_chains: list(filterChainSpec),
  default_filter_chain: filterChainSpec,
  // TCP listeners take tls_inspector, UDP listeners udp_proxy (checked with the listener).
  listener_filters: list(extension("listener_filter", { [TLS_INSPECTOR]: message(TLS_INSPECTOR, {}), [UDP_PROXY]: udpProxySpec })),
  listener_filters_timeout: duration,
  continue_on_listener_filters_timeout: bool,
  enable_reuse_port: bool,
});

// --- Cluster -------------------------------------------------------------------------------

const rawBufferSocket = extension("upstream_transport_socket", { [RAW_BUFFER]: message(RAW_BUFFER, {}) });

const upstreamTransportSocket = extension("upstream_transport_socket", {
  [RAW_BUFFER]: message(RAW_BUFFER, {}),
  [PROXY_PROTOCOL_UPSTREAM]: message(PROXY_PROTOCOL_UPSTREAM, {
    config: message("envoy.config.core.v3.ProxyProtocolConfig", {
      version: enumOf("envoy.config.core.v3.ProxyProtocolConfig.Version", { V1: 0, V2: 1 }, ["V1", "V2"]),
    }),
    transport_socket: rawBufferSocket,
  }),
});

export const healthCheckSpec = message("envoy.config.core.v3.HealthCheck", {
  timeout: duration,
  interval: duration,
  no_traffic_interval: duration,
  unhealthy_threshold: uint,
  healthy_threshold: uint,
  reuse_connection: bool,
  http_health_check: message("envoy.config.core.v3.HealthCheck.HttpHealthCheck", { path: string, host: string }),
  tcp_health_check: message("envoy.config.core.v3.HealthCheck.TcpHealthCheck", {}),
  transport_socket_match_criteria: struct,
});

export const lbEndpointSpec = message("envoy.config.endpoint.v3.LbEndpoint", {
  endpoint: message("envoy.config.endpoint.v3.Endpoint", {
    address: addressSpec,
    health_check_config: message("envoy.config.endpoint.v3.Endpoint.HealthCheckConfig", { port_value: uint }),
  }),
  metadata: metadataSpec,
});

export const clusterSpec = message("envoy.config.cluster.v3.Cluster", {
  name: string,
  type: enumOf("envoy.config.cluster.v3.Cluster.DiscoveryType", { STATIC: 0, STRICT_DNS: 1, LOGICAL_DNS: 2, EDS: 3, ORIGINAL_DST: 4 }, ["STATIC"]),
  connect_timeout: duration,
  lb_policy: enumOf(
    "envoy.config.cluster.v3.Cluster.LbPolicy",
    { ROUND_ROBIN: 0, LEAST_REQUEST: 1, RING_HASH: 2, RANDOM: 3, MAGLEV: 5, CLUSTER_PROVIDED: 6, LOAD_BALANCING_POLICY_CONFIG: 7 },
    ["ROUND_ROBIN"],
  ),
  load_assignment: message("envoy.config.endpoint.v3.ClusterLoadAssignment", {
    cluster_name: string,
    endpoints: list(message("envoy.config.endpoint.v3.LocalityLbEndpoints", { lb_endpoints: list(lbEndpointSpec) })),
  }),
  health_checks: list(healthCheckSpec),
  common_lb_config: message("envoy.config.cluster.v3.Cluster.CommonLbConfig", {
    healthy_panic_threshold: message("envoy.type.v3.Percent", { value: double }),
  }),
  transport_socket: upstreamTransportSocket,
  transport_socket_matches: list(
    message("envoy.config.cluster.v3.Cluster.TransportSocketMatch", { name: string, match: struct, transport_socket: upstreamTransportSocket }),
  ),
});

// --- Bootstrap -----------------------------------------------------------------------------

export const bootstrapSpec = message("envoy.config.bootstrap.v3.Bootstrap", {
  node: message("envoy.config.core.v3.Node", { id: string, cluster: string }),
  admin: message("envoy.config.bootstrap.v3.Admin", { address: addressSpec }),
  static_resources: message("envoy.config.bootstrap.v3.Bootstrap.StaticResources", {
    listeners: list(listenerSpec),
    clusters: list(clusterSpec),
    secrets: list(secretSpec),
  }),
  dynamic_resources: message("envoy.config.bootstrap.v3.Bootstrap.DynamicResources", {
    lds_config: configSourceSpec,
    cds_config: configSourceSpec,
  }),
});

export type SocketAddress = Infer<typeof socketAddressSpec>;
export type Address = Infer<typeof addressSpec>;
export type ConfigSource = Infer<typeof configSourceSpec>;
export type Secret = Infer<typeof secretSpec>;
export type SdsSecretConfig = Infer<typeof sdsSecretConfigSpec>;
export type DownstreamTlsContext = Infer<typeof downstreamTlsContextSpec>;
export type TcpProxy = Infer<typeof tcpProxySpec>;
export type HttpConnectionManager = Infer<typeof httpConnectionManagerSpec>;
export type RouteConfiguration = Infer<typeof routeConfigurationSpec>;
export type UdpProxyConfig = Infer<typeof udpProxySpec>;
export type FilterChain = Infer<typeof filterChainSpec>;
export type Listener = Infer<typeof listenerSpec>;
export type HealthCheck = Infer<typeof healthCheckSpec>;
export type LbEndpoint = Infer<typeof lbEndpointSpec>;
export type Cluster = Infer<typeof clusterSpec>;
export type Bootstrap = Infer<typeof bootstrapSpec>;
