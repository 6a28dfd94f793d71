// The extensions KTube's Envoy config names, each with the name Envoy registers it under
// and a typed way to fill the `typed_config` it carries (a google.protobuf.Any).
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import type { Any } from "@bufbuild/protobuf/wkt";
import { packAny } from "@ktube/envoy-api";

export const EXTENSION = {
  tlsInspector: "envoy.filters.listener.tls_inspector",
  udpProxy: "envoy.filters.udp_listener.udp_proxy",
  tcpProxy: "envoy.filters.network.tcp_proxy",
  httpConnectionManager: "envoy.filters.network.http_connection_manager",
  router: "envoy.filters.http.router",
  tls: "envoy.transport_sockets.tls",
  upstreamProxyProtocol: "envoy.transport_sockets.upstream_proxy_protocol",
  rawBuffer: "envoy.transport_sockets.raw_buffer",
} as const;

/** The `config_type` oneof every filter and transport socket has: `typed_config` holding `init` as `schema`. */
export function typedConfig<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): { case: "typedConfig"; value: Any } {
  return { case: "typedConfig", value: packAny(schema, init) };
}

/** A Duration of whole (or fractional) seconds. */
export function seconds(value: number): { seconds: bigint; nanos: number } {
  const whole = Math.floor(value);
  return { seconds: BigInt(whole), nanos: Math.round((value - whole) * 1e9) };
}
