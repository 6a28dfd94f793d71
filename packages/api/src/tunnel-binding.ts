import { z } from "zod";
import {
  API_VERSION,
  cel,
  Conditions,
  dnsLabelPattern,
  Duration,
  Hostname,
  NamespaceName,
  ObjectMeta,
  ObjectName,
  Port,
  PortNameOrNumber,
} from "./common.ts";

export const ROUTE_PROTOCOLS = ["HTTP", "HTTPS", "TCP", "UDP", "TLS"] as const;
export const RouteProtocol = z.enum(ROUTE_PROTOCOLS);
export type RouteProtocol = z.infer<typeof RouteProtocol>;

export const ServiceTarget = z
  .object({
    name: ObjectName.describe("Name of a Service in the binding's own namespace."),
    port: PortNameOrNumber,
  })
  .describe("The Service this route sends traffic to. It must be in the binding's namespace.");

export const AddressTarget = z
  .object({
    ip: z
      .string()
      .max(45)
      .meta(cel({ rule: "isIP(self)", message: "must be an IPv4 or IPv6 address" })),
    port: Port,
  })
  .describe("A raw IP:port target (edge only, and only where the Tunnel sets allowAddressTargets).");

const Email = z
  .string()
  .max(254)
  .regex(/^[^@\s]+@[^@\s]+\.[^@\s]+$/, "must be an email address");

export const AccessPolicy = z
  .object({
    emails: z.array(Email).max(100).optional().describe("Email addresses that may log in (one-time PIN)."),
    emailDomains: z
      .array(z.string().max(253).regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,63}$/, "must be a domain"))
      .max(50)
      .optional()
      .describe("Email domains whose addresses may log in (one-time PIN)."),
  })
  .meta(
    cel({
      rule: "(has(self.emails) && size(self.emails) > 0) || (has(self.emailDomains) && size(self.emailDomains) > 0)",
      message: "access needs at least one entry in emails or emailDomains",
    }),
  )
  .describe("Cloudflare Access: put a login (one-time PIN) in front of this hostname for these people.");

export const OriginRequest = z
  .object({
    noTLSVerify: z.boolean().optional().describe("Do not verify the origin's TLS certificate."),
    http2Origin: z.boolean().optional().describe("Speak HTTP/2 to the origin."),
    httpHostHeader: z.string().max(253).optional().describe("Host header sent to the origin."),
    originServerName: z.string().max(253).optional().describe("Hostname expected on the origin's certificate."),
    connectTimeout: Duration.optional(),
    tlsTimeout: Duration.optional(),
    tcpKeepAlive: Duration.optional(),
    keepAliveTimeout: Duration.optional(),
    keepAliveConnections: z.int().min(0).max(1024).optional().meta({ format: "int32" }),
    noHappyEyeballs: z.boolean().optional(),
    disableChunkedEncoding: z.boolean().optional(),
  })
  .describe("cloudflared's origin request options for this route (Cloudflare only).");

export const RouteTls = z
  .object({
    mode: z
      .enum(["passthrough", "offload", "mutual"])
      .describe("`passthrough`: the Service terminates TLS; `offload`: the edge terminates it; `mutual`: the edge terminates it and requires client certificates."),
    secretRef: z
      .object({ name: ObjectName })
      .optional()
      .describe("A kubernetes.io/tls Secret in the binding's namespace (`ca.crt` too for mutual)."),
  })
  .meta(
    cel({
      rule: "self.mode == 'passthrough' || has(self.secretRef)",
      messageExpression: "'tls.secretRef is required with mode ' + self.mode",
    }),
  );

