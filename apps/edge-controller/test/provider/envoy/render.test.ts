// renderEnvoyConfig over a table of route combinations: every rendered bootstrap, LDS, CDS
// and SDS file passes the Envoy proto validator (one batch for all) and the semantic lint,
// each combination has the shape Envoy needs, output is deterministic, and a route's chain
// and cluster stay byte-identical when other routes change.
import { beforeAll, describe, expect, it } from "@jest/globals";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { EnvoyLogger, validateConfiguration } from "@ktube/fake-envoy";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createTestCa } from "@ktube/testenv";
import { validateEnvoy, type EnvoyDocument, type EnvoyDocumentKind, type EnvoyValidationResult, type JsonObject, type JsonValue } from "@ktube/envoy-validator";
import { lintEnvoyConfig } from "../../../src/provider/envoy/lint.ts";
import { ENVOY_CDS_FILE, ENVOY_LDS_FILE } from "../../../src/provider/envoy/paths.ts";
import { ENVOY_CONFIG_DIR, type EdgePlan } from "../../../src/provider/envoy/plan.ts";
import { renderEnvoyConfig, type RenderedEnvoyConfig } from "../../../src/provider/envoy/render.ts";
import { ENVOY_BOOTSTRAP } from "../../../src/provider/vps-files.ts";
import {
  ADMIN_PORT,
  at,
  chain,
  cluster,
  fileJson,
  http,
  https,
  LINT_OPTIONS,
  list,
  listener,
  object,
  plan,
  secret,
  tcp,
  tls,
  udp,
  type Pem,
} from "./fixtures.ts";

const run = promisify(execFile);
const TYPE = "type.googleapis.com/envoy.";

let pem: Pem;
let other: Pem;

interface Case {
  name: string;
  plan: () => EdgePlan;
  /** What this combination must look like, beyond passing the validator and the lint. */
  check: (rendered: RenderedEnvoyConfig) => void;
}

const serverNamesOf = (rendered: RenderedEnvoyConfig, listenerName: string): JsonValue[] =>
  list(listener(rendered, listenerName), "filter_chains").map((c) => (object(c).filter_chain_match === undefined ? null : at(c, "filter_chain_match.server_names")));

