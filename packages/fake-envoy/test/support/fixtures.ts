// Envoy config as the edge controller renders it (JSON, file-based xDS), written the way it
// writes it (temporary file + rename), for fake-envoy's tests.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JsonObject } from "@ktube/envoy-validator";

export const TYPE = "type.googleapis.com/";
export const LISTENER = `${TYPE}envoy.config.listener.v3.Listener`;
export const CLUSTER = `${TYPE}envoy.config.cluster.v3.Cluster`;
export const SECRET = `${TYPE}envoy.extensions.transport_sockets.tls.v3.Secret`;

let sequence = 0;

/** Writes `content` next to `path` and renames it over `path`, as the controller does. */
export function writeAtomic(path: string, content: string | JsonObject): void {
  const staging = `${path}.tmp-${process.pid}-${sequence++}`;
  writeFileSync(staging, typeof content === "string" ? content : `${JSON.stringify(content, null, 1)}\n`);
  renameSync(staging, path);
}

export const discovery = (typeUrl: string, version: string, resources: JsonObject[]): JsonObject => ({
  version_info: version,
  resources: resources.map((resource) => ({ "@type": typeUrl, ...resource })),
  type_url: typeUrl,
});

export const lds = (version: string, listeners: JsonObject[]): JsonObject => discovery(LISTENER, version, listeners);
export const cds = (version: string, clusters: JsonObject[]): JsonObject => discovery(CLUSTER, version, clusters);
export const sds = (version: string, secrets: JsonObject[]): JsonObject => discovery(SECRET, version, secrets);

export const tcpProxy = (cluster: string, extra: JsonObject = {}): JsonObject => ({
  name: "envoy.filters.network.tcp_proxy",
  typed_config: { "@type": `${TYPE}envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`, stat_prefix: cluster, cluster, ...extra },
});

export const tlsInspector: JsonObject = {
  name: "envoy.filters.listener.tls_inspector",
  typed_config: { "@type": `${TYPE}envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector` },
};

/** A TCP listener with one chain per (server names, cluster), tls_inspector when any chain has server names. */
export function tcpListener(name: string, port: number, chains: Array<{ name: string; serverNames?: string[]; cluster: string; transportSocket?: JsonObject; proxy?: JsonObject }>): JsonObject {
  return {
    name,
    address: { socket_address: { address: "0.0.0.0", port_value: port } },
    ...(chains.some((chain) => chain.serverNames) ? { listener_filters: [tlsInspector] } : {}),
    filter_chains: chains.map((chain) => ({
      name: chain.name,
      ...(chain.serverNames ? { filter_chain_match: { server_names: chain.serverNames } } : {}),
      ...(chain.transportSocket ? { transport_socket: chain.transportSocket } : {}),
      filters: [tcpProxy(chain.cluster, chain.proxy)],
    })),
  };
}

export function udpListener(name: string, port: number, cluster: string): JsonObject {
  return {
    name,
    address: { socket_address: { protocol: "UDP", address: "0.0.0.0", port_value: port } },
    listener_filters: [
      {
        name: "envoy.filters.udp_listener.udp_proxy",
        typed_config: {
          "@type": `${TYPE}envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig`,
          stat_prefix: cluster,
          matcher: { on_no_match: { action: { name: "route", typed_config: { "@type": `${TYPE}envoy.extensions.filters.udp.udp_proxy.v3.Route`, cluster } } } },
        },
      },
    ],
  };
}

/** TLS offload with the certificate (and, for mutual TLS, the CA) over SDS files in `sdsDir`. */
export function downstreamTls(sdsDir: string, certificate: string, ca?: string): JsonObject {
  const sdsConfig = (name: string): JsonObject => ({
    name,
    sds_config: { path_config_source: { path: join(sdsDir, `${name}.json`), watched_directory: { path: sdsDir } }, resource_api_version: "V3" },
  });
  return {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": `${TYPE}envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`,
      ...(ca ? { require_client_certificate: true } : {}),
      common_tls_context: {
        tls_certificate_sds_secret_configs: [sdsConfig(certificate)],
        ...(ca ? { validation_context_sds_secret_config: sdsConfig(ca) } : {}),
      },
    },
  };
}

/** STATIC over tunnel addresses, HTTP /ready checks on another port, PROXY v2 upstream. */
export function staticCluster(name: string, endpoints: string[] = ["10.77.0.2"], port = 8443, extra: JsonObject = {}): JsonObject {
  return {
    name,
    type: "STATIC",
    connect_timeout: "5s",
    load_assignment: {
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: endpoints.map((address) => ({
            endpoint: { address: { socket_address: { address, port_value: port } }, health_check_config: { port_value: 9090 } },
          })),
        },
      ],
    },
    health_checks: [{ timeout: "1s", interval: "5s", unhealthy_threshold: 2, healthy_threshold: 1, http_health_check: { path: "/ready" } }],
    common_lb_config: { healthy_panic_threshold: { value: 0 } },
    transport_socket: {
      name: "envoy.transport_sockets.upstream_proxy_protocol",
      typed_config: {
        "@type": `${TYPE}envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport`,
        config: { version: "V2" },
        transport_socket: { name: "envoy.transport_sockets.raw_buffer", typed_config: { "@type": `${TYPE}envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer` } },
      },
    },
    ...extra,
  };
}

export const certificateSecret = (name: string, pair: { cert: string; key: string }): JsonObject => ({
  name,
  tls_certificate: { certificate_chain: { inline_string: pair.cert }, private_key: { inline_string: pair.key } },
});

export interface BootstrapOptions {
  dir: string;
  /** Watch the directory (the controller's way) or only the paths. */
  watchedDirectory?: boolean;
  extra?: JsonObject;
}

export function bootstrap(options: BootstrapOptions): JsonObject {
  const source = (file: string): JsonObject => ({
    path_config_source: { path: join(options.dir, file), ...(options.watchedDirectory === false ? {} : { watched_directory: { path: options.dir } }) },
    resource_api_version: "V3",
  });
  return {
    node: { id: "edge/test", cluster: "ktube-edge" },
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    dynamic_resources: { lds_config: source("lds.json"), cds_config: source("cds.json") },
    ...options.extra,
  };
}

/** A temporary config directory holding a bootstrap and empty LDS/CDS files (enrollment's starting point). */
export function configDir(options: Omit<BootstrapOptions, "dir"> = {}): { dir: string; bootstrapPath: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "fake-envoy-test-"));
  const bootstrapPath = join(dir, "bootstrap.json");
  writeFileSync(bootstrapPath, JSON.stringify(bootstrap({ dir, ...options }), null, 1));
  writeFileSync(join(dir, "lds.json"), JSON.stringify(lds("", [])));
  writeFileSync(join(dir, "cds.json"), JSON.stringify(cds("", [])));
  return { dir, bootstrapPath, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A self-signed certificate and its key (the openssl CLI issues it; node:crypto cannot). */
export function selfSigned(commonName: string): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), "fake-envoy-cert-"));
  try {
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", `/CN=${commonName}`, "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")],
      { stdio: "pipe" },
    );
    return { cert: readFileSync(join(dir, "cert.pem"), "utf8"), key: readFileSync(join(dir, "key.pem"), "utf8") };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new Error("fake-envoy's TLS tests need the openssl CLI to issue test certificates: apt-get install openssl");
    throw error;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
