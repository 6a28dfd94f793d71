// lintEnvoyConfig: one seeded mistake per rule, each reported under that rule with a path
// that leads to the offending place in the file.
import { describe, expect, it } from "@jest/globals";
import type { JsonObject, JsonValue } from "@ktube/envoy-validator";
import { ProviderError } from "@ktube/provider-kit";
import {
  assertEnvoyConfigValid,
  EnvoyConfigLintError,
  ENVOY_LINT_RULES,
  lintEnvoyConfig,
  type EnvoyLintIssue,
  type EnvoyLintRule,
} from "../../../src/provider/envoy/lint.ts";
import { ENVOY_CDS_FILE, ENVOY_LDS_FILE } from "../../../src/provider/envoy/paths.ts";
import { renderEnvoyConfig, type RenderedEnvoyConfig } from "../../../src/provider/envoy/render.ts";
import { ENVOY_BOOTSTRAP } from "../../../src/provider/vps-files.ts";
import { ADMIN_PORT, at, fileJson, http, https, LINT_OPTIONS, list, object, plan, secret, SSH_PORT, tcp, tls, udp, WIREGUARD_PORT, withFile, type Pem } from "./fixtures.ts";

// The lint never reads certificate contents.
const PEM: Pem = { cert: "CERT", key: "KEY", ca: "CA" };

/** Everything at once: TCP, UDP, HTTP, TLS passthrough, HTTPS mutual, PROXY protocol. */
const full = (): RenderedEnvoyConfig =>
  renderEnvoyConfig(
    plan(
      [
        tcp("db", 5432, { proxyProtocol: "v2" }),
        udp("dns", 53),
        http("web", "www.example.com", "/"),
        tls("pass", "pass.example.com"),
        https("shop", "shop.example.com", "/", { tls: { mode: "mutual", secret: "ns.shop" } }),
      ],
      { secrets: [secret("ns.shop", PEM, true)] },
    ),
  );

const rulesOf = (issues: EnvoyLintIssue[]): EnvoyLintRule[] => [...new Set(issues.map((issue) => issue.rule))];

/** Edits a copy of one file's JSON. */
function edit(rendered: RenderedEnvoyConfig, name: string, change: (json: JsonObject) => void): RenderedEnvoyConfig {
  const json = structuredClone(fileJson(rendered, name));
  change(json);
  return withFile(rendered, name, json);
}

const lint = (rendered: RenderedEnvoyConfig): EnvoyLintIssue[] => lintEnvoyConfig(rendered, LINT_OPTIONS);

/** The one listener (or cluster) named `name` of a parsed discovery file, for editing. */
function resource(json: JsonObject, name: string): JsonObject {
  const found = list(json, "resources").find((r) => object(r).name === name);
  if (!found) throw new Error(`no resource ${name}`);
  return object(found);
}

