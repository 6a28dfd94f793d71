// What the edge controller wants one VPS's Envoy to serve: the input of `renderEnvoyConfig`.
//
// The plan is computed from the cache (the Tunnel and its accepted bindings) and holds no
// Kubernetes types: routes are already resolved to a public listen port, the port on the
// uplinks' tunnel addresses that the uplink forwards to the route's target, and the names
// of the TLS secrets pushed as SDS files.

/** Where Envoy's files live on the VPS; everything KTube writes there is below `/etc/ktube`. */
export const ENVOY_CONFIG_DIR = "/etc/ktube/envoy";
export const ENVOY_SDS_DIR = `${ENVOY_CONFIG_DIR}/sds`;

export type EdgeRouteProtocol = "TCP" | "UDP" | "TLS" | "HTTP" | "HTTPS";

export interface EdgeRouteTls {
  /** passthrough: routed by SNI, not terminated; offload: terminated at the edge; mutual: offload + client certificates required. */
  mode: "passthrough" | "offload" | "mutual";
  /** The SDS secret (an `EdgeTlsSecret.name`) for offload and mutual. */
  secret?: string;
}

export interface EdgeRoute {
  /** Stable and unique within the plan: `<namespace>/<binding>/<route>`. Names of listeners' chains and clusters derive from it. */
  key: string;
  protocol: EdgeRouteProtocol;
  /** The public port on the VPS. */
  listenPort: number;
  /** The port on every uplink's tunnel address that carries this route (the uplink DNATs it to the target). Unique per route. */
  tunnelPort: number;
  /** TLS/HTTPS: the SNI name; HTTP: the Host. Absent: the port's default (catch-all) chain, only when a binding asked for one. */
  hostname?: string;
  /** HTTP/HTTPS path prefix. */
  path?: string;
  tls?: EdgeRouteTls;
  proxyProtocol?: "v1" | "v2";
  /** UDP: idle session timeout in seconds. */
  udpSessionTimeoutSeconds?: number;
}

export interface EdgeTlsSecret {
  /** The SDS resource name, also its file name below ENVOY_SDS_DIR (`<name>.json`). */
  name: string;
  certificateChain: string;
  privateKey: string;
  /** mutual: the CA that client certificates must chain to. */
  caCertificate?: string;
}

export interface EdgeHealthCheck {
  intervalSeconds: number;
  timeoutSeconds: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  /** The uplinks' readiness port (HTTP GET `/ready`), on the same tunnel address as the routes. */
  port: number;
}

export interface EdgePlan {
  /** Envoy's node id: `<namespace>/<tunnel>`. */
  nodeId: string;
  /** Envoy's admin listener, always on loopback. */
  adminPort: number;
  /** The tunnel addresses of the uplink replicas (WireGuard peers); every cluster has one endpoint per uplink. */
  uplinks: string[];
  healthCheck: EdgeHealthCheck;
  routes: EdgeRoute[];
  secrets: EdgeTlsSecret[];
}
