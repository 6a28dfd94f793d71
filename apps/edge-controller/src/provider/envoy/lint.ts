// The checks Envoy makes in C++, after its proto layer (which @ktube/envoy-validator runs)
// has accepted the config, and a few that KTube's own setup needs: names and addresses that
// must be unique, references that must resolve, IP literals, TLS that cannot work, ports
// the VPS needs for itself. It reads the rendered files back the way Envoy does (strict
// proto3 JSON), so it checks exactly the bytes that go to the VPS.
//
// Each issue names its rule, the file and the path into that file's JSON
// (`resources[1].filter_chains[0].filter_chain_match`), like the validator's errors.
import { isIP } from "node:net";
import { clone, fromJson, isMessage, toJson, type DescMessage, type Message, type MessageShape, type Registry } from "@bufbuild/protobuf";
import { anyUnpack, type Any } from "@bufbuild/protobuf/wkt";
import { createEnvoyRegistry, envoyJsonReadOptions, envoyJsonWriteOptions } from "@ktube/envoy-api";
import { ProviderError } from "@ktube/provider-kit";
import { BootstrapSchema, type Bootstrap } from "@ktube/envoy-api/gen/envoy/config/bootstrap/v3/bootstrap_pb.ts";
import { ClusterSchema, Cluster_DiscoveryType, type Cluster } from "@ktube/envoy-api/gen/envoy/config/cluster/v3/cluster_pb.ts";
import { SocketAddress_Protocol, type Address } from "@ktube/envoy-api/gen/envoy/config/core/v3/address_pb.ts";
import { FilterChainMatchSchema } from "@ktube/envoy-api/gen/envoy/config/listener/v3/listener_components_pb.ts";
import { ListenerSchema, type Listener } from "@ktube/envoy-api/gen/envoy/config/listener/v3/listener_pb.ts";
import type { RouteConfiguration } from "@ktube/envoy-api/gen/envoy/config/route/v3/route_pb.ts";
import { RouterSchema } from "@ktube/envoy-api/gen/envoy/extensions/filters/http/router/v3/router_pb.ts";
import { TlsInspectorSchema } from "@ktube/envoy-api/gen/envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector_pb.ts";
import { HttpConnectionManagerSchema } from "@ktube/envoy-api/gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.ts";
import { TcpProxySchema } from "@ktube/envoy-api/gen/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy_pb.ts";
import { RouteSchema as UdpRouteSchema } from "@ktube/envoy-api/gen/envoy/extensions/filters/udp/udp_proxy/v3/route_pb.ts";
import { UdpProxyConfigSchema } from "@ktube/envoy-api/gen/envoy/extensions/filters/udp/udp_proxy/v3/udp_proxy_pb.ts";
import { ProxyProtocolUpstreamTransportSchema } from "@ktube/envoy-api/gen/envoy/extensions/transport_sockets/proxy_protocol/v3/upstream_proxy_protocol_pb.ts";
import { RawBufferSchema } from "@ktube/envoy-api/gen/envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer_pb.ts";
import { SecretSchema, type SdsSecretConfig, type Secret } from "@ktube/envoy-api/gen/envoy/extensions/transport_sockets/tls/v3/secret_pb.ts";
import {
  DownstreamTlsContextSchema,
  UpstreamTlsContextSchema,
  type CommonTlsContext,
} from "@ktube/envoy-api/gen/envoy/extensions/transport_sockets/tls/v3/tls_pb.ts";
import { DiscoveryResponseSchema, type DiscoveryResponse } from "@ktube/envoy-api/gen/envoy/service/discovery/v3/discovery_pb.ts";
import type { Matcher } from "@ktube/envoy-api/gen/xds/type/matcher/v3/matcher_pb.ts";
import { ENVOY_BOOTSTRAP } from "../vps-files.ts";
import { ENVOY_CDS_FILE, ENVOY_LDS_FILE } from "./paths.ts";
import { ENVOY_SDS_DIR } from "./plan.ts";
import type { EnvoyConfigFile } from "./render.ts";

