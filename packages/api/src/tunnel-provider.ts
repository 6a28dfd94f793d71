import { z } from "zod";
import { API_VERSION, cel, Conditions, immutable, ObjectMeta, ObjectName, SecretKeyRef } from "./common.ts";

export const PROVIDER_TYPES = ["cloudflare", "ngrok", "devtunnels", "edge"] as const;
export const ProviderType = z.enum(PROVIDER_TYPES);
export type ProviderType = z.infer<typeof ProviderType>;

export const CloudflareProviderSpec = z
  .object({
    accountId: z
      .string()
      .regex(/^[0-9a-f]{32}$/, "must be a Cloudflare account id (32 lowercase hex characters)")
      .optional()
      .describe("The Cloudflare account that owns the tunnels (32 hex characters)."),
    apiTokenSecretRef: SecretKeyRef.optional().describe(
      "The API token (Cloudflare Tunnel:Edit, DNS:Edit, Access: Apps and Policies:Edit), in a Secret in the controller's namespace.",
    ),
    quickTunnels: z
      .boolean()
      .default(false)
      .describe("Use zero-account quick tunnels on *.trycloudflare.com instead of an account. For development only."),
  })
  .meta(
    cel(
      {
        rule: "self.quickTunnels || (has(self.accountId) && has(self.apiTokenSecretRef))",
        message: "accountId and apiTokenSecretRef are required unless quickTunnels is true",
      },
      {
        rule: "!self.quickTunnels || (!has(self.accountId) && !has(self.apiTokenSecretRef))",
        message: "quick tunnels use no account: remove accountId and apiTokenSecretRef, or set quickTunnels to false",
      },
    ),
  );

export const NgrokProviderSpec = z.object({
  authtokenSecretRef: SecretKeyRef.describe("The ngrok agent authtoken."),
  apiKeySecretRef: SecretKeyRef.optional().describe("An ngrok API key, for reserving domains and addresses."),
  region: z
    .string()
    .max(32)
    .regex(/^[a-z][a-z0-9-]*$/)
    .optional()
    .describe("The ngrok region to connect to (for example `us`, `eu`, `ap`); default: the nearest."),
});

export const EntraClientCredentials = z.object({
  tenantId: z.string().min(1).max(64).regex(/^[A-Za-z0-9.-]+$/, "must be a tenant id or domain").describe("The Microsoft Entra tenant of the app registration."),
  clientId: z.string().min(1).max(64).regex(/^[A-Za-z0-9-]+$/, "must be an application (client) id").describe("The app registration's application (client) id."),
  clientSecretRef: SecretKeyRef.describe("The app registration's client secret."),
});

export const DevTunnelsProviderSpec = z
  .object({
    entra: EntraClientCredentials.optional().describe(
      "A Microsoft Entra service principal (client credentials): the controller gets and refreshes Dev Tunnels tokens itself. Recommended.",
    ),
    tokenSecretRef: SecretKeyRef.optional().describe(
      "A raw Authorization value for the Dev Tunnels service (`Bearer <Entra token>`, `github <token>`); it expires and is not refreshed: for tests and short demos only.",
    ),
    serviceUri: z
      .string()
      .max(2048)
      .regex(/^https:\/\/[^\s/]+(\/.*)?$/, "must be an https URL")
      .optional()
      .describe("The Dev Tunnels service endpoint; default: the public service."),
  })
  .meta(cel({ rule: "has(self.entra) != has(self.tokenSecretRef)", message: "set exactly one of entra (recommended) or tokenSecretRef" }));

export const EdgeProviderSpec = z.object({
  sshSecretRef: z
    .object({ name: ObjectName })
    .describe(
      "Secret in the controller's namespace with `privateKey` (OpenSSH or PEM; the SSH user must be root or have passwordless sudo), optional `passphrase`, and `knownHosts` (the host keys of every VPS of this provider, as `ssh-keyscan` prints them: KTube refuses a VPS whose key is not there).",
    ),
  envoy: z
    .object({
      version: z
        .string()
        .max(32)
        .regex(/^v?[0-9]+\.[0-9]+\.[0-9]+$/, "must be a version such as 1.36.2")
        .describe("The Envoy version installed on enrolled VPSes."),
      sha256: z
        .string()
        .regex(/^[0-9a-f]{64}$/, "must be a lowercase hex SHA-256")
        .describe("The SHA-256 of the Envoy binary at url: a download that does not match is refused."),
      url: z
        .string()
        .max(2048)
        .regex(/^https:\/\/[^\s]+$/, "must be an https URL")
        .describe("Where the VPS downloads the Envoy binary from."),
    })
    .describe(
      "The Envoy binary every VPS of this provider installs, pinned by checksum: the linux build for the VPS's architecture (e.g. envoy-1.36.2-linux-x86_64 from github.com/envoyproxy/envoy/releases) and its SHA-256. There is no default: KTube installs only a binary whose checksum you chose.",
    ),
  uplinkImage: z.string().max(512).optional().describe("The uplink pod image (default: the controller's)."),
});

export const TunnelProviderSpec = z
  .object({
    type: ProviderType.meta(cel(immutable("spec.type"))).describe(
      "The provider class; the controller of that class serves this object. Immutable.",
    ),
    cloudflare: CloudflareProviderSpec.optional(),
    ngrok: NgrokProviderSpec.optional(),
    devtunnels: DevTunnelsProviderSpec.optional(),
    edge: EdgeProviderSpec.optional(),
  })
  .meta(
    cel({
      rule: PROVIDER_TYPES.map((t) => `has(self.${t}) == (self.type == '${t}')`).join(" && "),
      messageExpression: "'spec.type is ' + self.type + ': set spec.' + self.type + ' and no other provider block'",
    }),
  );

export const TunnelProviderStatus = z.object({
  observedGeneration: z.int().min(0).meta({ format: "int64" }).optional(),
  conditions: Conditions.optional(),
});

export const TunnelProvider = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal("TunnelProvider"),
  metadata: ObjectMeta,
  spec: TunnelProviderSpec,
  status: TunnelProviderStatus.optional(),
});

export type TunnelProviderSpec = z.infer<typeof TunnelProviderSpec>;
export type TunnelProviderStatus = z.infer<typeof TunnelProviderStatus>;
export type TunnelProvider = z.infer<typeof TunnelProvider>;
export type CloudflareProviderSpec = z.infer<typeof CloudflareProviderSpec>;