const CASES: Case[] = [
  {
    name: "single TCP route",
    plan: () => plan([tcp("db", 5432, { tunnelPort: 20_100 })]),
    check: (r) => {
      const l = listener(r, "tcp-5432");
      expect(at(l, "address.socket_address")).toEqual({ address: "0.0.0.0", port_value: 5432 });
      expect(object(l).listener_filters).toBeUndefined();
      expect(list(l, "filter_chains")).toHaveLength(1);
      expect(object(l, "filter_chains[0]").filter_chain_match).toBeUndefined();
      expect(at(l, "filter_chains[0].filters[0].typed_config")).toEqual({
        "@type": `${TYPE}extensions.filters.network.tcp_proxy.v3.TcpProxy`,
        stat_prefix: "ns/binding/db",
        cluster: "ns/binding/db",
      });
      const c = cluster(r, "ns/binding/db");
      expect(c.type).toBe("STATIC");
      expect(c.connect_timeout).toBe("5s");
      expect(at(c, "load_assignment.endpoints[0].lb_endpoints[0].endpoint")).toEqual({
        address: { socket_address: { address: "10.77.0.2", port_value: 20_100 } },
        health_check_config: { port_value: 40_500 },
      });
      expect(at(c, "health_checks[0]")).toEqual({
        timeout: "2s",
        interval: "5s",
        unhealthy_threshold: 2,
        healthy_threshold: 2,
        http_health_check: { host: "ktube-uplink", path: "/ready" },
        no_traffic_interval: "5s",
      });
      expect(at(c, "common_lb_config.healthy_panic_threshold")).toEqual({}); // 0 %: panic routing off
      expect(c.transport_socket_matches).toBeUndefined();
    },
  },
  {
    name: "UDP with a session timeout",
    plan: () => plan([udp("dns", 53, { udpSessionTimeoutSeconds: 30 })]),
    check: (r) => {
      const l = listener(r, "udp-53");
      expect(at(l, "address.socket_address")).toEqual({ protocol: "UDP", address: "0.0.0.0", port_value: 53 });
      expect(object(l).filter_chains).toBeUndefined();
      const proxy = at(l, "listener_filters[0].typed_config");
      expect(at(proxy, "@type")).toBe(`${TYPE}extensions.filters.udp.udp_proxy.v3.UdpProxyConfig`);
      expect(at(proxy, "idle_timeout")).toBe("30s");
      expect(at(proxy, "matcher.on_no_match.action.typed_config")).toEqual({ "@type": `${TYPE}extensions.filters.udp.udp_proxy.v3.Route`, cluster: "ns/binding/dns" });
    },
  },
  {
    name: "UDP without a session timeout (Envoy's default)",
    plan: () => plan([udp("game", 27015)]),
    check: (r) => expect(object(at(listener(r, "udp-27015"), "listener_filters[0].typed_config")).idle_timeout).toBeUndefined(),
  },
  {
    name: "TLS passthrough, three SNI names on :443",
    plan: () => plan([tls("a", "a.example.com"), tls("b", "b.example.com"), tls("c", "c.example.com")]),
    check: (r) => {
      expect(at(listener(r, "tcp-443"), "listener_filters[0].name")).toBe("envoy.filters.listener.tls_inspector");
      expect(serverNamesOf(r, "tcp-443")).toEqual([["a.example.com"], ["b.example.com"], ["c.example.com"]]);
      for (const name of ["a", "b", "c"]) {
        const ch = chain(r, "tcp-443", `ns/binding/${name}`);
        expect(ch.transport_socket).toBeUndefined();
        expect(at(ch, "filters[0].typed_config.cluster")).toBe(`ns/binding/${name}`);
      }
    },
  },
  {
    name: "TLS passthrough with the port's default chain",
    plan: () => plan([tls("named", "named.example.com"), tls("fallback", undefined)]),
    check: (r) => expect(serverNamesOf(r, "tcp-443")).toEqual([null, ["named.example.com"]]), // chains sorted by name: ns/binding/fallback first
  },
  {
    name: "TLS offload",
    plan: () => plan([tls("mq", "mq.example.com", { tls: { mode: "offload", secret: "ns.mq" } })], { secrets: [secret("ns.mq", pem)] }),
    check: (r) => {
      const ch = chain(r, "tcp-443", "ns/binding/mq");
      const context = at(ch, "transport_socket.typed_config");
      expect(at(context, "@type")).toBe(`${TYPE}extensions.transport_sockets.tls.v3.DownstreamTlsContext`);
      expect(at(context, "common_tls_context.tls_certificate_sds_secret_configs")).toEqual([
        { name: "ns.mq", sds_config: { resource_api_version: "V3", path_config_source: { path: "/etc/ktube/envoy/sds/ns.mq.json", watched_directory: { path: "/etc/ktube/envoy/sds" } } } },
      ]);
      expect(object(context).require_client_certificate).toBeUndefined();
      expect(object(at(context, "common_tls_context")).alpn_protocols).toBeUndefined();
      expect(at(ch, "filters[0].name")).toBe("envoy.filters.network.tcp_proxy");
      const sds = fileJson(r, "sds/ns.mq.json");
      expect(at(sds, "resources[0].name")).toBe("ns.mq");
      expect(at(sds, "resources[0].tls_certificate.certificate_chain.inline_string")).toBe(pem.cert);
      expect(at(sds, "type_url")).toBe(`${TYPE}extensions.transport_sockets.tls.v3.Secret`);
    },
  },
  {
    name: "TLS mutual",
    plan: () => plan([tls("mq", "mq.example.com", { tls: { mode: "mutual", secret: "ns.mq" } })], { secrets: [secret("ns.mq", pem, true)] }),
    check: (r) => {
      const context = at(chain(r, "tcp-443", "ns/binding/mq"), "transport_socket.typed_config");
      expect(at(context, "require_client_certificate")).toBe(true);
      expect(at(context, "common_tls_context.validation_context_sds_secret_config.name")).toBe("ns.mq_ca");
      expect(at(context, "common_tls_context.validation_context_sds_secret_config.sds_config.path_config_source.path")).toBe("/etc/ktube/envoy/sds/ns.mq_ca.json");
      expect(at(fileJson(r, "sds/ns.mq_ca.json"), "resources[0]")).toEqual({
        "@type": `${TYPE}extensions.transport_sockets.tls.v3.Secret`,
        name: "ns.mq_ca",
        validation_context: { trusted_ca: { inline_string: pem.ca } },
      });
    },
  },
  {
    name: "HTTP: several hosts and paths, longest prefix first",
    plan: () =>
      plan([http("shop", "shop.example.com", "/"), http("api", "shop.example.com", "/api"), http("v2", "shop.example.com", "/api/v2"), http("blog", "blog.example.com", undefined)]),
    check: (r) => {
      const l = listener(r, "tcp-80");
      expect(object(l).listener_filters).toBeUndefined();
      expect(list(l, "filter_chains")).toHaveLength(1);
      const hcm = at(chain(r, "tcp-80", "http:80"), "filters[0].typed_config");
      expect(at(hcm, "use_remote_address")).toBe(true);
      expect(at(hcm, "strip_any_host_port")).toBe(true);
      expect(at(hcm, "http_filters[0].typed_config.@type")).toBe(`${TYPE}extensions.filters.http.router.v3.Router`);
      const hosts = list(hcm, "route_config.virtual_hosts");
      expect(hosts.map((h) => at(h, "domains"))).toEqual([["blog.example.com"], ["shop.example.com"]]);
      expect(list(hosts[1]!, "routes").map((route) => [at(route, "match.prefix"), at(route, "route.cluster")])).toEqual([
        ["/api/v2", "ns/binding/v2"],
        ["/api", "ns/binding/api"],
        ["/", "ns/binding/shop"],
      ]);
      expect(at(hosts[1]!, "routes[0].route.timeout")).toBe("0s");
    },
  },
  {
    name: "HTTP: routes without a hostname go to the * virtual host",
    plan: () => plan([http("any", undefined, "/"), http("named", "named.example.com", "/")]),
    check: (r) => {
      const hosts = list(at(chain(r, "tcp-80", "http:80"), "filters[0].typed_config.route_config.virtual_hosts"));
      expect(hosts.map((h) => at(h, "domains"))).toEqual([["*"], ["named.example.com"]]);
    },
  },
  {
    name: "HTTP on a non-standard port",
    plan: () => plan([http("alt", "alt.example.com", "/", { listenPort: 8080 })]),
    check: (r) => expect(at(chain(r, "tcp-8080", "http:8080"), "filters[0].typed_config.stat_prefix")).toBe("http_8080"),
  },
  {
    name: "HTTPS offload: TLS terminated per SNI, then HTTP with h2 offered",
    plan: () => plan([https("web", "web.example.com", "/", { tls: { mode: "offload", secret: "ns.web" } })], { secrets: [secret("ns.web", pem)] }),
    check: (r) => {
      const ch = chain(r, "tcp-443", "https:web.example.com");
      expect(at(ch, "filter_chain_match.server_names")).toEqual(["web.example.com"]);
      expect(at(ch, "transport_socket.typed_config.common_tls_context.alpn_protocols")).toEqual(["h2", "http/1.1"]);
      expect(at(ch, "filters[0].typed_config.route_config.virtual_hosts[0].domains")).toEqual(["web.example.com"]);
    },
  },
  {
    name: "HTTPS mutual",
    plan: () => plan([https("admin", "admin.example.com", "/", { tls: { mode: "mutual", secret: "ns.admin" } })], { secrets: [secret("ns.admin", pem, true)] }),
    check: (r) => {
      const context = at(chain(r, "tcp-443", "https:admin.example.com"), "transport_socket.typed_config");
      expect(at(context, "require_client_certificate")).toBe(true);
      expect(at(context, "common_tls_context.validation_context_sds_secret_config.name")).toBe("ns.admin_ca");
    },
  },
  {
    name: "HTTPS passthrough behaves as TLS passthrough",
    plan: () => plan([https("app", "app.example.com", undefined, { tls: { mode: "passthrough" } }), https("plain", "plain.example.com", undefined)]),
    check: (r) => {
      for (const name of ["app", "plain"]) {
        const ch = chain(r, "tcp-443", `ns/binding/${name}`);
        expect(ch.transport_socket).toBeUndefined();
        expect(at(ch, "filters[0].name")).toBe("envoy.filters.network.tcp_proxy");
      }
    },
  },
  {
    name: "HTTPS offload as the port's default chain, several paths",
    plan: () =>
      plan([https("root", undefined, "/", { tls: { mode: "offload", secret: "ns.wild" } }), https("static", undefined, "/static", { tls: { mode: "offload", secret: "ns.wild" } })], {
        secrets: [secret("ns.wild", pem)],
      }),
    check: (r) => {
      const ch = chain(r, "tcp-443", "https:*");
      expect(ch.filter_chain_match).toBeUndefined();
      const host = at(ch, "filters[0].typed_config.route_config.virtual_hosts[0]");
      expect(at(host, "domains")).toEqual(["*"]);
      expect(list(host, "routes").map((route) => at(route, "match.prefix"))).toEqual(["/static", "/"]);
    },
  },
  {
    name: "HTTPS offload on two hosts with their own secrets",
    plan: () =>
      plan(
        [
          https("a", "a.example.com", "/", { tls: { mode: "offload", secret: "ns.a" } }),
          https("a-api", "a.example.com", "/api", { tls: { mode: "offload", secret: "ns.a" } }),
          https("b", "b.example.com", "/", { tls: { mode: "offload", secret: "ns.b" } }),
        ],
        { secrets: [secret("ns.a", pem), secret("ns.b", other)] },
      ),
    check: (r) => {
      expect(at(chain(r, "tcp-443", "https:a.example.com"), "transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].name")).toBe("ns.a");
      expect(at(chain(r, "tcp-443", "https:b.example.com"), "transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].name")).toBe("ns.b");
      expect(list(at(chain(r, "tcp-443", "https:a.example.com"), "filters[0].typed_config.route_config.virtual_hosts[0].routes"))).toHaveLength(2);
      expect(r.files.filter((f) => f.path.includes("/sds/")).map((f) => f.path)).toEqual(["/etc/ktube/envoy/sds/ns.a.json", "/etc/ktube/envoy/sds/ns.b.json"]);
    },
  },
  {
    name: "TLS passthrough and HTTPS offload sharing :443",
    plan: () =>
      plan([tls("pass", "pass.example.com"), https("off", "off.example.com", "/", { tls: { mode: "offload", secret: "ns.off" } }), tls("default", undefined)], {
        secrets: [secret("ns.off", pem)],
      }),
    check: (r) => {
      expect(list(listener(r, "tcp-443"), "filter_chains").map((c) => at(c, "name"))).toEqual(["https:off.example.com", "ns/binding/default", "ns/binding/pass"]);
      expect(list(listener(r, "tcp-443"), "listener_filters")).toHaveLength(1);
    },
  },
  {
    name: "wildcard SNI name",
    plan: () => plan([tls("apps", "*.apps.example.com")]),
    check: (r) => expect(serverNamesOf(r, "tcp-443")).toEqual([["*.apps.example.com"]]),
  },
  {
    name: "PROXY protocol v1 on TCP; the health check gets no PROXY header",
    plan: () => plan([tcp("smtp", 25, { proxyProtocol: "v1" })]),
    check: (r) => {
      const c = cluster(r, "ns/binding/smtp");
      expect(at(c, "transport_socket_matches")).toEqual([
        {
          name: "proxy-protocol-v1",
          match: { proxy_protocol: true },
          transport_socket: {
            name: "envoy.transport_sockets.upstream_proxy_protocol",
            typed_config: {
              "@type": `${TYPE}extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport`,
              config: {}, // V1 is the default
              transport_socket: { name: "envoy.transport_sockets.raw_buffer", typed_config: { "@type": `${TYPE}extensions.transport_sockets.raw_buffer.v3.RawBuffer` } },
            },
          },
        },
      ]);
      expect(at(c, 'load_assignment.endpoints[0].lb_endpoints[0].metadata.filter_metadata["envoy.transport_socket_match"]')).toEqual({ proxy_protocol: true });
      expect(object(c).transport_socket).toBeUndefined(); // the default socket (raw_buffer) is the health check's
      expect(at(c, "health_checks[0].transport_socket_match_criteria")).toEqual({ proxy_protocol: false });
    },
  },
  {
    name: "PROXY protocol v2 on TLS passthrough",
    plan: () => plan([tls("mail", "mail.example.com", { proxyProtocol: "v2" })]),
    check: (r) => expect(at(cluster(r, "ns/binding/mail"), "transport_socket_matches[0].transport_socket.typed_config.config.version")).toBe("V2"),
  },
  {
    name: "two uplinks: one endpoint each, in address order",
    plan: () => plan([tcp("db", 5432)], { uplinks: ["10.77.0.3", "10.77.0.2"] }),
    check: (r) =>
      expect(list(cluster(r, "ns/binding/db"), "load_assignment.endpoints[0].lb_endpoints").map((e) => at(e, "endpoint.address.socket_address.address"))).toEqual([
        "10.77.0.2",
        "10.77.0.3",
      ]),
  },
  {
    name: "TCP and UDP on the same port number",
    plan: () => plan([tcp("dns-tcp", 53), udp("dns-udp", 53)]),
    check: (r) => expect(list(fileJson(r, "lds.json"), "resources").map((l) => at(l, "name"))).toEqual(["tcp-53", "udp-53"]),
  },
  {
    name: "mixed ports: TCP, UDP, HTTP, TLS and HTTPS on three uplinks",
    plan: () =>
      plan(
        [
          tcp("ssh", 2222, { proxyProtocol: "v2" }),
          tcp("pg", 5432),
          udp("wg-game", 7777, { udpSessionTimeoutSeconds: 120 }),
          http("web", "www.example.com", "/"),
          http("web-api", "www.example.com", "/api"),
          tls("pass", "pass.example.com", { proxyProtocol: "v1" }),
          tls("mtls", "mtls.example.com", { tls: { mode: "mutual", secret: "ns.m" } }),
          https("site", "www.example.com", "/", { tls: { mode: "offload", secret: "ns.site" } }),
          https("alt", "alt.example.com", "/", { listenPort: 8443, tls: { mode: "offload", secret: "ns.site" } }),
        ],
        { uplinks: ["10.77.0.2", "10.77.0.3", "10.77.0.4"], secrets: [secret("ns.m", other, true), secret("ns.site", pem)] },
      ),
    check: (r) => {
      expect(list(fileJson(r, "lds.json"), "resources").map((l) => at(l, "name"))).toEqual(["tcp-80", "tcp-443", "tcp-2222", "tcp-5432", "tcp-8443", "udp-7777"]);
      expect(list(fileJson(r, "cds.json"), "resources")).toHaveLength(9);
      expect(r.files.map((f) => f.path)).toEqual([
        ENVOY_BOOTSTRAP,
        ENVOY_CDS_FILE,
        ENVOY_LDS_FILE,
        "/etc/ktube/envoy/sds/ns.m.json",
        "/etc/ktube/envoy/sds/ns.m_ca.json",
        "/etc/ktube/envoy/sds/ns.site.json",
      ]);
    },
  },
  {
    name: "no routes: empty LDS and CDS",
    plan: () => plan([]),
    check: (r) => {
      expect(object(fileJson(r, "lds.json")).resources).toBeUndefined();
      expect(at(fileJson(r, "lds.json"), "type_url")).toBe(`${TYPE}config.listener.v3.Listener`);
      expect(at(fileJson(r, "cds.json"), "type_url")).toBe(`${TYPE}config.cluster.v3.Cluster`);
    },
  },
];