export const Route = z
  .object({
    name: z.string().min(1).max(63).regex(new RegExp(dnsLabelPattern), "must be a lowercase RFC 1123 label").describe("Unique within the binding."),
    protocol: RouteProtocol.default("HTTP"),
    hostname: Hostname.optional().describe("The public hostname (HTTP, HTTPS, TLS SNI; TCP on Cloudflare)."),
    path: z
      .string()
      .max(1024)
      .regex(/^\/[^\s?#]*$/, "must be an absolute path prefix such as / or /api")
      .optional()
      .describe("HTTP path prefix."),
    service: ServiceTarget.optional(),
    address: AddressTarget.optional(),
    listenPort: Port.optional().describe("Edge: the public port on the VPS."),
    tls: RouteTls.optional(),
    proxyProtocol: z.enum(["v1", "v2"]).optional().describe("Edge, TCP and TLS: send a PROXY protocol header to the target."),
    udp: z.object({ sessionTimeout: Duration.default("60s") }).optional().describe("Edge, UDP."),
    access: AccessPolicy.optional(),
    originRequest: OriginRequest.optional(),
  })
  .meta(
    cel(
      { rule: "has(self.service) != has(self.address)", message: "a route needs exactly one of service or address" },
      {
        rule: "!has(self.path) || self.protocol in ['HTTP', 'HTTPS']",
        message: "path is only allowed with protocol HTTP or HTTPS",
      },
      { rule: "!has(self.hostname) || self.protocol != 'UDP'", message: "hostname is not allowed with protocol UDP" },
      { rule: "!has(self.udp) || self.protocol == 'UDP'", message: "udp is only allowed with protocol UDP" },
      {
        rule: "!has(self.tls) || self.protocol in ['TLS', 'HTTPS']",
        message: "tls is only allowed with protocol TLS or HTTPS",
      },
      {
        rule: "!has(self.proxyProtocol) || self.protocol in ['TCP', 'TLS']",
        message: "proxyProtocol is only allowed with protocol TCP or TLS",
      },
      {
        rule: "!has(self.access) || (self.protocol in ['HTTP', 'HTTPS'] && has(self.hostname))",
        message: "access needs protocol HTTP or HTTPS and a hostname",
      },
      {
        rule: "!has(self.originRequest) || self.protocol in ['HTTP', 'HTTPS', 'TCP']",
        message: "originRequest is only allowed with protocol HTTP, HTTPS or TCP",
      },
    ),
  );

export const TunnelRef = z
  .object({
    name: ObjectName.describe("Name of the Tunnel."),
    namespace: NamespaceName.optional().describe("Namespace of the Tunnel; default: the binding's own."),
  })
  .describe("The Tunnel to route through. A Tunnel in another namespace must admit this binding in its allowedBindings.");

export const TunnelBindingSpec = z.object({
  tunnelRef: TunnelRef,
  routes: z
    .array(Route)
    .min(1)
    .max(64)
    .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] })
    .describe("Routes from the tunnel to Services, keyed by name."),
});

export const RouteReservation = z.object({
  id: z.string().max(256).describe("The provider's id of what the route holds (an ngrok reserved TCP address: ra_…)."),
  address: z.string().max(1024).optional().describe("The reserved address or name."),
});

export const RouteStatus = z.object({
  name: z.string().max(63),
  url: z.string().max(2048).optional().describe("The public URL or address of this route, once it is served."),
  reservation: RouteReservation.optional().describe("What the route holds at the provider, recorded as soon as it exists so a restart resumes instead of reserving again."),
  ready: z.boolean(),
  message: z.string().max(1024).optional(),
});

export const TunnelBindingStatus = z.object({
  observedGeneration: z.int().min(0).meta({ format: "int64" }).optional(),
  conditions: Conditions.optional(),
  routes: z
    .array(RouteStatus)
    .max(64)
    .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] })
    .optional(),
});

export const TunnelBinding = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal("TunnelBinding"),
  metadata: ObjectMeta,
  spec: TunnelBindingSpec,
  status: TunnelBindingStatus.optional(),
});

export type Route = z.infer<typeof Route>;
export type RouteStatus = z.infer<typeof RouteStatus>;
export type RouteReservation = z.infer<typeof RouteReservation>;
export type TunnelBindingSpec = z.infer<typeof TunnelBindingSpec>;
export type TunnelBindingStatus = z.infer<typeof TunnelBindingStatus>;
export type TunnelBinding = z.infer<typeof TunnelBinding>;
