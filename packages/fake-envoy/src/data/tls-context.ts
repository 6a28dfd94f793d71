// A DownstreamTlsContext turned into Node's TLS server options, from the secrets as they are
// now: each new connection reads the current SDS secret, so a rotation applies to the next
// connection (Envoy rebuilds the context on `updated` and keeps old connections as they were).
import { createSecureContext, type SecureContext, type TlsOptions } from "node:tls";
import type { DownstreamTls, SecretRef } from "../listeners/build-listener.ts";
import { dataSourceText } from "../secrets/secret-material.ts";

const secretOf = (ref: SecretRef) => (ref.kind === "static" ? ref.secret.config : ref.secret.current?.config);

const VERSION: Record<string, "TLSv1.2" | "TLSv1.3" | undefined> = { TLSv1_2: "TLSv1.2", TLSv1_3: "TLSv1.3" };

const cache = new WeakMap<object, { key: string; context: SecureContext }>();

/** Server options for a new connection, or undefined when no certificate is loaded yet (Envoy refuses the handshake). */
export function serverTlsOptions(tls: DownstreamTls): TlsOptions | undefined {
  const certificates = tls.certificates.map(secretOf).filter((secret) => secret?.tls_certificate);
  if (certificates.length === 0) return undefined;
  const validation = tls.validation ? secretOf(tls.validation)?.validation_context : undefined;
  if (tls.validation && !validation) return undefined;
  const ca = validation ? dataSourceText(validation.trusted_ca) : undefined;
  const params = tls.context.common_tls_context?.tls_params;
  const material = {
    cert: certificates.map((secret) => dataSourceText(secret!.tls_certificate!.certificate_chain)),
    key: certificates.map((secret) => dataSourceText(secret!.tls_certificate!.private_key)),
    ...(ca ? { ca } : {}),
    minVersion: VERSION[params?.tls_minimum_protocol_version ?? ""] ?? "TLSv1.2",
    maxVersion: VERSION[params?.tls_maximum_protocol_version ?? ""] ?? "TLSv1.3",
  };
  const key = JSON.stringify(material);
  let cached = cache.get(tls);
  if (cached?.key !== key) cache.set(tls, (cached = { key, context: createSecureContext(material) }));
  const alpn = tls.context.common_tls_context?.alpn_protocols;
  return {
    secureContext: cached.context,
    requestCert: ca !== undefined,
    rejectUnauthorized: tls.requireClientCertificate,
    ...(alpn?.length ? { ALPNProtocols: alpn } : {}),
  };
}