interface Rendered {
  testCase: Case;
  rendered: RenderedEnvoyConfig;
  documents: EnvoyDocument[];
  results: EnvoyValidationResult[];
}

function documentsOf(rendered: RenderedEnvoyConfig): EnvoyDocument[] {
  return rendered.files.map((file) => {
    const kind: EnvoyDocumentKind = file.path === ENVOY_BOOTSTRAP ? "bootstrap" : file.path === ENVOY_LDS_FILE ? "lds" : file.path === ENVOY_CDS_FILE ? "cds" : "sds";
    return { kind, json: JSON.parse(file.content) as JsonObject };
  });
}

let table: Rendered[] = [];

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "ktube-envoy-render-"));
  try {
    const ca = await createTestCa(dir);
    const leaf = await ca.issue("edge.example.com", { dnsNames: ["*.example.com"] });
    const otherCa = await createTestCa(dir, "other-ca");
    const otherLeaf = await otherCa.issue("other.example.com", { dnsNames: ["mtls.example.com"] });
    pem = { cert: leaf.cert, key: leaf.key, ca: ca.cert };
    other = { cert: otherLeaf.cert, key: otherLeaf.key, ca: otherCa.cert };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  table = CASES.map((testCase) => {
    const rendered = renderEnvoyConfig(testCase.plan());
    return { testCase, rendered, documents: documentsOf(rendered), results: [] };
  });
  // One run of the checker for every document of every case.
  const results = await validateEnvoy(table.flatMap((entry) => entry.documents));
  let next = 0;
  for (const entry of table) entry.results = results.slice(next, (next += entry.documents.length));
}, 600_000);