export const ENVOY_LINT_RULES = [
  /** A file is not Envoy config of its kind (bad JSON, unknown field or @type, wrong resource type). */
  "unreadable-file",
  "duplicate-listener-name",
  /** Two listeners bind the same (or an overlapping: 0.0.0.0) address, port and transport. */
  "duplicate-listener-address",
  /** Two listeners on different addresses share a port and transport: KTube gives each public port one listener. */
  "duplicate-listen-port",
  /** A listener on the SSH port (TCP), the WireGuard port (UDP) or Envoy's admin port (TCP). */
  "reserved-port",
  /** Two filter chains of one listener match the same connections (same SNI name, or both without one). */
  "duplicate-filter-chain-match",
  "duplicate-filter-chain-name",
  /** Two virtual hosts of one route configuration claim the same domain. */
  "duplicate-virtual-host-domain",
  "duplicate-cluster-name",
  /** tcp_proxy, udp_proxy or an HTTP route names a cluster that CDS does not have. */
  "unknown-cluster",
  /** An SDS reference whose file is missing or does not hold that one secret, of the right kind. */
  "missing-sds-secret",
  /** A socket address that must be an IP literal is not one. */
  "invalid-ip",
  /** A TLS server context requires client certificates but has nothing to verify them against. */
  "mtls-without-validation-context",
  /** A TLS server context without a certificate. */
  "tls-without-certificate",
  /** Two clusters send to the same uplink address and port, or to the uplinks' health-check port. */
  "duplicate-tunnel-port",
  /** An extension in a slot of another kind (a network filter as a listener filter, …), or the router not last. */
  "wrong-extension-slot",
] as const;

export type EnvoyLintRule = (typeof ENVOY_LINT_RULES)[number];

export interface EnvoyLintIssue {
  rule: EnvoyLintRule;
  /** The file on the VPS the path leads into. */
  file: string;
  /** A path into the file's JSON (proto field names), or "(root)". */
  path: string;
  message: string;
}

export interface EnvoyLintOptions {
  /** The VPS's WireGuard port (UDP), which no listener may take. */
  wireguardPort: number;
  /** The VPS's SSH port (TCP), which no listener may take. */
  sshPort: number;
}

/** Rendered Envoy config that failed the lint; its reason is the condition reason. */
export class EnvoyConfigLintError extends ProviderError {
  override name = "EnvoyConfigLintError";
  readonly issues: readonly EnvoyLintIssue[];

  constructor(issues: readonly EnvoyLintIssue[]) {
    const shown = issues.slice(0, 3).map(formatIssue).join("; ");
    super("EnvoyConfigInvalid", `the rendered Envoy config is invalid: ${shown}${issues.length > 3 ? ` (and ${issues.length - 3} more)` : ""}`);
    this.issues = issues;
  }
}

export const formatIssue = (issue: EnvoyLintIssue): string => `${issue.file}: ${issue.path}: ${issue.message} [${issue.rule}]`;

/** Throws EnvoyConfigLintError when the lint finds anything. */
export function assertEnvoyConfigValid(rendered: { files: readonly EnvoyConfigFile[] }, options: EnvoyLintOptions): void {
  const issues = lintEnvoyConfig(rendered, options);
  if (issues.length > 0) throw new EnvoyConfigLintError(issues);
}

const registry: Registry = createEnvoyRegistry();
const readOptions = envoyJsonReadOptions(registry);
const writeOptions = envoyJsonWriteOptions(registry);

interface Located<T> {
  value: T;
  path: string;
}

/** What the files hold, parsed. */
interface Model {
  bootstrap: Bootstrap | undefined;
  listeners: Located<Listener>[];
  clusters: Located<Cluster>[];
  /** SDS file path -> its secrets (undefined: present but unreadable). */
  sdsFiles: Map<string, Secret[] | undefined>;
}

