// One listener resource turned into what fake-envoy serves, with the checks Envoy makes in
// C++ when it builds a listener (messages as Envoy words them):
//
// - an address, and an IP literal in it: `error adding listener named '<n>': address is necessary`,
//   `malformed IP address: <ip>`;
// - listener filters of the listener's kind (tls_inspector on TCP, udp_proxy on UDP), else
//   `Didn't find a registered implementation for '<name>' with type URL: '<type>'`;
// - filter chains: some chain (`no filter chains specified`), unique and non-overlapping
//   matches (filter-chain-index.ts), the terminal filter last
//   (`Error: terminal filter named <n> of type <t> must be the last filter in a network filter chain.`);
// - an inline route_config's clusters exist (`route: unknown cluster '<c>'`; inline routes
//   validate clusters by default);
// - TLS: certificates (`No TLS certificates found for server context`), static secrets that
//   exist (`Unknown static secret: <name>`), SDS subscriptions started for the rest.
//
// A listener whose chains match on server names or a transport protocol without a
// tls_inspector gets one, with Envoy's warning.
import type { JsonObject } from "@ktube/envoy-validator";
import { parseResource, resolveSocketAddress, resourceBody, resourceHash, ResourceError, type ResolvedSocketAddress } from "../config/resource.ts";
import {
  DOWNSTREAM_TLS_CONTEXT,
  HTTP_CONNECTION_MANAGER,
  listenerSpec,
  ROUTER,
  TCP_PROXY,
  TLS_INSPECTOR,
  UDP_PROXY,
  type DownstreamTlsContext,
  type FilterChain,
  type Listener,
  type SdsSecretConfig,
  type UdpProxyConfig,
} from "../config/subset.ts";
import { SOURCE, type EnvoyLogger } from "../log.ts";
import type { ActiveSecret, DynamicSecret, SecretManager, SecretUse } from "../secrets/secret-manager.ts";
import { buildFilterChainIndex, FilterChainError, type FilterChainIndex } from "./filter-chain-index.ts";

/** A secret a TLS context uses: fixed (static) or followed over SDS (its `current` may be unset when the file failed). */
export type SecretRef = { kind: "static"; name: string; secret: ActiveSecret } | { kind: "dynamic"; name: string; secret: DynamicSecret };

export interface DownstreamTls {
  context: DownstreamTlsContext;
  certificates: SecretRef[];
  validation: SecretRef | undefined;
  requireClientCertificate: boolean;
}

export interface ActiveFilterChain {
  name: string;
  config: FilterChain;
  /** Hash of the chain's config: an unchanged chain keeps its connections across listener updates. */
  hash: string;
  tls: DownstreamTls | undefined;
}

export interface ActiveListener {
  name: string;
  config: Listener;
  /** The resource as written, for /config_dump. */
  raw: JsonObject;
  hash: string;
  address: ResolvedSocketAddress;
  protocol: "TCP" | "UDP";
  /** TCP: tls_inspector configured or injected. */
  tlsInspector: boolean;
  /** TCP: the filter chains, in config order. */
  filterChains: ActiveFilterChain[];
  defaultFilterChain: ActiveFilterChain | undefined;
  /** TCP: positions in filterChains by match (-1: the default chain); see selectFilterChain. */
  filterChainIndex: FilterChainIndex<number> | undefined;
  /** UDP: the udp_proxy config. */
  udpProxy: UdpProxyConfig | undefined;
  /** SDS subscriptions this listener holds (released when it goes). */
  dynamicSecrets: DynamicSecret[];
  versionInfo: string;
  lastUpdated: Date;
  static: boolean;
}

export interface ListenerBuildContext {
  secrets: SecretManager;
  clusterExists: (name: string) => boolean;
  log: EnvoyLogger;
}

const LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener";

/** The factory names Envoy's errors print for the filter types fake-envoy knows. */
const FACTORY_NAME: Record<string, string> = {
  [TCP_PROXY]: "envoy.filters.network.tcp_proxy",
  [HTTP_CONNECTION_MANAGER]: "envoy.filters.network.http_connection_manager",
  [ROUTER]: "envoy.filters.http.router",
};