describe("lintEnvoyConfig", () => {
  it("passes a full rendered config", () => expect(lint(full())).toEqual([]));

  it("has a seeded failure below for every rule", () => {
    expect(new Set(Object.keys(SEEDED))).toEqual(new Set(ENVOY_LINT_RULES));
  });

  const SEEDED: Record<EnvoyLintRule, () => void> = {
    "unreadable-file": () => {
      const rendered = edit(full(), "lds.json", (lds) => {
        object(at(resource(lds, "tcp-5432"), "filter_chains[0].filters[0].typed_config")).stat_prefx = "typo";
      });
      const issues = lint(rendered);
      expect(issues).toEqual([{ rule: "unreadable-file", file: ENVOY_LDS_FILE, path: "(root)", message: expect.stringContaining("stat_prefx") }]);
      // A file that is not JSON at all.
      const broken = { ...full(), files: full().files.map((f) => (f.path === ENVOY_CDS_FILE ? { ...f, content: "{" } : f)) };
      expect(rulesOf(lint(broken))).toContain("unreadable-file");
    },

    "duplicate-listener-name": () => {
      const rendered = edit(full(), "lds.json", (lds) => {
        const copy = structuredClone(resource(lds, "tcp-5432"));
        object(at(copy, "address.socket_address")).port_value = 5433;
        list(lds, "resources").push(copy);
      });
      expect(lint(rendered)).toEqual([{ rule: "duplicate-listener-name", file: ENVOY_LDS_FILE, path: "resources[4].name", message: 'listener name "tcp-5432" is also resources[2]\'s' }]);
    },

    "duplicate-listener-address": () => {
      const rendered = edit(full(), "lds.json", (lds) => {
        const copy = structuredClone(resource(lds, "tcp-5432"));
        copy.name = "tcp-5432-again";
        object(at(copy, "address.socket_address")).address = "203.0.113.7"; // overlaps 0.0.0.0
        list(lds, "resources").push(copy);
      });
      expect(lint(rendered)).toEqual([
        {
          rule: "duplicate-listener-address",
          file: ENVOY_LDS_FILE,
          path: "resources[4].address.socket_address",
          message: 'listener "tcp-5432-again" binds 203.0.113.7:5432/TCP, which listener "tcp-5432" (resources[2]) binds as 0.0.0.0:5432',
        },
      ]);
    },

    "duplicate-listen-port": () => {
      const rendered = edit(full(), "lds.json", (lds) => {
        object(at(resource(lds, "udp-53"), "address.socket_address")).address = "192.0.2.1";
        const copy = structuredClone(resource(lds, "udp-53"));
        copy.name = "udp-53-b";
        object(at(copy, "address.socket_address")).address = "192.0.2.2";
        list(lds, "resources").push(copy);
      });
      expect(lint(rendered)).toEqual([
        {
          rule: "duplicate-listen-port",
          file: ENVOY_LDS_FILE,
          path: "resources[4].address.socket_address",
          message: "port 53/UDP is already listener \"udp-53\"'s (resources[3]); each public port has one listener",
        },
      ]);
    },

    "reserved-port": () => {
      const rendered = renderEnvoyConfig(plan([tcp("ssh", SSH_PORT), udp("wg", WIREGUARD_PORT), tcp("admin", ADMIN_PORT), udp("not-ssh", SSH_PORT)]));
      const issues = lint(rendered);
      expect(issues.map((issue) => [issue.rule, issue.message])).toEqual([
        ["reserved-port", "22/TCP is the VPS's SSH port"],
        ["reserved-port", "9901/TCP is Envoy's admin port"],
        ["reserved-port", "51820/UDP is the VPS's WireGuard port"],
      ]);
      expect(at(fileJson(rendered, "lds.json"), issues[0]!.path)).toBe(SSH_PORT);
    },

    "duplicate-filter-chain-match": () => {
      // Two passthrough routes claim one SNI name; two TCP routes share a port (two default chains).
      const rendered = renderEnvoyConfig(
        plan([tls("a", "same.example.com"), tls("b", "other.example.com"), https("c", "SAME.example.com", undefined), tcp("x", 6000), tcp("y", 6000)]),
      );
      const issues = lint(rendered);
      expect(issues.map((issue) => [issue.rule, issue.path, issue.message])).toEqual([
        [
          "duplicate-filter-chain-match",
          "resources[0].filter_chains[2].filter_chain_match",
          'filter chain "ns/binding/c" matches the same connections as filter chain "ns/binding/a" (resources[0].filter_chains[0]) in listener "tcp-443": server name "SAME.example.com"',
        ],
        [
          "duplicate-filter-chain-match",
          "resources[1].filter_chains[1].filter_chain_match",
          'filter chain "ns/binding/y" matches the same connections as filter chain "ns/binding/x" (resources[1].filter_chains[0]) in listener "tcp-6000": neither names a server (both are the port\'s default)',
        ],
      ]);
    },

    "duplicate-filter-chain-name": () => {
      const rendered = edit(full(), "lds.json", (lds) => {
        object(at(resource(lds, "tcp-443"), "filter_chains[1]")).name = "https:shop.example.com";
      });
      expect(lint(rendered)).toEqual([
        expect.objectContaining({ rule: "duplicate-filter-chain-name", path: "resources[1].filter_chains[1].name", message: expect.stringContaining("resources[1].filter_chains[0]") }),
      ]);
    },

    "duplicate-virtual-host-domain": () => {
      // Hostnames differing in case only: two virtual hosts, one domain for Envoy.
      const rendered = renderEnvoyConfig(plan([http("a", "www.example.com", "/"), http("b", "WWW.example.com", "/b")]));
      expect(lint(rendered)).toEqual([
        {
          rule: "duplicate-virtual-host-domain",
          file: ENVOY_LDS_FILE,
          path: "resources[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[1].domains[0]",
          message: 'domain "www.example.com" is also virtual host "WWW.example.com"\'s in route configuration "http:80"',
        },
      ]);
    },

    "duplicate-cluster-name": () => {
      const rendered = edit(full(), "cds.json", (cds) => {
        const copy = structuredClone(resource(cds, "ns/binding/dns"));
        object(at(copy, "load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address")).port_value = 29_999;
        list(cds, "resources").push(copy);
      });
      expect(lint(rendered)).toEqual([
        { rule: "duplicate-cluster-name", file: ENVOY_CDS_FILE, path: "resources[5].name", message: 'cluster name "ns/binding/dns" is also resources[1]\'s' },
      ]);
    },

    "unknown-cluster": () => {
      const rendered = edit(full(), "cds.json", (cds) => {
        delete cds.resources;
      });
      const issues = lint(rendered);
      expect(rulesOf(issues)).toEqual(["unknown-cluster"]);
      const lds = fileJson(rendered, "lds.json");
      // tcp_proxy, HCM routes and udp_proxy's matcher, each found at its path.
      expect(issues.map((issue) => [issue.path.replace(/^resources\[\d+\]\./, ""), at(lds, issue.path)])).toEqual([
        ["filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.cluster", "ns/binding/web"],
        ["filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.cluster", "ns/binding/shop"],
        ["filter_chains[1].filters[0].typed_config.cluster", "ns/binding/pass"],
        ["filter_chains[0].filters[0].typed_config.cluster", "ns/binding/db"],
        ["listener_filters[0].typed_config.matcher.on_no_match.action.typed_config.cluster", "ns/binding/dns"],
      ]);
      expect(issues[0]!.message).toBe(`cluster "ns/binding/web" is not in ${ENVOY_CDS_FILE}`);
    },

    "missing-sds-secret": () => {
      // A route whose secret the plan lacks; a mutual route whose secret has no CA.
      const rendered = renderEnvoyConfig(
        plan(
          [
            https("a", "a.example.com", "/", { tls: { mode: "offload", secret: "ns.absent" } }),
            tls("b", "b.example.com", { tls: { mode: "mutual", secret: "ns.noca" } }),
          ],
          { secrets: [secret("ns.noca", PEM, false)] },
        ),
      );
      expect(lint(rendered).map((issue) => [issue.rule, issue.path.replace(/^.*\.common_tls_context\./, ""), issue.message])).toEqual([
        ["missing-sds-secret", "tls_certificate_sds_secret_configs[0]", 'SDS secret "ns.absent": its file /etc/ktube/envoy/sds/ns.absent.json is not rendered'],
        ["missing-sds-secret", "validation_context_sds_secret_config", 'SDS secret "ns.noca_ca": its file /etc/ktube/envoy/sds/ns.noca_ca.json is not rendered'],
      ]);
      // A file holding another secret, and one holding a certificate where a CA is wanted.
      const swapped = edit(edit(full(), "sds/ns.shop.json", (sds) => void (object(at(sds, "resources[0]")).name = "ns.other")), "sds/ns.shop_ca.json", (sds) => {
        const entry = object(at(sds, "resources[0]"));
        delete entry.validation_context;
        entry.tls_certificate = { certificate_chain: { inline_string: "CERT" }, private_key: { inline_string: "KEY" } };
      });
      expect(lint(swapped).map((issue) => issue.message)).toEqual([
        'SDS secret "ns.shop": /etc/ktube/envoy/sds/ns.shop.json holds secret "ns.other" instead',
        'SDS secret "ns.shop_ca": /etc/ktube/envoy/sds/ns.shop_ca.json holds a tlsCertificate, not a validation context',
      ]);
      // Two secrets in one file: Envoy's file-based SDS takes exactly one.
      const doubled = edit(full(), "sds/ns.shop.json", (sds) => void list(sds, "resources").push(structuredClone(at(sds, "resources[0]"))));
      expect(lint(doubled).map((issue) => issue.message)).toEqual([
        "SDS secret \"ns.shop\": /etc/ktube/envoy/sds/ns.shop.json holds 2 secrets; Envoy's file-based SDS takes exactly one",
      ]);
    },

    "invalid-ip": () => {
      const rendered = renderEnvoyConfig(plan([tcp("db", 5432)], { uplinks: ["10.77.0.300"] }));
      expect(lint(rendered)).toEqual([
        {
          rule: "invalid-ip",
          file: ENVOY_CDS_FILE,
          path: "resources[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address",
          message: '"10.77.0.300" is not an IPv4 or IPv6 address',
        },
      ]);
      const listenerIp = edit(full(), "lds.json", (lds) => void (object(at(resource(lds, "udp-53"), "address.socket_address")).address = "0.0.0"));
      expect(lint(listenerIp)).toEqual([
        { rule: "invalid-ip", file: ENVOY_LDS_FILE, path: "resources[3].address.socket_address.address", message: '"0.0.0" is not an IPv4 or IPv6 address' },
      ]);
      const admin = edit(full(), "bootstrap.json", (bootstrap) => void (object(at(bootstrap, "admin.address.socket_address")).address = "localhost"));
      expect(lint(admin)).toEqual([{ rule: "invalid-ip", file: ENVOY_BOOTSTRAP, path: "admin.address.socket_address.address", message: '"localhost" is not an IPv4 or IPv6 address' }]);
    },

    "mtls-without-validation-context": () => {
      const rendered = edit(full(), "lds.json", (lds) => {
        delete object(at(resource(lds, "tcp-443"), "filter_chains[0].transport_socket.typed_config.common_tls_context")).validation_context_sds_secret_config;
      });
      expect(lint(rendered)).toEqual([
        {
          rule: "mtls-without-validation-context",
          file: ENVOY_LDS_FILE,
          path: "resources[1].filter_chains[0].transport_socket.typed_config.require_client_certificate",
          message: 'filter chain "https:shop.example.com" requires client certificates but has no validation context (CA) to verify them against',
        },
      ]);
    },

    "tls-without-certificate": () => {
      const rendered = renderEnvoyConfig(plan([https("a", "a.example.com", "/", { tls: { mode: "offload" } })]));
      expect(lint(rendered)).toEqual([
        {
          rule: "tls-without-certificate",
          file: ENVOY_LDS_FILE,
          path: "resources[0].filter_chains[0].transport_socket.typed_config.common_tls_context",
          message: 'filter chain "https:a.example.com" terminates TLS without a certificate',
        },
      ]);
    },

    "duplicate-tunnel-port": () => {
      const rendered = renderEnvoyConfig(plan([tcp("a", 5000, { tunnelPort: 25_000 }), tcp("b", 5001, { tunnelPort: 25_000 }), tcp("c", 5002, { tunnelPort: 40_500 })]));
      expect(lint(rendered).map((issue) => [issue.rule, issue.path, issue.message])).toEqual([
        [
          "duplicate-tunnel-port",
          "resources[1].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value",
          'cluster "ns/binding/b" sends to 10.77.0.2:25000, as cluster "ns/binding/a" does',
        ],
        [
          "duplicate-tunnel-port",
          "resources[2].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value",
          "cluster \"ns/binding/c\" sends to 10.77.0.2:40500, the uplink's health-check port",
        ],
      ]);
    },

    "wrong-extension-slot": () => {
      // tcp_proxy's config as a listener filter (M17), and an HCM without the router.
      const rendered = edit(full(), "lds.json", (lds) => {
        const passthrough = resource(lds, "tcp-443");
        list(passthrough, "listener_filters").push(structuredClone(object(at(passthrough, "filter_chains[1].filters[0]"))));
        object(at(resource(lds, "tcp-80"), "filter_chains[0].filters[0].typed_config")).http_filters = [];
      });
      expect(lint(rendered).map((issue) => [issue.rule, issue.path, issue.message])).toEqual([
        ["wrong-extension-slot", "resources[0].filter_chains[0].filters[0].typed_config.http_filters", "the last HTTP filter must be the router (envoy.extensions.filters.http.router.v3.Router)"],
        [
          "wrong-extension-slot",
          "resources[1].listener_filters[1].typed_config",
          "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy is not a TCP listener filter (one of envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector)",
        ],
      ]);
      // A downstream TLS context where a cluster's upstream socket belongs.
      const upstream = edit(full(), "cds.json", (cds) => {
        const socket = object(at(resource(cds, "ns/binding/db"), "transport_socket_matches[0].transport_socket.typed_config"));
        object(socket.transport_socket as JsonValue).typed_config = { "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext" };
      });
      expect(lint(upstream)).toEqual([
        expect.objectContaining({
          rule: "wrong-extension-slot",
          file: ENVOY_CDS_FILE,
          path: "resources[0].transport_socket_matches[0].transport_socket.typed_config.transport_socket.typed_config",
        }),
      ]);
    },
  };

  it.each(Object.keys(SEEDED) as EnvoyLintRule[])("reports %s", (rule) => SEEDED[rule]());

  it("assertEnvoyConfigValid throws a ProviderError with reason EnvoyConfigInvalid naming the issues", () => {
    expect(() => assertEnvoyConfigValid(full(), LINT_OPTIONS)).not.toThrow();
    const rendered = renderEnvoyConfig(plan([tcp("ssh", SSH_PORT)], { uplinks: ["10.77.0.300"] }));
    let thrown: unknown;
    try {
      assertEnvoyConfigValid(rendered, LINT_OPTIONS);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(EnvoyConfigLintError);
    expect(thrown).toBeInstanceOf(ProviderError);
    const error = thrown as EnvoyConfigLintError;
    expect(error.reason).toBe("EnvoyConfigInvalid");
    expect(error.issues.map((issue) => issue.rule)).toEqual(["reserved-port", "invalid-ip"]);
    expect(error.message).toContain("22/TCP is the VPS's SSH port [reserved-port]");
  });
});