type Report = (rule: EnvoyLintRule, file: string, path: string, message: string) => void;

const WILDCARDS = new Set(["0.0.0.0", "::"]);

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

function parseJson<Desc extends DescMessage>(schema: Desc, file: EnvoyConfigFile, report: Report): MessageShape<Desc> | undefined {
  try {
    return fromJson(schema, JSON.parse(file.content), readOptions);
  } catch (error) {
    report("unreadable-file", file.path, "(root)", `not a ${schema.typeName}: ${errorMessage(error)}`);
    return undefined;
  }
}

/** The resources of a discovery file that are `schema`; others are reported. */
function resourcesOf<Desc extends DescMessage>(schema: Desc, file: EnvoyConfigFile, response: DiscoveryResponse, report: Report): Located<MessageShape<Desc>>[] {
  const out: Located<MessageShape<Desc>>[] = [];
  response.resources.forEach((resource, index) => {
    const message = unpack(resource);
    if (message !== undefined && isMessage(message, schema)) out.push({ value: message, path: `resources[${index}]` });
    else report("unreadable-file", file.path, `resources[${index}]`, `${resource.typeUrl} in a file of ${schema.typeName}`);
  });
  return out;
}

function unpack(any: Any | undefined): Message | undefined {
  if (any === undefined) return undefined;
  try {
    return anyUnpack(any, registry);
  } catch {
    return undefined;
  }
}

function readModel(files: readonly EnvoyConfigFile[], report: Report): Model {
  const model: Model = { bootstrap: undefined, listeners: [], clusters: [], sdsFiles: new Map() };
  for (const file of files) {
    if (file.path === ENVOY_BOOTSTRAP) {
      model.bootstrap = parseJson(BootstrapSchema, file, report);
    } else if (file.path === ENVOY_LDS_FILE || file.path === ENVOY_CDS_FILE || file.path.startsWith(`${ENVOY_SDS_DIR}/`)) {
      const response = parseJson(DiscoveryResponseSchema, file, report);
      if (file.path === ENVOY_LDS_FILE) model.listeners = response ? resourcesOf(ListenerSchema, file, response, report) : [];
      else if (file.path === ENVOY_CDS_FILE) model.clusters = response ? resourcesOf(ClusterSchema, file, response, report) : [];
      else model.sdsFiles.set(file.path, response ? resourcesOf(SecretSchema, file, response, report).map((secret) => secret.value) : undefined);
    }
  }
  return model;
}

export function lintEnvoyConfig(rendered: { files: readonly EnvoyConfigFile[] }, options: EnvoyLintOptions): EnvoyLintIssue[] {
  const issues: EnvoyLintIssue[] = [];
  const report: Report = (rule, file, path, message) => issues.push({ rule, file, path, message });
  const model = readModel(rendered.files, report);
  checkBootstrap(model, report);
  checkListenerNames(model, report);
  checkListenerPorts(model, options, report);
  const clusterNames = checkClusters(model, report);
  for (const listener of model.listeners) checkListener(listener, model, clusterNames, report);
  return issues;
}

// --- addresses and ports -------------------------------------------------------------

function socketAddressOf(address: Address | undefined) {
  return address?.address.case === "socketAddress" ? address.address.value : undefined;
}

function checkIp(value: string, file: string, path: string, report: Report): void {
  if (isIP(value) === 0) report("invalid-ip", file, path, `"${value}" is not an IPv4 or IPv6 address`);
}

function checkBootstrap(model: Model, report: Report): void {
  const admin = socketAddressOf(model.bootstrap?.admin?.address);
  if (admin) checkIp(admin.address, ENVOY_BOOTSTRAP, "admin.address.socket_address.address", report);
}