const chainHash = (chain: FilterChain): string => resourceHash(JSON.parse(JSON.stringify(chain)) as JsonObject);

function checkNetworkFilters(chain: FilterChain): void {
  const filters = chain.filters ?? [];
  if (filters.length === 0) throw new ResourceError(`filter chain '${chain.name ?? ""}' has no filters: an empty filter chain is not implemented by fake-envoy`, true);
  filters.forEach((filter, i) => {
    if (i < filters.length - 1) {
      throw new ResourceError(`Error: terminal filter named ${filter.name} of type ${FACTORY_NAME[filter.type] ?? filter.type} must be the last filter in a network filter chain.`);
    }
  });
}

function checkHttpConnectionManager(chain: FilterChain, clusterExists: (name: string) => boolean): void {
  for (const filter of chain.filters ?? []) {
    if (filter.type !== HTTP_CONNECTION_MANAGER) continue;
    const httpFilters = filter.config.http_filters ?? [];
    httpFilters.forEach((http, i) => {
      if (i < httpFilters.length - 1) {
        throw new ResourceError(`Error: terminal filter named ${http.name} of type ${FACTORY_NAME[http.type] ?? http.type} must be the last filter in a http filter chain.`);
      }
    });
    for (const host of filter.config.route_config?.virtual_hosts ?? []) {
      for (const route of host.routes ?? []) {
        const cluster = route.route?.cluster;
        if (cluster !== undefined && !clusterExists(cluster)) throw new ResourceError(`route: unknown cluster '${cluster}'`);
      }
    }
  }
}

export class ListenerBuilder {
  private readonly ctx: ListenerBuildContext;
  /** SDS subscriptions acquired while building; released if the build fails. */
  private readonly acquired: DynamicSecret[] = [];

  constructor(ctx: ListenerBuildContext) {
    this.ctx = ctx;
  }

  private async secretRef(config: SdsSecretConfig, use: SecretUse): Promise<SecretRef> {
    const name = config.name ?? "";
    if (config.sds_config === undefined) return { kind: "static", name, secret: this.ctx.secrets.findStatic(name, use) };
    const secret = await this.ctx.secrets.acquire(name, use, config.sds_config);
    this.acquired.push(secret);
    return { kind: "dynamic", name, secret };
  }

  private async downstreamTls(chain: FilterChain): Promise<DownstreamTls | undefined> {
    const socket = chain.transport_socket;
    if (!socket) return undefined;
    if (socket.type !== DOWNSTREAM_TLS_CONTEXT) throw new ResourceError(`${socket.type} as a downstream transport socket is not implemented by fake-envoy`, true);
    const context = socket.config;
    const common = context.common_tls_context ?? {};
    const certificateConfigs = common.tls_certificate_sds_secret_configs ?? [];
    if (certificateConfigs.length === 0) throw new ResourceError("No TLS certificates found for server context");
    const certificates: SecretRef[] = [];
    for (const config of certificateConfigs) certificates.push(await this.secretRef(config, "tls_certificate"));
    const validation = common.validation_context_sds_secret_config ? await this.secretRef(common.validation_context_sds_secret_config, "validation_context") : undefined;
    return { context, certificates, validation, requireClientCertificate: context.require_client_certificate ?? false };
  }

  private async filterChain(chain: FilterChain, fallbackName: string): Promise<ActiveFilterChain> {
    checkNetworkFilters(chain);
    checkHttpConnectionManager(chain, this.ctx.clusterExists);
    return { name: chain.name ?? fallbackName, config: chain, hash: chainHash(chain), tls: await this.downstreamTls(chain) };
  }

  /** Builds a listener; on failure releases what it acquired and throws ResourceError. */
  async build(resource: JsonObject, versionInfo: string, isStatic: boolean, protoErrors: readonly string[] = []): Promise<ActiveListener> {
    try {
      return await this.buildUnsafe(resource, versionInfo, isStatic, protoErrors);
    } catch (error) {
      for (const secret of this.acquired.splice(0)) this.ctx.secrets.release(secret);
      if (error instanceof FilterChainError) throw new ResourceError(error.message);
      throw error;
    }
  }