describe("renderEnvoyConfig", () => {
  it("covers at least 20 route combinations", () => expect(CASES.length).toBeGreaterThanOrEqual(20));

  describe.each(CASES.map((testCase, index) => [testCase.name, index] as const))("%s", (_name, index) => {
    const entry = (): Rendered => table[index]!;

    it("passes the Envoy proto validator (strict JSON + PGV)", () => {
      const failures = entry().documents.flatMap((doc, i) => (entry().results[i]?.ok ? [] : [`${doc.kind}: ${entry().results[i]?.errors.join("; ")}`]));
      expect(failures).toEqual([]);
      expect(entry().results).toHaveLength(entry().documents.length);
    });

    it("passes the semantic lint", () => {
      expect(lintEnvoyConfig(entry().rendered, LINT_OPTIONS)).toEqual([]);
    });

    it("has the expected shape", () => {
      entry().testCase.check(entry().rendered);
    });

    it("loads in fake-envoy, the test double that stands in for Envoy on the VPS (nothing it does not implement)", async () => {
      // The files as they would sit on the VPS, moved into a scratch directory (every path rewritten with them).
      const dir = mkdtempSync(join(tmpdir(), "ktube-envoy-fake-"));
      try {
        mkdirSync(join(dir, "sds"));
        for (const file of entry().rendered.files) {
          writeFileSync(join(dir, file.path.slice(ENVOY_CONFIG_DIR.length)), file.content.replaceAll(ENVOY_CONFIG_DIR, dir));
        }
        const result = await validateConfiguration(join(dir, ENVOY_BOOTSTRAP.slice(ENVOY_CONFIG_DIR.length)), new EnvoyLogger({ level: "off" }));
        expect(result).toEqual({ ok: true });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it("writes the bootstrap: node, admin on loopback only, LDS and CDS from watched files", () => {
    const bootstrap = fileJson(renderEnvoyConfig(plan([])), "bootstrap.json");
    expect(bootstrap).toEqual({
      node: { id: "platform/edge", cluster: "ktube-edge" },
      dynamic_resources: {
        lds_config: { resource_api_version: "V3", path_config_source: { path: "/etc/ktube/envoy/lds.json", watched_directory: { path: "/etc/ktube/envoy" } } },
        cds_config: { resource_api_version: "V3", path_config_source: { path: "/etc/ktube/envoy/cds.json", watched_directory: { path: "/etc/ktube/envoy" } } },
      },
      admin: { address: { socket_address: { address: "127.0.0.1", port_value: ADMIN_PORT } } },
    });
  });

  it("puts the plan's version in LDS and CDS, and each secret's own hash in its SDS file", () => {
    const entry = table.find((e) => e.testCase.name.startsWith("mixed ports"))!;
    const { rendered } = entry;
    expect(rendered.version).toMatch(/^[0-9a-f]{16}$/);
    expect(at(fileJson(rendered, "lds.json"), "version_info")).toBe(rendered.version);
    expect(at(fileJson(rendered, "cds.json"), "version_info")).toBe(rendered.version);
    expect(rendered.lds.versionInfo).toBe(rendered.version);
    const sdsVersions = rendered.files.filter((f) => f.path.includes("/sds/")).map((f) => at(JSON.parse(f.content) as JsonObject, "version_info"));
    expect(new Set(sdsVersions).size).toBe(sdsVersions.length);
    expect(sdsVersions).not.toContain(rendered.version);
    expect(rendered.sds).toHaveLength(3);
  });

  it("is deterministic: the same plan in any order renders the same bytes", () => {
    const entry = table.find((e) => e.testCase.name.startsWith("mixed ports"))!;
    const original = entry.testCase.plan();
    const shuffled: EdgePlan = { ...original, routes: [...original.routes].reverse(), secrets: [...original.secrets].reverse(), uplinks: [...original.uplinks].reverse() };
    const again = renderEnvoyConfig(original);
    expect(renderEnvoyConfig(shuffled)).toEqual(again);
    expect(again.files).toEqual(renderEnvoyConfig(original).files);
    // `@type` leads every object that has one.
    const typeNotFirst = (value: JsonValue): string[] =>
      Array.isArray(value)
        ? value.flatMap(typeNotFirst)
        : value !== null && typeof value === "object"
          ? [...("@type" in value && Object.keys(value)[0] !== "@type" ? [String(value["@type"])] : []), ...Object.values(value).flatMap(typeNotFirst)]
          : [];
    expect(again.files.flatMap((file) => typeNotFirst(JSON.parse(file.content) as JsonObject))).toEqual([]);
  });

  it("leaves unchanged routes' filter chains and clusters byte-identical when other routes change", () => {
    const keep = [
      tcp("db", 5432, { proxyProtocol: "v2" }),
      udp("dns", 53, { udpSessionTimeoutSeconds: 30 }),
      tls("pass", "pass.example.com"),
      https("shop", "shop.example.com", "/", { tls: { mode: "mutual", secret: "ns.shop" } }),
      https("shop-api", "shop.example.com", "/api", { tls: { mode: "mutual", secret: "ns.shop" } }),
      http("blog", "blog.example.com", "/", { listenPort: 8080 }),
    ];
    const changing = [tls("old", "old.example.com"), tcp("gone", 6000), http("www", "www.example.com", "/")];
    const before = renderEnvoyConfig(plan([...keep, ...changing], { secrets: [secret("ns.shop", pem, true)] }));
    const after = renderEnvoyConfig(
      plan(
        [
          ...keep,
          tls("old", "old.example.com", { proxyProtocol: "v1" }), // changed
          tls("new", "new.example.com"), // added on the same port
          https("more", "more.example.com", "/", { tls: { mode: "offload", secret: "ns.more" } }), // added on the same port
          http("www", "www.example.com", "/", { listenPort: 80 }),
          tcp("added", 7000), // added on another port; `gone` removed
        ],
        { secrets: [secret("ns.shop", pem, true), secret("ns.more", other)] },
      ),
    );
    expect(after.version).not.toBe(before.version);
    const same = (pick: (r: RenderedEnvoyConfig) => JsonValue): void => expect(JSON.stringify(pick(after))).toBe(JSON.stringify(pick(before)));
    same((r) => chain(r, "tcp-443", "ns/binding/pass"));
    same((r) => chain(r, "tcp-443", "https:shop.example.com"));
    same((r) => listener(r, "tcp-5432"));
    same((r) => listener(r, "udp-53"));
    same((r) => listener(r, "tcp-8080"));
    // tcp-443's listener-level settings (address, listener filters) are unchanged too: Envoy updates only its chains.
    same((r) => ({ ...listener(r, "tcp-443"), filter_chains: null }));
    for (const name of ["db", "dns", "pass", "shop", "shop-api", "blog"]) same((r) => cluster(r, `ns/binding/${name}`));
    same((r) => fileJson(r, "sds/ns.shop.json"));
    // What did change, did.
    expect(JSON.stringify(cluster(after, "ns/binding/old"))).not.toBe(JSON.stringify(cluster(before, "ns/binding/old")));
  });

  const envoyBin = process.env.ENVOY_BIN;
  (envoyBin ? it : it.skip)(
    envoyBin ? `envoy --mode validate (${envoyBin}) accepts every combination as a static bootstrap` : "envoy --mode validate accepts every combination (skipped: ENVOY_BIN is unset)",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "ktube-envoy-validate-"));
      try {
        for (const { testCase, rendered } of table) {
          const file = join(dir, "bootstrap.json");
          writeFileSync(file, JSON.stringify(staticBootstrap(rendered)));
          const result = await run(envoyBin!, ["--mode", "validate", "-c", file, "--log-level", "warn"]).then(
            () => "ok",
            (error: { stderr?: string; stdout?: string }) => `${error.stdout ?? ""}${error.stderr ?? ""}`,
          );
          expect({ case: testCase.name, result }).toEqual({ case: testCase.name, result: "ok" });
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    300_000,
  );
});

/**
 * The rendered config as one static bootstrap for `envoy --mode validate` (which does not
 * read dynamic resources): listeners, clusters and secrets inline, SDS references by name.
 */
function staticBootstrap(rendered: RenderedEnvoyConfig): JsonObject {
  const resources = (name: string): JsonValue[] => {
    const json = fileJson(rendered, name);
    return json.resources === undefined ? [] : list(json, "resources").map((resource) => stripType(object(resource)));
  };
  const secrets = rendered.files.filter((f) => f.path.includes("/sds/")).flatMap((f) => list(JSON.parse(f.content) as JsonObject, "resources").map((s) => stripType(object(s))));
  const { dynamic_resources: _dynamic, ...bootstrap } = fileJson(rendered, "bootstrap.json");
  return dropSdsConfig({ ...bootstrap, static_resources: { listeners: resources("lds.json"), clusters: resources("cds.json"), secrets } }) as JsonObject;
}

const stripType = ({ "@type": _type, ...rest }: JsonObject): JsonObject => rest;

function dropSdsConfig(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(dropSdsConfig);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).filter(([key]) => key !== "sds_config").map(([key, inner]) => [key, dropSdsConfig(inner)]));
}
