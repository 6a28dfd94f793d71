// The checker itself: good config passes, each kind of mistake fails naming where it is.
import { beforeAll, describe, expect, it } from "@jest/globals";
import { execFileSync } from "node:child_process";
import { ensureEnvoyValidator, pinnedVersions, validateEnvoy, type EnvoyDocument, type JsonObject } from "../src/index.ts";

const TYPE = "type.googleapis.com/";

const tcpProxy = (cluster: string, extra: JsonObject = {}): JsonObject => ({
  name: "envoy.filters.network.tcp_proxy",
  typed_config: { "@type": `${TYPE}envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`, stat_prefix: cluster, cluster, ...extra },
});

const httpConnectionManager = (extra: JsonObject = {}): JsonObject => ({
  name: "envoy.filters.network.http_connection_manager",
  typed_config: {
    "@type": `${TYPE}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
    stat_prefix: "b",
    route_config: {
      name: "b",
      virtual_hosts: [{ name: "b", domains: ["b.example.com"], routes: [{ match: { prefix: "/" }, route: { cluster: "b" } }] }],
    },
    http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": `${TYPE}envoy.extensions.filters.http.router.v3.Router` } }],
    ...extra,
  },
});

const sdsConfig = (name: string): JsonObject => ({
  name,
  sds_config: { path_config_source: { path: `/etc/envoy/sds/${name}.json` }, resource_api_version: "V3" },
});

/** TCP :443: tls_inspector, SNI passthrough to `a`, TLS offload + HTTP for b (certificate over SDS). */
function tlsListener(options: { hcm?: JsonObject; passthrough?: JsonObject } = {}): JsonObject {
  return {
    name: "tcp-443",
    address: { socket_address: { address: "0.0.0.0", port_value: 443 } },
    listener_filters: [
      { name: "envoy.filters.listener.tls_inspector", typed_config: { "@type": `${TYPE}envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector` } },
    ],
    filter_chains: [
      { name: "a", filter_chain_match: { server_names: ["a.example.com"] }, filters: [tcpProxy("a", options.passthrough)] },
      {
        name: "b",
        filter_chain_match: { server_names: ["b.example.com"] },
        transport_socket: {
          name: "envoy.transport_sockets.tls",
          typed_config: {
            "@type": `${TYPE}envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`,
            require_client_certificate: true,
            common_tls_context: {
              tls_certificate_sds_secret_configs: [sdsConfig("b-cert")],
              validation_context_sds_secret_config: sdsConfig("b-ca"),
            },
          },
        },
        filters: [httpConnectionManager(options.hcm)],
      },
    ],
  };
}

/** UDP :5353 through udp_proxy's matcher form. */
const udpListener: JsonObject = {
  name: "udp-5353",
  address: { socket_address: { protocol: "UDP", address: "0.0.0.0", port_value: 5353 } },
  listener_filters: [
    {
      name: "envoy.filters.udp_listener.udp_proxy",
      typed_config: {
        "@type": `${TYPE}envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig`,
        stat_prefix: "dns",
        matcher: {
          on_no_match: {
            action: { name: "route", typed_config: { "@type": `${TYPE}envoy.extensions.filters.udp.udp_proxy.v3.Route`, cluster: "dns" } },
          },
        },
      },
    },
  ],
};

/** STATIC over a WireGuard IP, HTTP health check on another port, PROXY v2 upstream. */
function cluster(extra: JsonObject = {}): JsonObject {
  return {
    name: "a",
    type: "STATIC",
    connect_timeout: "5s",
    load_assignment: {
      cluster_name: "a",
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: "10.77.0.2", port_value: 8443 } }, health_check_config: { port_value: 9090 } } },
          ],
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

const secret: JsonObject = {
  name: "b-cert",
  tls_certificate: { certificate_chain: { filename: "/etc/envoy/certs/b.crt" }, private_key: { filename: "/etc/envoy/certs/b.key" } },
};

const discovery = (kind: string, resources: JsonObject[]): JsonObject => ({
  version_info: "plan-3f2a9c",
  resources: resources.map((r) => ({ "@type": `${TYPE}${kind}`, ...r })),
});

const bootstrap: JsonObject = {
  node: { id: "edge-1", cluster: "ktube-edge" },
  admin: { address: { socket_address: { address: "127.0.0.1", port_value: 9901 } } },
  dynamic_resources: {
    lds_config: { path_config_source: { path: "/etc/envoy/lds.json", watched_directory: { path: "/etc/envoy" } }, resource_api_version: "V3" },
    cds_config: { path_config_source: { path: "/etc/envoy/cds.json", watched_directory: { path: "/etc/envoy" } }, resource_api_version: "V3" },
  },
};

async function validateOne(doc: EnvoyDocument): Promise<{ ok: boolean; errors: string[] }> {
  const [result] = await validateEnvoy([doc]);
  if (!result) throw new Error("no result");
  return result;
}

let buildMs = 0;

beforeAll(async () => {
  const started = Date.now();
  await ensureEnvoyValidator({ log: (line) => process.stderr.write(`${line}\n`) });
  buildMs = Date.now() - started;
}, 20 * 60_000); // a cold build (module download + compile) takes minutes

describe("the checker binary", () => {
  it("is built from the pinned go-control-plane and reused from the cache", async () => {
    const started = Date.now();
    const binary = await ensureEnvoyValidator();
    expect(Date.now() - started).toBeLessThan(1000);
    const versions = execFileSync(binary, ["--version"], { encoding: "utf8" });
    expect(versions).toContain(`github.com/envoyproxy/go-control-plane/envoy ${pinnedVersions().goControlPlane}`);
    process.stderr.write(`envoy-validate ready in ${buildMs} ms (build included if it was not cached)\n`);
  });

  it("--descriptor-set writes the linked .proto files, imports first (what @ktube/envoy-api generates from)", async () => {
    const set = execFileSync(await ensureEnvoyValidator(), ["--descriptor-set"], { maxBuffer: 64 * 1024 * 1024 });
    // A FileDescriptorSet is `repeated FileDescriptorProto file = 1`, each starting with its `name` (field 1):
    // find each file's name where it begins. (@ktube/envoy-api's tests parse it fully.)
    const position = (name: string): number => set.indexOf(Buffer.from(`\n${String.fromCharCode(name.length)}${name}`));
    for (const name of ["google/protobuf/any.proto", "validate/validate.proto", "envoy/config/core/v3/address.proto", "envoy/config/listener/v3/listener.proto"]) {
      expect({ name, found: position(name) >= 0 }).toEqual({ name, found: true });
    }
    expect(position("envoy/config/core/v3/address.proto")).toBeLessThan(position("envoy/config/listener/v3/listener.proto"));
    expect(position("google/protobuf/any.proto")).toBeLessThan(position("envoy/config/core/v3/address.proto"));
    expect(execFileSync(await ensureEnvoyValidator(), ["--descriptor-set"], { maxBuffer: 64 * 1024 * 1024 }).equals(set)).toBe(true); // stable
  });
});

describe("valid config", () => {
  it("passes: TCP proxy and TLS listener, cluster, SDS secret, bootstrap, UDP listener, in one batch", async () => {
    const results = await validateEnvoy([
      { kind: "listener", json: tlsListener() },
      { kind: "cluster", json: cluster() },
      { kind: "secret", json: secret },
      { kind: "sds", json: discovery("envoy.extensions.transport_sockets.tls.v3.Secret", [secret]) },
      { kind: "bootstrap", json: bootstrap },
      { kind: "listener", json: udpListener },
    ]);
    expect(results).toEqual(Array.from({ length: 6 }, () => ({ ok: true, errors: [] })));
  });

  it("passes: an LDS file (DiscoveryResponse with version_info and resources) and a CDS file", async () => {
    const results = await validateEnvoy([
      { kind: "lds", json: discovery("envoy.config.listener.v3.Listener", [tlsListener(), udpListener]) },
      { kind: "cds", json: discovery("envoy.config.cluster.v3.Cluster", [cluster(), cluster({ name: "b" }), cluster({ name: "dns" })]) },
    ]);
    expect(results).toEqual([
      { ok: true, errors: [] },
      { ok: true, errors: [] },
    ]);
  });
});

describe("invalid config", () => {
  it("an unknown field inside an SNI filter chain's HttpConnectionManager is named with its path", async () => {
    const result = await validateOne({ kind: "listener", json: tlsListener({ hcm: { stat_prefx: "b" } }) });
    expect(result).toEqual({ ok: false, errors: ['filter_chains[1].filters[0].typed_config.stat_prefx: unknown field "stat_prefx"'] });
  });

  it("an unknown field inside tcp_proxy in an LDS file is named with its path", async () => {
    const result = await validateOne({ kind: "lds", json: discovery("envoy.config.listener.v3.Listener", [tlsListener({ passthrough: { idle_timout: "1h" } })]) });
    expect(result.ok).toBe(false);
    expect(result.errors).toEqual(['resources[0].filter_chains[0].filters[0].typed_config.idle_timout: unknown field "idle_timout"']);
  });

  it("a PGV rule broken inside a typed_config fails (ValidateAll recurses into Any)", async () => {
    const result = await validateOne({ kind: "lds", json: discovery("envoy.config.listener.v3.Listener", [tlsListener({ passthrough: { stat_prefix: "" } })]) });
    expect(result).toEqual({ ok: false, errors: ["resources[0].filter_chains[0].filters[0].typed_config.stat_prefix: value length must be at least 1 runes"] });
  });

  it("a cluster with a negative connect_timeout and an empty name fails ValidateAll, every rule reported", async () => {
    const result = await validateOne({ kind: "cluster", json: cluster({ name: "", connect_timeout: "-1s" }) });
    expect(result.ok).toBe(false);
    expect(result.errors).toEqual(["name: value length must be at least 1 runes", "connect_timeout: value must be greater than 0s"]);
  });

  it("a rule on a nested message is reported with the proto path (health check without timeout, panic threshold > 100 %)", async () => {
    const result = await validateOne({
      kind: "cds",
      json: discovery("envoy.config.cluster.v3.Cluster", [
        cluster({ health_checks: [{ interval: "5s", unhealthy_threshold: 2, healthy_threshold: 1, http_health_check: { path: "/ready" } }] }),
        cluster({ common_lb_config: { healthy_panic_threshold: { value: 150 } } }),
      ]),
    });
    expect(result.ok).toBe(false);
    expect(result.errors).toEqual([
      "resources[0].health_checks[0].timeout: value is required",
      "resources[1].common_lb_config.healthy_panic_threshold.value: value must be inside range [0, 100]",
    ]);
  });

  it("an unknown @type fails, naming where", async () => {
    const listener = tlsListener();
    const result = await validateOne({
      kind: "listener",
      json: { ...listener, listener_filters: [{ name: "tls", typed_config: { "@type": `${TYPE}envoy.extensions.filters.listener.tls_inspector.v3.TLSInspector` } }] },
    });
    expect(result.ok).toBe(false);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatch(/^listener_filters\[0\]\.typed_config\.@type: unable to resolve .*TLSInspector/);
  });

  it("a bad enum, a duration without unit and an out-of-range port fail", async () => {
    const results = await validateEnvoy([
      { kind: "cluster", json: cluster({ lb_policy: "ROUND_ROBINN" }) },
      { kind: "cluster", json: cluster({ connect_timeout: 5 }) },
      { kind: "listener", json: { ...udpListener, address: { socket_address: { protocol: "UDP", address: "0.0.0.0", port_value: 70000 } } } },
    ]);
    expect(results.map((r) => r.ok)).toEqual([false, false, false]);
    expect(results[0]?.errors[0]).toMatch(/^lb_policy: invalid value for enum/);
    expect(results[1]?.errors).toEqual(["connect_timeout: syntax error: unexpected token 5"]);
    expect(results[2]?.errors).toEqual(["address.socket_address.port_value: value must be less than or equal to 65535"]);
  });

  it("a discovery file whose resources are of the wrong type fails", async () => {
    const result = await validateOne({ kind: "lds", json: discovery("envoy.config.cluster.v3.Cluster", [cluster()]) });
    expect(result.ok).toBe(false);
    expect(result.errors[0]).toMatch(/^resources\[0\]\.@type: .*Cluster.*, but a lds file holds .*Listener/);
  });

  it("an unknown kind or a document that is not {kind, json} is a failed result, the batch goes on", async () => {
    const results = await validateEnvoy([
      { kind: "route" as EnvoyDocument["kind"], json: {} },
      { kind: "cluster", json: cluster() },
    ]);
    expect(results[0]).toEqual({ ok: false, errors: [expect.stringMatching(/^unknown kind "route"/)] });
    expect(results[1]).toEqual({ ok: true, errors: [] });
  });
});