function checkListenerNames(model: Model, report: Report): void {
  const seen = new Map<string, string>();
  for (const { value: listener, path } of model.listeners) {
    const first = seen.get(listener.name);
    if (first !== undefined) report("duplicate-listener-name", ENVOY_LDS_FILE, `${path}.name`, `listener name "${listener.name}" is also ${first}'s`);
    else seen.set(listener.name, path);
  }
}

function checkListenerPorts(model: Model, options: EnvoyLintOptions, report: Report): void {
  const adminPort = socketAddressOf(model.bootstrap?.admin?.address);
  const bound = new Map<string, Array<{ ip: string; path: string; name: string }>>();
  for (const { value: listener, path } of model.listeners) {
    const addresses = [
      { address: listener.address, at: `${path}.address` },
      ...listener.additionalAddresses.map((extra, i) => ({ address: extra.address, at: `${path}.additional_addresses[${i}].address` })),
    ];
    for (const { address, at } of addresses) {
      const socket = socketAddressOf(address);
      if (!socket) continue;
      const where = `${at}.socket_address`;
      checkIp(socket.address, ENVOY_LDS_FILE, `${where}.address`, report);
      if (socket.portSpecifier.case !== "portValue") continue;
      const port = socket.portSpecifier.value;
      const udp = socket.protocol === SocketAddress_Protocol.UDP;
      const transport = udp ? "UDP" : "TCP";
      if (!udp && port === options.sshPort) report("reserved-port", ENVOY_LDS_FILE, `${where}.port_value`, `${port}/TCP is the VPS's SSH port`);
      if (udp && port === options.wireguardPort) report("reserved-port", ENVOY_LDS_FILE, `${where}.port_value`, `${port}/UDP is the VPS's WireGuard port`);
      if (!udp && adminPort?.portSpecifier.case === "portValue" && port === adminPort.portSpecifier.value) {
        report("reserved-port", ENVOY_LDS_FILE, `${where}.port_value`, `${port}/TCP is Envoy's admin port`);
      }
      const key = `${transport}/${port}`;
      const others = bound.get(key) ?? [];
      for (const other of others) {
        const overlaps = other.ip === socket.address || WILDCARDS.has(other.ip) || WILDCARDS.has(socket.address);
        report(
          overlaps ? "duplicate-listener-address" : "duplicate-listen-port",
          ENVOY_LDS_FILE,
          where,
          overlaps
            ? `listener "${listener.name}" binds ${socket.address}:${port}/${transport}, which listener "${other.name}" (${other.path}) binds as ${other.ip}:${port}`
            : `port ${port}/${transport} is already listener "${other.name}"'s (${other.path}); each public port has one listener`,
        );
      }
      bound.set(key, [...others, { ip: socket.address, path, name: listener.name }]);
    }
  }
}

// --- clusters ------------------------------------------------------------------------

