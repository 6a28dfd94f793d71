// TLS secrets as SDS files: one Secret per file (Envoy's file-based SDS takes exactly one,
// named as the reference asks), so a secret with a CA for mutual TLS becomes two files, the
// certificate `<name>.json` and the validation context `<name>_ca.json`. Listeners refer to
// them by name through `sdsSecretConfig`, never inline, so a renewed certificate replaces a
// file and leaves listeners (and their connections) alone.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { SdsSecretConfigSchema } from "@ktube/envoy-api/gen/envoy/extensions/transport_sockets/tls/v3/secret_pb.ts";
import { SecretSchema, type Secret } from "@ktube/envoy-api/gen/envoy/extensions/transport_sockets/tls/v3/secret_pb.ts";
import { sdsFile, validationSecretName, watchedFileSource } from "./paths.ts";
import { ENVOY_SDS_DIR, type EdgeTlsSecret } from "./plan.ts";

export interface RenderedSecret {
  /** The SDS resource name. */
  name: string;
  /** The file it is served from. */
  path: string;
  secret: Secret;
}

const inline = (value: string) => ({ specifier: { case: "inlineString" as const, value } });

/** The SDS files of the plan's secrets, sorted by path. */
export function renderSecrets(secrets: readonly EdgeTlsSecret[]): RenderedSecret[] {
  const out: RenderedSecret[] = [];
  for (const secret of secrets) {
    out.push({
      name: secret.name,
      path: sdsFile(secret.name),
      secret: create(SecretSchema, {
        name: secret.name,
        type: { case: "tlsCertificate", value: { certificateChain: inline(secret.certificateChain), privateKey: inline(secret.privateKey) } },
      }),
    });
    if (secret.caCertificate !== undefined) {
      const name = validationSecretName(secret.name);
      out.push({
        name,
        path: sdsFile(name),
        secret: create(SecretSchema, { name, type: { case: "validationContext", value: { trustedCa: inline(secret.caCertificate) } } }),
      });
    }
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** A reference to the SDS secret `name`, served from its file. */
export function sdsSecretConfig(name: string): MessageInitShape<typeof SdsSecretConfigSchema> {
  return { name, sdsConfig: watchedFileSource(sdsFile(name), ENVOY_SDS_DIR) };
}
