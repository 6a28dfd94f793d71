import { z } from "zod";
import {
  Affinity,
  API_VERSION,
  cel,
  type CelRule,
  Conditions,
  Duration,
  Hostname,
  immutable,
  LabelSelector,
  NodeSelector,
  ObjectMeta,
  ObjectName,
  Port,
  ResourceRequirements,
  Toleration,
} from "./common.ts";

export const ProviderRef = z
  .object({ name: ObjectName.describe("Name of the TunnelProvider.") })
  .meta(cel(immutable("spec.providerRef")))
  .describe("The TunnelProvider this tunnel belongs to. Immutable: create a new Tunnel to move providers.");

export const AllowedBindings = z
  .object({
    namespaces: z
      .object({
        from: z
          .enum(["Same", "All", "Selector"])
          .default("Same")
          .describe("Which namespaces may bind: `Same` (this one), `All`, or those matching `selector`."),
        selector: LabelSelector.optional().describe("Namespace labels, with `from: Selector`."),
      })
      .meta(
        cel({
          rule: "(self.from == 'Selector') == has(self.selector)",
          message: "selector is required with from: Selector and not allowed otherwise",
        }),
      )
      .default({ from: "Same" }),
    hostnames: z
      .array(Hostname)
      .max(64)
      .meta({
        "x-kubernetes-list-type": "set",
        // An empty list would read as "no hostname at all", which is easy to write by
        // accident and hard to tell from "unset" (Kubernetes API conventions): refuse it.
        ...cel({
          rule: "size(self) > 0",
          message: "list at least one hostname, or leave allowedBindings.hostnames out to admit any hostname",
        }),
      })
      .optional()
      .describe(
        "The only hostnames bindings may claim on this tunnel: exact names, and `*.` wildcards that admit any name below them at any depth (`*.apps.example.com` admits `a.apps.example.com` and `a.b.apps.example.com`, not `apps.example.com`). A route whose hostname is a wildcard needs an equal or broader wildcard entry. A binding with a route outside the list is not accepted (reason HostnameNotAllowed). Routes without a hostname (edge listen ports) are not limited by it. Unset: any hostname.",
      ),
  })
  .describe("Which TunnelBindings may use this tunnel. Default: bindings in the tunnel's own namespace, any hostname.");

const PodPlacement = {
  resources: ResourceRequirements.optional(),
  nodeSelector: NodeSelector.optional(),
  tolerations: z.array(Toleration).max(32).optional(),
};

export const CloudflareTunnelSpec = z.object({
  replicas: z.int().min(1).max(32).default(2).meta({ format: "int32" }).describe("cloudflared connector replicas."),
  existingTunnelId: z
    .string()
    .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, "must be a tunnel UUID")
    .optional()
    .describe(
      "Adopt this existing remote-managed tunnel instead of creating one: KTube manages its ingress configuration but never deletes it. Immutable: it cannot be added, changed or removed after creation.",
    ),
  cloudflared: z
    .object({
      image: z.string().max(512).optional().describe("The cloudflared image (default: the controller's)."),
      ...PodPlacement,
    })
    .optional(),
});

export const NgrokTunnelSpec = z.object({
  replicas: z.int().min(1).max(32).optional().meta({ format: "int32" }).describe("Agent replicas serving the endpoints."),
  poolingEnabled: z.boolean().optional().describe("Pool endpoints across replicas (default: true)."),
  tcpAddressReclaimPolicy: z
    .enum(["Delete", "Retain"])
    .optional()
    .describe(
      "What happens to the TCP address KTube reserved for a route (with an API key) when the route or its binding goes: Delete releases it (ngrok never hands a released address out again), Retain keeps it on the account, and a binding re-created with the same namespace, name and route takes it back. Default: Delete.",
    ),
});