function checkClusters(model: Model, report: Report): Set<string> {
  const endpoints = model.clusters.flatMap(({ value: cluster, path }) =>
    (cluster.loadAssignment?.endpoints ?? []).flatMap((locality, l) =>
      locality.lbEndpoints.flatMap((lbEndpoint, e) =>
        lbEndpoint.hostIdentifier.case === "endpoint"
          ? [{ cluster, endpoint: lbEndpoint.hostIdentifier.value, at: `${path}.load_assignment.endpoints[${l}].lb_endpoints[${e}].endpoint` }]
          : [],
      ),
    ),
  );
  // `ip:port` of every uplink's health check.
  const healthChecked = new Set<string>();
  for (const { endpoint } of endpoints) {
    const socket = socketAddressOf(endpoint.address);
    if (socket && endpoint.healthCheckConfig?.portValue) healthChecked.add(`${socket.address}:${endpoint.healthCheckConfig.portValue}`);
  }

  const names = new Map<string, string>();
  for (const { value: cluster, path } of model.clusters) {
    const first = names.get(cluster.name);
    if (first !== undefined) report("duplicate-cluster-name", ENVOY_CDS_FILE, `${path}.name`, `cluster name "${cluster.name}" is also ${first}'s`);
    else names.set(cluster.name, path);
    if (cluster.transportSocket) checkUpstreamSocket(cluster.transportSocket.configType, `${path}.transport_socket`, model, report);
    cluster.transportSocketMatches.forEach((match, m) => {
      if (match.transportSocket) checkUpstreamSocket(match.transportSocket.configType, `${path}.transport_socket_matches[${m}].transport_socket`, model, report);
    });
  }

  const targets = new Map<string, string>();
  for (const { cluster, endpoint, at } of endpoints) {
    const socket = socketAddressOf(endpoint.address);
    if (!socket) continue;
    const literal = cluster.clusterDiscoveryType.case !== "type" || cluster.clusterDiscoveryType.value === Cluster_DiscoveryType.STATIC;
    if (literal) checkIp(socket.address, ENVOY_CDS_FILE, `${at}.address.socket_address.address`, report);
    if (socket.portSpecifier.case !== "portValue") continue;
    const target = `${socket.address}:${socket.portSpecifier.value}`;
    const where = `${at}.address.socket_address.port_value`;
    const owner = targets.get(target);
    if (owner !== undefined && owner !== cluster.name) {
      report("duplicate-tunnel-port", ENVOY_CDS_FILE, where, `cluster "${cluster.name}" sends to ${target}, as cluster "${owner}" does`);
    } else if (healthChecked.has(target)) {
      report("duplicate-tunnel-port", ENVOY_CDS_FILE, where, `cluster "${cluster.name}" sends to ${target}, the uplink's health-check port`);
    }
    targets.set(target, owner ?? cluster.name);
  }
  return new Set(names.keys());
}

// --- extensions in their slots -------------------------------------------------------

const SLOTS = {
  "TCP listener filter": [TlsInspectorSchema],
  "UDP listener filter": [UdpProxyConfigSchema],
  "network filter": [TcpProxySchema, HttpConnectionManagerSchema],
  "HTTP filter": [RouterSchema],
  "downstream transport socket": [DownstreamTlsContextSchema, RawBufferSchema],
  "upstream transport socket": [UpstreamTlsContextSchema, ProxyProtocolUpstreamTransportSchema, RawBufferSchema],
  "udp_proxy route action": [UdpRouteSchema],
} as const satisfies Record<string, readonly DescMessage[]>;

type Slot = keyof typeof SLOTS;

/** The `config_type` oneof of filters and transport sockets (config discovery is not checked here). */
type ConfigType = { case: "typedConfig"; value: Any } | { case: "configDiscovery"; value: unknown } | { case: undefined; value?: undefined };

/** The extension's config if it may sit in `slot`; reports it (and returns undefined) if not. */
function slotted(configType: ConfigType | Any | undefined, slot: Slot, file: string, path: string, report: Report): Message | undefined {
  const any = configType === undefined ? undefined : "typeUrl" in configType ? configType : configType.case === "typedConfig" ? configType.value : undefined;
  if (any === undefined) return undefined;
  const message = unpack(any);
  if (message === undefined) return undefined; // fromJson already resolved every @type: nothing to add
  const allowed: readonly DescMessage[] = SLOTS[slot];
  if (!allowed.some((schema) => schema.typeName === message.$typeName)) {
    report("wrong-extension-slot", file, path, `${message.$typeName} is not a ${slot} (one of ${allowed.map((schema) => schema.typeName).join(", ")})`);
    return undefined;
  }
  return message;
}

// --- listeners -----------------------------------------------------------------------

function checkCluster(name: string, clusters: Set<string>, path: string, report: Report): void {
  if (!clusters.has(name)) report("unknown-cluster", ENVOY_LDS_FILE, path, `cluster "${name}" is not in ${ENVOY_CDS_FILE}`);
}

const canonical = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );

