// Envoy v3 configuration as typed protobuf-es messages.
//
// The messages themselves are generated into src/gen/ (one module per .proto file, imported
// as "@ktube/envoy-api/gen/envoy/config/listener/v3/listener_pb.ts") from the descriptor of
// the go-control-plane release that @ktube/envoy-validator links, so what KTube builds and
// what the checker accepts are one Envoy API version. This module adds what every user of
// those messages needs alike: a registry of the types KTube puts in a `google.protobuf.Any`
// (toJson/fromJson need it to write and read `@type`), and a typed way to pack one.
import {
  create,
  createRegistry,
  type DescMessage,
  type JsonReadOptions,
  type JsonWriteOptions,
  type MessageInitShape,
  type Registry,
} from "@bufbuild/protobuf";
import { anyPack, type Any } from "@bufbuild/protobuf/wkt";
import { ClusterSchema } from "./gen/envoy/config/cluster/v3/cluster_pb.ts";
import { ListenerSchema } from "./gen/envoy/config/listener/v3/listener_pb.ts";
import { RouterSchema } from "./gen/envoy/extensions/filters/http/router/v3/router_pb.ts";
import { TlsInspectorSchema } from "./gen/envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector_pb.ts";
import { HttpConnectionManagerSchema } from "./gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.ts";
import { TcpProxySchema } from "./gen/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy_pb.ts";
import { RouteSchema as UdpRouteSchema } from "./gen/envoy/extensions/filters/udp/udp_proxy/v3/route_pb.ts";
import { UdpProxyConfigSchema } from "./gen/envoy/extensions/filters/udp/udp_proxy/v3/udp_proxy_pb.ts";
import { ProxyProtocolUpstreamTransportSchema } from "./gen/envoy/extensions/transport_sockets/proxy_protocol/v3/upstream_proxy_protocol_pb.ts";
import { RawBufferSchema } from "./gen/envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer_pb.ts";
import { SecretSchema } from "./gen/envoy/extensions/transport_sockets/tls/v3/secret_pb.ts";
import { DownstreamTlsContextSchema, UpstreamTlsContextSchema } from "./gen/envoy/extensions/transport_sockets/tls/v3/tls_pb.ts";

/** The go-control-plane release src/gen was generated from (the checker's go.mod pins the same; a test keeps them equal). */
export const ENVOY_API_VERSION = "v1.40.0";

/**
 * Every message KTube packs into an `Any`: the resources of the discovery files and each
 * extension's `typed_config`. Adding an extension to the rendered config means adding it
 * here (and its .proto to scripts/codegen.ts, and its Go package to the checker).
 */
export const ANY_TYPES = [
  // xDS resources (DiscoveryResponse.resources)
  ListenerSchema,
  ClusterSchema,
  SecretSchema,
  // listener filters
  TlsInspectorSchema,
  UdpProxyConfigSchema,
  // network filters
  TcpProxySchema,
  HttpConnectionManagerSchema,
  // HTTP filters
  RouterSchema,
  // udp_proxy's matcher action
  UdpRouteSchema,
  // transport sockets
  DownstreamTlsContextSchema,
  UpstreamTlsContextSchema,
  ProxyProtocolUpstreamTransportSchema,
  RawBufferSchema,
] as const satisfies readonly DescMessage[];

/** A registry that resolves every `@type` KTube writes, for `toJson`/`fromJson` of Envoy config. */
export function createEnvoyRegistry(): Registry {
  return createRegistry(...ANY_TYPES);
}

/** Envoy's type URL of a message: `type.googleapis.com/<full name>`. */
export const typeUrlOf = (schema: DescMessage): string => `type.googleapis.com/${schema.typeName}`;

/** `create` + `anyPack` in one typed step: `packAny(TcpProxySchema, { statPrefix, clusterSpecifier })`. */
export function packAny<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): Any {
  return anyPack(schema, create(schema, init));
}

/**
 * The JSON options Envoy config is written with: proto field names (`stat_prefix`, as in
 * Envoy's docs and the checker's error paths) and the registry for `@type`.
 */
export function envoyJsonWriteOptions(registry: Registry = createEnvoyRegistry()): Partial<JsonWriteOptions> {
  return { registry, useProtoFieldName: true };
}

/** Strict reading (unknown fields are errors), resolving `@type` through the registry. */
export function envoyJsonReadOptions(registry: Registry = createEnvoyRegistry()): Partial<JsonReadOptions> {
  return { registry, ignoreUnknownFields: false };
}
