// Renders an EdgePlan into the files Envoy reads on the VPS: the bootstrap and the
// file-based discovery responses for listeners (LDS), clusters (CDS) and each TLS secret
// (SDS). Every resource is a typed protobuf-es message from @ktube/envoy-api, written with
// toJson (JSON, never YAML), so the output is deterministic: fields in the proto's order,
// resources sorted by name, the same plan always the same bytes.
//
// `version` (the `version_info` of both LDS and CDS) is a hash of the listeners and clusters
// rendered, which Envoy reports back as `version_text` once it runs them. Each SDS file gets
// the hash of its own secret, so a renewed certificate changes that file only.
import { createHash } from "node:crypto";
import { create, toJson, type DescMessage, type JsonObject, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { createEnvoyRegistry, envoyJsonWriteOptions, typeUrlOf } from "@ktube/envoy-api";
import { BootstrapSchema, type Bootstrap } from "@ktube/envoy-api/gen/envoy/config/bootstrap/v3/bootstrap_pb.ts";
import { ClusterSchema } from "@ktube/envoy-api/gen/envoy/config/cluster/v3/cluster_pb.ts";
import { ListenerSchema } from "@ktube/envoy-api/gen/envoy/config/listener/v3/listener_pb.ts";
import { SecretSchema } from "@ktube/envoy-api/gen/envoy/extensions/transport_sockets/tls/v3/secret_pb.ts";
import { DiscoveryResponseSchema, type DiscoveryResponse } from "@ktube/envoy-api/gen/envoy/service/discovery/v3/discovery_pb.ts";
import { ENVOY_BOOTSTRAP } from "../vps-files.ts";
import { renderBootstrap } from "./bootstrap.ts";
import { renderClusters } from "./clusters.ts";
import { renderListeners } from "./listeners.ts";
import { ENVOY_CDS_FILE, ENVOY_LDS_FILE } from "./paths.ts";
import type { EdgePlan } from "./plan.ts";
import { renderSecrets } from "./secrets.ts";

export interface EnvoyConfigFile {
  /** Absolute path on the VPS. */
  path: string;
  content: string;
}

export interface RenderedEnvoyConfig {
  /** The `version_info` of lds.json and cds.json. */
  version: string;
  /** Every file, sorted by path: bootstrap.json, cds.json, lds.json, sds/<name>.json. */
  files: EnvoyConfigFile[];
  bootstrap: Bootstrap;
  lds: DiscoveryResponse;
  cds: DiscoveryResponse;
  /** In the order of their files. */
  sds: DiscoveryResponse[];
}

const registry = createEnvoyRegistry();
const writeOptions = envoyJsonWriteOptions(registry);

/** `@type` first in every object, as Envoy's docs write it (toJson puts it last); other keys keep the proto's field order. */
function typeFirst(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(typeFirst);
  if (value === null || typeof value !== "object") return value;
  const out: JsonObject = {};
  if ("@type" in value) out["@type"] = value["@type"]!;
  for (const [key, inner] of Object.entries(value)) if (key !== "@type") out[key] = typeFirst(inner);
  return out;
}

/** A message as the JSON Envoy reads: proto field names, `@type` first, two-space indent, final newline. */
export function envoyJson<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): string {
  return `${JSON.stringify(typeFirst(toJson(schema, message, writeOptions)), null, 2)}\n`;
}

const hash = (text: string): string => createHash("sha256").update(text).digest("hex").slice(0, 16);

function discoveryResponse<Desc extends DescMessage>(schema: Desc, versionInfo: string, resources: readonly MessageShape<Desc>[]): DiscoveryResponse {
  return create(DiscoveryResponseSchema, {
    versionInfo,
    resources: resources.map((resource) => anyPack(schema, resource)),
    typeUrl: typeUrlOf(schema),
  });
}

export function renderEnvoyConfig(plan: EdgePlan): RenderedEnvoyConfig {
  const bootstrap = renderBootstrap(plan);
  const listeners = renderListeners(plan);
  const clusters = renderClusters(plan);
  const version = hash(
    JSON.stringify([
      listeners.map((listener) => toJson(ListenerSchema, listener, writeOptions)),
      clusters.map((cluster) => toJson(ClusterSchema, cluster, writeOptions)),
    ]),
  );
  const lds = discoveryResponse(ListenerSchema, version, listeners);
  const cds = discoveryResponse(ClusterSchema, version, clusters);
  const secrets = renderSecrets(plan.secrets).map(({ path, secret }) => ({
    path,
    response: discoveryResponse(SecretSchema, hash(envoyJson(SecretSchema, secret)), [secret]),
  }));
  const files: EnvoyConfigFile[] = [
    { path: ENVOY_BOOTSTRAP, content: envoyJson(BootstrapSchema, bootstrap) },
    { path: ENVOY_CDS_FILE, content: envoyJson(DiscoveryResponseSchema, cds) },
    { path: ENVOY_LDS_FILE, content: envoyJson(DiscoveryResponseSchema, lds) },
    ...secrets.map(({ path, response }) => ({ path, content: envoyJson(DiscoveryResponseSchema, response) })),
  ].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { version, files, bootstrap, lds, cds, sds: secrets.map(({ response }) => response) };
}
