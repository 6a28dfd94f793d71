// Loads a secret's key material the way building Envoy's TLS context does, so material
// that would not load is refused when the secret arrives (worded as Envoy words it).
import { createPrivateKey, X509Certificate } from "node:crypto";
import { createSecureContext } from "node:tls";
import { ResourceError } from "../config/resource.ts";
import type { Secret } from "../config/subset.ts";

export type SecretUse = "tls_certificate" | "validation_context";

type DataSource = { inline_string?: string; inline_bytes?: string } | undefined;

/** The bytes of an inline DataSource (inline_bytes is base64 in JSON). */
export function dataSourceText(source: DataSource): string {
  if (source?.inline_string !== undefined) return source.inline_string;
  if (source?.inline_bytes !== undefined) return Buffer.from(source.inline_bytes, "base64").toString("utf8");
  return "";
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Parses every certificate of a PEM bundle; throws when there is none or one does not parse. */
export function parseCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new Error("no certificate found");
  return blocks.map((block) => new X509Certificate(block));
}

const cause = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export function checkSecretMaterial(secret: Secret, use: SecretUse): void {
  if (use === "tls_certificate") {
    const certificate = secret.tls_certificate;
    if (!certificate) throw new ResourceError(`secret '${secret.name ?? ""}' has no tls_certificate`);
    const chain = dataSourceText(certificate.certificate_chain);
    const key = dataSourceText(certificate.private_key);
    try {
      parseCertificates(chain);
    } catch (error) {
      throw new ResourceError(`Failed to load certificate chain from <inline>, Cause: ${cause(error)}`);
    }
    try {
      createPrivateKey(key);
    } catch (error) {
      throw new ResourceError(`Failed to load private key from <inline>, Cause: ${cause(error)}`);
    }
    try {
      createSecureContext({ cert: chain, key });
    } catch (error) {
      throw new ResourceError(`Failed to load private key from <inline>, Cause: ${cause(error)}`);
    }
    return;
  }
  const validation = secret.validation_context;
  if (!validation) throw new ResourceError(`secret '${secret.name ?? ""}' has no validation_context`);
  try {
    parseCertificates(dataSourceText(validation.trusted_ca));
  } catch (error) {
    throw new ResourceError(`Failed to load trusted CA certificates from <inline>, Cause: ${cause(error)}`);
  }
}