/** The connections a chain matches, one key per SNI name (or one for none); chains sharing a key conflict. */
function matchKeys(listener: Listener, index: number): Array<{ key: string; sni: string | undefined }> {
  const match = listener.filterChains[index]?.filterChainMatch;
  if (!match) return [{ key: "{}|", sni: undefined }];
  const rest = clone(FilterChainMatchSchema, match);
  rest.serverNames = [];
  const base = canonical(toJson(FilterChainMatchSchema, rest, writeOptions));
  const names = match.serverNames;
  return names.length === 0 ? [{ key: `${base}|`, sni: undefined }] : names.map((name) => ({ key: `${base}|${name.toLowerCase()}`, sni: name }));
}

function checkListener({ value: listener, path }: Located<Listener>, model: Model, clusters: Set<string>, report: Report): void {
  const udp = socketAddressOf(listener.address)?.protocol === SocketAddress_Protocol.UDP;
  listener.listenerFilters.forEach((filter, k) => {
    const at = `${path}.listener_filters[${k}].typed_config`;
    const config = slotted(filter.configType, udp ? "UDP listener filter" : "TCP listener filter", ENVOY_LDS_FILE, at, report);
    if (config && isMessage(config, UdpProxyConfigSchema)) {
      if (config.routeSpecifier.case === "cluster") checkCluster(config.routeSpecifier.value, clusters, `${at}.cluster`, report);
      if (config.routeSpecifier.case === "matcher") checkUdpMatcher(config.routeSpecifier.value, `${at}.matcher`, clusters, report);
    }
  });

  const matched = new Map<string, { path: string; name: string }>();
  const names = new Map<string, string>();
  listener.filterChains.forEach((chain, c) => {
    const at = `${path}.filter_chains[${c}]`;
    const label = chain.name ? `filter chain "${chain.name}"` : `filter chain ${c}`;
    if (chain.name) {
      const first = names.get(chain.name);
      if (first !== undefined) report("duplicate-filter-chain-name", ENVOY_LDS_FILE, `${at}.name`, `${label} has the name of ${first} in listener "${listener.name}"`);
      else names.set(chain.name, at);
    }
    for (const { key, sni } of matchKeys(listener, c)) {
      const first = matched.get(key);
      if (first === undefined) {
        matched.set(key, { path: at, name: label });
        continue;
      }
      report(
        "duplicate-filter-chain-match",
        ENVOY_LDS_FILE,
        `${at}.filter_chain_match`,
        `${label} matches the same connections as ${first.name} (${first.path}) in listener "${listener.name}": ${sni === undefined ? "neither names a server (both are the port's default)" : `server name "${sni}"`}`,
      );
      break;
    }
    if (chain.transportSocket) {
      const socketAt = `${at}.transport_socket.typed_config`;
      const context = slotted(chain.transportSocket.configType, "downstream transport socket", ENVOY_LDS_FILE, socketAt, report);
      if (context && isMessage(context, DownstreamTlsContextSchema)) {
        const common = context.commonTlsContext;
        const hasCertificate =
          common !== undefined &&
          (common.tlsCertificates.length > 0 ||
            common.tlsCertificateSdsSecretConfigs.length > 0 ||
            common.tlsCertificateProviderInstance !== undefined ||
            common.tlsCertificateCertificateProvider !== undefined ||
            common.tlsCertificateCertificateProviderInstance !== undefined ||
            common.customTlsCertificateSelector !== undefined);
        if (!hasCertificate) report("tls-without-certificate", ENVOY_LDS_FILE, `${socketAt}.common_tls_context`, `${label} terminates TLS without a certificate`);
        if (context.requireClientCertificate && (common === undefined || common.validationContextType.case === undefined)) {
          report(
            "mtls-without-validation-context",
            ENVOY_LDS_FILE,
            `${socketAt}.require_client_certificate`,
            `${label} requires client certificates but has no validation context (CA) to verify them against`,
          );
        }
        if (common) checkTlsSecrets(common, ENVOY_LDS_FILE, `${socketAt}.common_tls_context`, model, report);
      }
    }
    chain.filters.forEach((filter, f) => {
      const filterAt = `${at}.filters[${f}].typed_config`;
      const config = slotted(filter.configType, "network filter", ENVOY_LDS_FILE, filterAt, report);
      if (config && isMessage(config, TcpProxySchema)) {
        const specifier = config.clusterSpecifier;
        if (specifier.case === "cluster") checkCluster(specifier.value, clusters, `${filterAt}.cluster`, report);
        if (specifier.case === "weightedClusters") {
          specifier.value.clusters.forEach((weighted, w) => checkCluster(weighted.name, clusters, `${filterAt}.weighted_clusters.clusters[${w}].name`, report));
        }
      }
      if (config && isMessage(config, HttpConnectionManagerSchema)) {
        if (config.routeSpecifier.case === "routeConfig") checkRouteConfig(config.routeSpecifier.value, `${filterAt}.route_config`, clusters, report);
        config.httpFilters.forEach((httpFilter, h) => slotted(httpFilter.configType, "HTTP filter", ENVOY_LDS_FILE, `${filterAt}.http_filters[${h}].typed_config`, report));
        const last = config.httpFilters.at(-1);
        const lastType = last?.configType.case === "typedConfig" ? last.configType.value.typeUrl : undefined;
        if (lastType !== `type.googleapis.com/${RouterSchema.typeName}`) {
          report("wrong-extension-slot", ENVOY_LDS_FILE, `${filterAt}.http_filters`, `the last HTTP filter must be the router (${RouterSchema.typeName})`);
        }
      }
    });
  });
}