  private async buildUnsafe(resource: JsonObject, versionInfo: string, isStatic: boolean, protoErrors: readonly string[]): Promise<ActiveListener> {
    if (protoErrors.length > 0) throw new ResourceError(protoErrors.join("; "));
    const body = resourceBody(resource);
    const config = parseResource(listenerSpec, body);
    const name = config.name ?? "";
    if (!config.address) throw new ResourceError(`error adding listener named '${name}': address is necessary`);
    const address = resolveSocketAddress(config.address.socket_address);
    const protocol = address.protocol;
    const listenerFilters = config.listener_filters ?? [];
    const wrongKind = listenerFilters.find((filter) => filter.type !== (protocol === "UDP" ? UDP_PROXY : TLS_INSPECTOR));
    if (wrongKind) throw new ResourceError(`Didn't find a registered implementation for '${wrongKind.name}' with type URL: '${wrongKind.type}'`);

    const base = {
      name,
      config,
      raw: { "@type": LISTENER_TYPE, ...body },
      hash: resourceHash(body),
      address,
      protocol,
      versionInfo,
      lastUpdated: new Date(),
      static: isStatic,
    };

    if (protocol === "UDP") {
      if (config.filter_chains?.length || config.default_filter_chain) {
        throw new ResourceError("filter_chains: filter chains on a UDP listener are not implemented by fake-envoy (a UDP listener is served by its udp_proxy listener filter)", true);
      }
      const proxy = listenerFilters[0];
      if (listenerFilters.length !== 1 || proxy?.type !== UDP_PROXY) {
        throw new ResourceError("listener_filters: a UDP listener needs exactly one udp_proxy listener filter in fake-envoy", true);
      }
      return {
        ...base,
        tlsInspector: false,
        filterChains: [],
        defaultFilterChain: undefined,
        filterChainIndex: undefined,
        udpProxy: proxy.config,
        dynamicSecrets: this.acquired.splice(0),
      };
    }

    const chains = config.filter_chains ?? [];
    if (chains.length === 0 && !config.default_filter_chain) throw new ResourceError(`error adding listener '${address.text}': no filter chains specified`);
    // Matches are checked before any chain is built (and subscribes to secrets).
    const filterChainIndex = buildFilterChainIndex(address.text, chains, config.default_filter_chain, (_chain, i) => i, -1);
    const filterChains: ActiveFilterChain[] = [];
    for (const [i, chain] of chains.entries()) filterChains.push(await this.filterChain(chain, `chain ${i}`));
    const defaultFilterChain = config.default_filter_chain ? await this.filterChain(config.default_filter_chain, "default") : undefined;

    let tlsInspector = listenerFilters.some((filter) => filter.type === TLS_INSPECTOR);
    const needsInspector = chains.some((chain) => (chain.filter_chain_match?.server_names?.length ?? 0) > 0 || chain.filter_chain_match?.transport_protocol === "tls");
    if (needsInspector && !tlsInspector) {
      this.ctx.log.warn(
        "config",
        SOURCE.listenerManager,
        `adding listener '${address.text}': filter chain match rules require TLS Inspector listener filter, but it isn't configured, trying to inject it (this might fail if Envoy is compiled without it)`,
      );
      tlsInspector = true;
    }
    return { ...base, tlsInspector, filterChains, defaultFilterChain, filterChainIndex, udpProxy: undefined, dynamicSecrets: this.acquired.splice(0) };
  }
}

/** The chain a TCP connection with this SNI and detected transport protocol ("tls" or "raw_buffer") is served by. */
export function selectFilterChain(listener: ActiveListener, serverName: string, transportProtocol: string): ActiveFilterChain | undefined {
  const index = listener.filterChainIndex?.select(serverName, transportProtocol);
  if (index === undefined) return undefined;
  return index === -1 ? listener.defaultFilterChain : listener.filterChains[index];
}