export const DevTunnelsTunnelSpec = z.object({
  region: z.string().max(32).regex(/^[a-z][a-z0-9]*$/).optional().describe("The cluster region, e.g. `usw2`, `euw`."),
  expiration: Duration.optional().describe(
    "How long the tunnel lives without activity (the service's default, 30 days, if unset; the service may shorten it: status.expiresAt says what it granted).",
  ),
  access: z
    .enum(["Public", "Private"])
    .optional()
    .describe("Public: anyone with a route's URL may connect (anonymous connect access). Private: no anonymous access. Default: Public."),
});

/** A CEL expression: is `port` inside one of the tunnel's listen-port ranges? */
const inListenPorts = (port: string): string => `self.edge.listenPorts.exists(r, ${port} >= r.from && ${port} <= (has(r.to) ? r.to : r.from))`;

const EDGE_PORTS_APART: CelRule[] = [
  {
    rule: `!has(self.edge) || !(${inListenPorts("self.edge.wireguard.listenPort")})`,
    message: "edge.wireguard.listenPort must not be one of edge.listenPorts (the VPS needs it for the tunnel itself)",
  },
  {
    rule: `!has(self.edge) || !(${inListenPorts("self.edge.ssh.port")})`,
    message: "edge.ssh.port must not be one of edge.listenPorts (the controller reaches the VPS on it)",
  },
];

const IPv4Cidr = z
  .string()
  .max(18)
  .meta(cel({ rule: "isCIDR(self) && cidr(self).ip().family() == 4", message: "must be an IPv4 CIDR such as 10.200.0.0/24" }));

export const EdgeTunnelSpec = z.object({
  address: z
    .string()
    .min(1)
    .max(253)
    .describe("The VPS's public address (IP or DNS name), used for SSH and as the tunnels' endpoint."),
  ssh: z
    .object({
      port: Port.default(22),
      user: z.string().min(1).max(32).regex(/^[a-z_][a-z0-9_-]*$/).default("root"),
      insecureSkipHostKeyVerification: z
        .boolean()
        .default(false)
        .describe("Accept whatever host key the VPS presents instead of the provider's `knownHosts` (the key seen is still reported). Not for production."),
    })
    .default({ port: 22, user: "root", insecureSkipHostKeyVerification: false })
    .describe("How the controller reaches the VPS; the key and the pinned host keys are the TunnelProvider's (spec.edge.sshSecretRef)."),
  listenPorts: z
    .array(
      z
        .object({
          from: Port,
          to: Port.optional().describe("The last port of a range; unset: the single port `from`."),
        })
        .meta(cel({ rule: "!has(self.to) || self.to >= self.from", message: "to must not be below from" })),
    )
    .min(1)
    .max(32)
    .default([{ from: 80 }, { from: 443 }])
    .describe(
      "The public ports bindings may listen on (routes[].listenPort). The VPS's firewall opens only these and the WireGuard port. Default: 80 and 443.",
    ),
  wireguard: z
    .object({
      listenPort: Port.default(51821),
      network: IPv4Cidr.default("10.200.0.0/24"),
      mtu: z.int().min(1280).max(9000).default(1420).meta({ format: "int32" }),
      persistentKeepalive: z.int().min(0).max(3600).default(25).meta({ format: "int32" }).describe("Seconds; 0 disables."),
    })
    .default({ listenPort: 51821, network: "10.200.0.0/24", mtu: 1420, persistentKeepalive: 25 }),
  uplink: z
    .object({
      replicas: z.int().min(1).max(16).default(2).meta({ format: "int32" }),
      ...PodPlacement,
      affinity: Affinity.optional(),
    })
    .default({ replicas: 2 }),
  healthCheck: z
    .object({
      interval: Duration.default("5s"),
      timeout: Duration.default("2s"),
      healthyThreshold: z.int().min(1).max(10).default(2).meta({ format: "int32" }),
      unhealthyThreshold: z.int().min(1).max(10).default(2).meta({ format: "int32" }),
    })
    .default({ interval: "5s", timeout: "2s", healthyThreshold: 2, unhealthyThreshold: 2 }),
  allowAddressTargets: z
    .boolean()
    .default(false)
    .describe("May bindings target a raw IP:port (`routes[].address`) instead of a Service?"),
});