function checkRouteConfig(config: RouteConfiguration, path: string, clusters: Set<string>, report: Report): void {
  const domains = new Map<string, string>();
  config.virtualHosts.forEach((host, v) => {
    const at = `${path}.virtual_hosts[${v}]`;
    host.domains.forEach((domain, d) => {
      const key = domain.toLowerCase();
      const first = domains.get(key);
      if (first !== undefined) {
        report("duplicate-virtual-host-domain", ENVOY_LDS_FILE, `${at}.domains[${d}]`, `domain "${domain}" is also virtual host ${first}'s in route configuration "${config.name}"`);
      } else domains.set(key, `"${host.name}"`);
    });
    host.routes.forEach((route, r) => {
      if (route.action.case !== "route") return;
      const specifier = route.action.value.clusterSpecifier;
      const routeAt = `${at}.routes[${r}].route`;
      if (specifier.case === "cluster") checkCluster(specifier.value, clusters, `${routeAt}.cluster`, report);
      if (specifier.case === "weightedClusters") {
        specifier.value.clusters.forEach((weighted, w) => checkCluster(weighted.name, clusters, `${routeAt}.weighted_clusters.clusters[${w}].name`, report));
      }
    });
  });
}

/** Every action of udp_proxy's matcher tree must be a Route to a known cluster. */
function checkUdpMatcher(matcher: Matcher, path: string, clusters: Set<string>, report: Report): void {
  const onMatch = (target: Matcher["onNoMatch"], at: string): void => {
    if (!target) return;
    if (target.onMatch.case === "matcher") checkUdpMatcher(target.onMatch.value, `${at}.matcher`, clusters, report);
    if (target.onMatch.case === "action") {
      const actionAt = `${at}.action.typed_config`;
      const route = slotted(target.onMatch.value.typedConfig, "udp_proxy route action", ENVOY_LDS_FILE, actionAt, report);
      if (route && isMessage(route, UdpRouteSchema)) checkCluster(route.cluster, clusters, `${actionAt}.cluster`, report);
    }
  };
  onMatch(matcher.onNoMatch, `${path}.on_no_match`);
  if (matcher.matcherType.case === "matcherList") {
    matcher.matcherType.value.matchers.forEach((field, m) => onMatch(field.onMatch, `${path}.matcher_list.matchers[${m}].on_match`));
  }
  if (matcher.matcherType.case === "matcherTree") {
    const tree = matcher.matcherType.value.treeType;
    if (tree.case === "exactMatchMap" || tree.case === "prefixMatchMap") {
      const field = tree.case === "exactMatchMap" ? "exact_match_map" : "prefix_match_map";
      for (const [key, value] of Object.entries(tree.value.map).sort(([a], [b]) => (a < b ? -1 : 1))) {
        onMatch(value, `${path}.matcher_tree.${field}.map[${JSON.stringify(key)}]`);
      }
    }
  }
}

