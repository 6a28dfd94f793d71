// Where each file of Envoy's file-based dynamic configuration lives on the VPS, and the
// ConfigSource that points Envoy at one of them.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ApiVersion, type ConfigSourceSchema } from "@ktube/envoy-api/gen/envoy/config/core/v3/config_source_pb.ts";
import { ENVOY_CONFIG_DIR, ENVOY_SDS_DIR } from "./plan.ts";

export const ENVOY_LDS_FILE = `${ENVOY_CONFIG_DIR}/lds.json`;
export const ENVOY_CDS_FILE = `${ENVOY_CONFIG_DIR}/cds.json`;

/** The file an SDS secret is served from: `<ENVOY_SDS_DIR>/<name>.json` (Envoy wants exactly one Secret per file). */
export const sdsFile = (name: string): string => `${ENVOY_SDS_DIR}/${name}.json`;

/**
 * The SDS name of a TLS secret's validation context (its CA). A Secret holds either a
 * certificate or a validation context, and a file serves one Secret, so mutual TLS needs a
 * second file. `_` never occurs in a Kubernetes name, so this cannot collide with another secret.
 */
export const validationSecretName = (name: string): string => `${name}_ca`;

/**
 * Envoy reads `path`, and reads it again whenever a file is moved into `directory` (KTube
 * writes every file to a temporary name and renames it into place).
 */
export function watchedFileSource(path: string, directory: string): MessageInitShape<typeof ConfigSourceSchema> {
  return {
    configSourceSpecifier: { case: "pathConfigSource", value: { path, watchedDirectory: { path: directory } } },
    resourceApiVersion: ApiVersion.V3,
  };
}