const TUNNEL_BLOCKS = ["cloudflare", "ngrok", "devtunnels", "edge"] as const;

/**
 * Whether a Tunnel adopted a Cloudflare tunnel decides whether deleting the Tunnel
 * deletes the Cloudflare tunnel, so the choice is fixed at creation. The rule sits on
 * spec, not on the field: a rule on an optional field does not run when the field (or
 * the whole `cloudflare` block) is removed, and adding it later must be refused too.
 */
const EXISTING_TUNNEL_ID_IMMUTABLE: CelRule = {
  rule:
    "(has(self.cloudflare) && has(self.cloudflare.existingTunnelId)) == (has(oldSelf.cloudflare) && has(oldSelf.cloudflare.existingTunnelId))" +
    " && (!has(self.cloudflare) || !has(self.cloudflare.existingTunnelId) || self.cloudflare.existingTunnelId == oldSelf.cloudflare.existingTunnelId)",
  message: "existingTunnelId is immutable (it cannot be added, changed or removed after creation): create a new Tunnel to adopt a different Cloudflare tunnel",
  fieldPath: ".cloudflare.existingTunnelId",
};

export const TunnelSpec = z
  .object({
    providerRef: ProviderRef,
    allowedBindings: AllowedBindings.default({ namespaces: { from: "Same" } }),
    cloudflare: CloudflareTunnelSpec.optional(),
    ngrok: NgrokTunnelSpec.optional(),
    devtunnels: DevTunnelsTunnelSpec.optional(),
    edge: EdgeTunnelSpec.optional(),
  })
  .meta(
    cel(
      {
        rule: `${TUNNEL_BLOCKS.map((t) => `(has(self.${t}) ? 1 : 0)`).join(" + ")} <= 1`,
        message: "set at most one provider block (cloudflare, ngrok, devtunnels or edge), the one of the provider's type",
      },
      EXISTING_TUNNEL_ID_IMMUTABLE,
      ...EDGE_PORTS_APART,
    ),
  );

export const TunnelStatus = z.object({
  observedGeneration: z.int().min(0).meta({ format: "int64" }).optional(),
  conditions: Conditions.optional(),
  tunnelId: z.string().max(256).optional().describe("The provider's id of this tunnel, written as soon as it exists."),
  adopted: z
    .boolean()
    .optional()
    .describe(
      "Set when the provider-side tunnel was not created by KTube but adopted (e.g. spec.cloudflare.existingTunnelId): KTube never deletes it.",
    ),
  boundRoutes: z.int().min(0).meta({ format: "int32" }).optional().describe("Routes of accepted bindings served by this tunnel."),
  region: z.string().max(64).optional().describe("The provider region the tunnel lives in, where it has one (a Dev Tunnels cluster)."),
  expiresAt: z.string().max(64).optional().describe("When the provider deletes the tunnel unless it is used (Dev Tunnels' expiration, as the service granted it)."),
  hostKeyFingerprint: z.string().max(128).optional().describe("Edge: the SSH host key the VPS presented at the last connection (SHA256:…, as ssh-keygen -l prints it)."),
  configVersion: z.string().max(128).optional().describe("Edge: the Envoy configuration version the VPS's Envoy confirmed it runs."),
});

export const Tunnel = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal("Tunnel"),
  metadata: ObjectMeta,
  spec: TunnelSpec,
  status: TunnelStatus.optional(),
});

export type TunnelSpec = z.infer<typeof TunnelSpec>;
export type TunnelStatus = z.infer<typeof TunnelStatus>;
export type Tunnel = z.infer<typeof Tunnel>;
export type CloudflareTunnelSpec = z.infer<typeof CloudflareTunnelSpec>;
export type EdgeTunnelSpec = z.infer<typeof EdgeTunnelSpec>;