// --- transport sockets and SDS -------------------------------------------------------

function checkUpstreamSocket(configType: ConfigType, path: string, model: Model, report: Report): void {
  const at = `${path}.typed_config`;
  const config = slotted(configType, "upstream transport socket", ENVOY_CDS_FILE, at, report);
  if (config && isMessage(config, ProxyProtocolUpstreamTransportSchema) && config.transportSocket) {
    checkUpstreamSocket(config.transportSocket.configType, `${at}.transport_socket`, model, report);
  }
  if (config && isMessage(config, UpstreamTlsContextSchema) && config.commonTlsContext) {
    checkTlsSecrets(config.commonTlsContext, ENVOY_CDS_FILE, `${at}.common_tls_context`, model, report);
  }
}

function checkTlsSecrets(common: CommonTlsContext, file: string, path: string, model: Model, report: Report): void {
  common.tlsCertificateSdsSecretConfigs.forEach((ref, i) => checkSdsSecret(ref, "tlsCertificate", file, `${path}.tls_certificate_sds_secret_configs[${i}]`, model, report));
  const validation = common.validationContextType;
  if (validation.case === "validationContextSdsSecretConfig") {
    checkSdsSecret(validation.value, "validationContext", file, `${path}.validation_context_sds_secret_config`, model, report);
  }
  if (validation.case === "combinedValidationContext" && validation.value.validationContextSdsSecretConfig) {
    checkSdsSecret(
      validation.value.validationContextSdsSecretConfig,
      "validationContext",
      file,
      `${path}.combined_validation_context.validation_context_sds_secret_config`,
      model,
      report,
    );
  }
}

const SECRET_KINDS = { tlsCertificate: "a TLS certificate", validationContext: "a validation context" } as const;

/** The secret `ref` names must be the one Secret in the file its sds_config reads, of the kind the reference needs. */
function checkSdsSecret(ref: SdsSecretConfig, kind: keyof typeof SECRET_KINDS, file: string, path: string, model: Model, report: Report): void {
  const missing = (message: string): void => report("missing-sds-secret", file, path, `SDS secret "${ref.name}": ${message}`);
  const source = ref.sdsConfig?.configSourceSpecifier;
  if (source === undefined || source.case === undefined) {
    if (!model.bootstrap?.staticResources?.secrets.some((secret) => secret.name === ref.name)) missing("no sds_config, and the bootstrap has no static secret of that name");
    return;
  }
  const sdsPath = source.case === "pathConfigSource" ? source.value.path : source.case === "path" ? source.value : undefined;
  if (sdsPath === undefined) return; // served over gRPC: nothing to check here
  if (!model.sdsFiles.has(sdsPath)) return missing(`its file ${sdsPath} is not rendered`);
  const secrets = model.sdsFiles.get(sdsPath);
  if (secrets === undefined) return; // unreadable, reported as such
  if (secrets.length !== 1) return missing(`${sdsPath} holds ${secrets.length} secrets; Envoy's file-based SDS takes exactly one`);
  const secret = secrets[0]!;
  if (secret.name !== ref.name) return missing(`${sdsPath} holds secret "${secret.name}" instead`);
  if (secret.type.case !== kind) missing(`${sdsPath} holds ${secret.type.case ? `a ${secret.type.case}` : "nothing"}, not ${SECRET_KINDS[kind]}`);
}
