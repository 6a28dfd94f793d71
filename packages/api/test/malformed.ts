// Objects the API server must reject at admission, each with the message a user sees.
// `base` objects are valid; each case changes one thing.
import { stringify } from "yaml";

/** A valid Envoy pin (every edge provider needs one). */
const PINNED_ENVOY = { version: "1.36.2", sha256: "a".repeat(64), url: "https://example.com/envoy" };

type Obj = Record<string, unknown>;

export const provider = (spec: Obj, name = "bad-provider"): Obj => ({
  apiVersion: "ktube.dev/v1alpha1",
  kind: "TunnelProvider",
  metadata: { name },
  spec,
});
export const tunnel = (spec: Obj, name = "bad-tunnel"): Obj => ({
  apiVersion: "ktube.dev/v1alpha1",
  kind: "Tunnel",
  metadata: { name },
  spec,
});
export const binding = (routes: Obj[], extra: Obj = {}): Obj => ({
  apiVersion: "ktube.dev/v1alpha1",
  kind: "TunnelBinding",
  metadata: { name: "bad-binding" },
  spec: { tunnelRef: { name: "home" }, routes, ...extra },
});

const cfSecret = { name: "cf", key: "token" };
const cloudflare = { accountId: "0123456789abcdef0123456789abcdef", apiTokenSecretRef: cfSecret };
const web = { name: "web", hostname: "shop.example.com", service: { name: "web", port: 80 } };
const edge = { address: "203.0.113.10" };

export interface RejectCase {
  what: string;
  object: Obj;
  message: string;
}

export const CREATE_CASES: RejectCase[] = [
  // TunnelProvider
  { what: "unknown provider type", object: provider({ type: "aws" }), message: 'Unsupported value: "aws"' },
  {
    what: "block of another type",
    object: provider({ type: "cloudflare", ngrok: { authtokenSecretRef: cfSecret } }),
    message: "spec.type is cloudflare: set spec.cloudflare and no other provider block",
  },
  {
    what: "two provider blocks",
    object: provider({ type: "cloudflare", cloudflare, edge: { sshSecretRef: { name: "vps-ssh" }, envoy: PINNED_ENVOY } }),
    message: "spec.type is cloudflare: set spec.cloudflare and no other provider block",
  },
  {
    what: "cloudflare without account",
    object: provider({ type: "cloudflare", cloudflare: {} }),
    message: "accountId and apiTokenSecretRef are required unless quickTunnels is true",
  },
  {
    what: "malformed account id",
    object: provider({ type: "cloudflare", cloudflare: { ...cloudflare, accountId: "acme" } }),
    message: "spec.cloudflare.accountId in body should match",
  },
  {
    what: "quick tunnels with an account",
    object: provider({ type: "cloudflare", cloudflare: { ...cloudflare, quickTunnels: true } }),
    message: "quick tunnels use no account",
  },
  {
    what: "unknown field",
    object: provider({ type: "cloudflare", cloudflare: { ...cloudflare, zone: "example.com" } }),
    message: 'unknown field "spec.cloudflare.zone"',
  },
  {
    what: "ngrok without authtoken",
    object: provider({ type: "ngrok", ngrok: {} }),
    message: "spec.ngrok.authtokenSecretRef: Required value",
  },
  {
    what: "devtunnels with an http service URI",
    object: provider({ type: "devtunnels", devtunnels: { tokenSecretRef: cfSecret, serviceUri: "http://x" } }),
    message: "spec.devtunnels.serviceUri in body should match",
  },
  // Tunnel
  { what: "tunnel without providerRef", object: tunnel({}), message: "spec.providerRef: Required value" },
  {
    what: "tunnel with two provider blocks",
    object: tunnel({ providerRef: { name: "p" }, cloudflare: {}, ngrok: {} }),
    message: "set at most one provider block",
  },
  {
    what: "Selector without selector",
    object: tunnel({ providerRef: { name: "p" }, allowedBindings: { namespaces: { from: "Selector" } } }),
    message: "selector is required with from: Selector and not allowed otherwise",
  },
  {
    what: "selector with from: Same",
    object: tunnel({
      providerRef: { name: "p" },
      allowedBindings: { namespaces: { from: "Same", selector: { matchLabels: { a: "b" } } } },
    }),
    message: "selector is required with from: Selector and not allowed otherwise",
  },
  {
    what: "zero cloudflared replicas",
    object: tunnel({ providerRef: { name: "p" }, cloudflare: { replicas: 0 } }),
    message: "spec.cloudflare.replicas: Invalid value: 0: spec.cloudflare.replicas in body should be greater than or equal to 1",
  },
  {
    what: "existingTunnelId not a UUID",
    object: tunnel({ providerRef: { name: "p" }, cloudflare: { existingTunnelId: "my-tunnel" } }),
    message: "spec.cloudflare.existingTunnelId in body should match",
  },
  {
    what: "allowed hostname in upper case",
    object: tunnel({ providerRef: { name: "p" }, allowedBindings: { hostnames: ["Shop.example.com"] } }),
    message: "spec.allowedBindings.hostnames[0] in body should match",
  },
  {
    what: "allowed hostname with a wildcard below the first label",
    object: tunnel({ providerRef: { name: "p" }, allowedBindings: { hostnames: ["ok.example.com", "apps.*.example.com"] } }),
    message: "spec.allowedBindings.hostnames[1] in body should match",
  },
  {
    what: "allowed hostname twice",
    object: tunnel({ providerRef: { name: "p" }, allowedBindings: { hostnames: ["shop.example.com", "shop.example.com"] } }),
    message: 'spec.allowedBindings.hostnames[1]: Duplicate value: "shop.example.com"',
  },
  {
    what: "more than 64 allowed hostnames",
    object: tunnel({
      providerRef: { name: "p" },
      allowedBindings: { hostnames: Array.from({ length: 65 }, (_, i) => `h${i}.example.com`) },
    }),
    message: "spec.allowedBindings.hostnames: Too many: 65: must have at most 64 items",
  },
  {
    what: "empty list of allowed hostnames",
    object: tunnel({ providerRef: { name: "p" }, allowedBindings: { hostnames: [] } }),
    message: "list at least one hostname, or leave allowedBindings.hostnames out to admit any hostname",
  },
  {
    what: "WireGuard network not a CIDR",
    object: tunnel({ providerRef: { name: "p" }, edge: { ...edge, wireguard: { network: "10.0.0.0/33" } } }),
    message: "must be an IPv4 CIDR such as 10.200.0.0/24",
  },
  {
    what: "SSH port out of range",
    object: tunnel({ providerRef: { name: "p" }, edge: { ...edge, ssh: { port: 70000 } } }),
    message: "spec.edge.ssh.port in body should be less than or equal to 65535",
  },
  {
    what: "edge listen-port range upside down",
    object: tunnel({ providerRef: { name: "p" }, edge: { ...edge, listenPorts: [{ from: 9000, to: 8000 }] } }),
    message: "to must not be below from",
  },
  {
    what: "the WireGuard port among the listen ports",
    object: tunnel({ providerRef: { name: "p" }, edge: { ...edge, listenPorts: [{ from: 51000, to: 52000 }] } }),
    message: "edge.wireguard.listenPort must not be one of edge.listenPorts",
  },
  {
    what: "the SSH port among the listen ports",
    object: tunnel({ providerRef: { name: "p" }, edge: { ...edge, listenPorts: [{ from: 22 }, { from: 443 }] } }),
    message: "edge.ssh.port must not be one of edge.listenPorts",
  },
  {
    what: "edge provider without its SSH Secret",
    object: provider({ type: "edge", edge: { envoy: { version: "1.36.2", sha256: "a".repeat(64), url: "https://example.com/envoy" } } }),
    message: "spec.edge.sshSecretRef: Required value",
  },
  {
    what: "edge provider without a pinned Envoy (there is no default binary)",
    object: provider({ type: "edge", edge: { sshSecretRef: { name: "vps-ssh" } } }),
    message: "spec.edge.envoy: Required value",
  },
  {
    what: "Envoy pinned without a usable checksum",
    object: provider({ type: "edge", edge: { sshSecretRef: { name: "vps-ssh" }, envoy: { version: "1.36.2", sha256: "nope", url: "https://example.com/envoy" } } }),
    message: "spec.edge.envoy.sha256 in body should match",
  },
  {
    what: "health check interval not a duration",
    object: tunnel({ providerRef: { name: "p" }, edge: { ...edge, healthCheck: { interval: "5 seconds" } } }),
    message: "spec.edge.healthCheck.interval in body should match",
  },
  {
    what: "bad quantity",
    object: tunnel({ providerRef: { name: "p" }, cloudflare: { cloudflared: { resources: { limits: { memory: "lots" } } } } }),
    message: "spec.cloudflare.cloudflared.resources.limits.memory in body should match",
  },
  // TunnelBinding
  { what: "no routes", object: binding([]), message: "spec.routes in body should have at least 1 items" },
  {
    what: "service and address",
    object: binding([{ ...web, address: { ip: "10.0.0.1", port: 80 } }]),
    message: "a route needs exactly one of service or address",
  },
  {
    what: "neither service nor address",
    object: binding([{ name: "web", hostname: "shop.example.com" }]),
    message: "a route needs exactly one of service or address",
  },
  {
    what: "uppercase hostname",
    object: binding([{ ...web, hostname: "Shop.Example.com" }]),
    message: "spec.routes[0].hostname in body should match",
  },
  {
    what: "wildcard not in the first label",
    object: binding([{ ...web, hostname: "shop.*.example.com" }]),
    message: "spec.routes[0].hostname in body should match",
  },
  { what: "relative path", object: binding([{ ...web, path: "api" }]), message: "spec.routes[0].path in body should match" },
  {
    what: "path on a TCP route",
    object: binding([{ ...web, protocol: "TCP", path: "/" }]),
    message: "path is only allowed with protocol HTTP or HTTPS",
  },
  {
    what: "offload without a Secret",
    object: binding([{ ...web, protocol: "TLS", tls: { mode: "offload" } }]),
    message: "tls.secretRef is required with mode offload",
  },
  {
    what: "udp options on TCP",
    object: binding([{ ...web, protocol: "TCP", udp: { sessionTimeout: "10s" } }]),
    message: "udp is only allowed with protocol UDP",
  },
  {
    what: "hostname on UDP",
    object: binding([{ ...web, protocol: "UDP" }]),
    message: "hostname is not allowed with protocol UDP",
  },
  {
    what: "PROXY protocol on HTTP",
    object: binding([{ ...web, proxyProtocol: "v2" }]),
    message: "proxyProtocol is only allowed with protocol TCP or TLS",
  },
  {
    what: "port 0",
    object: binding([{ ...web, service: { name: "web", port: 0 } }]),
    message: "spec.routes[0].service.port in body should be greater than or equal to 1",
  },
  {
    what: "port name with an underscore",
    object: binding([{ ...web, service: { name: "web", port: "http_alt" } }]),
    message: "spec.routes[0].service.port in body should match",
  },
  {
    what: "port name longer than 15 characters",
    object: binding([{ ...web, service: { name: "web", port: "a-very-long-port-name" } }]),
    message: "spec.routes[0].service.port: Too long: may not be more than 15 bytes",
  },
  {
    what: "a Service in another namespace",
    object: binding([{ ...web, service: { name: "web", namespace: "other", port: 80 } }]),
    message: 'unknown field "spec.routes[0].service.namespace"',
  },
  { what: "duplicate route names", object: binding([web, { ...web, hostname: "b.example.com" }]), message: "Duplicate value" },
  {
    what: "listen port out of range",
    object: binding([{ ...web, protocol: "TCP", listenPort: 70000 }]),
    message: "spec.routes[0].listenPort in body should be less than or equal to 65535",
  },
  {
    what: "access with nobody",
    object: binding([{ ...web, access: { emails: [] } }]),
    message: "access needs at least one entry in emails or emailDomains",
  },
  {
    what: "access on a TCP route",
    object: binding([{ ...web, protocol: "TCP", access: { emails: ["a@example.com"] } }]),
    message: "access needs protocol HTTP or HTTPS and a hostname",
  },
  { what: "unknown protocol", object: binding([{ ...web, protocol: "QUIC" }]), message: 'Unsupported value: "QUIC"' },
  {
    what: "address that is not an IP",
    object: binding([{ name: "dns", protocol: "UDP", address: { ip: "999.1.1.1", port: 53 } }]),
    message: "must be an IPv4 or IPv6 address",
  },
];

export interface UpdateCase {
  what: string;
  before: Obj;
  after: Obj;
  message: string;
}

const tunnelId = "6ff42ae2-765d-4adf-8112-31c55c1551ef";
const otherTunnelId = "0e5e6a8c-1f57-4d0b-9a3e-2d1c9c7f4b21";
const EXISTING_ID_IMMUTABLE = "spec.cloudflare.existingTunnelId: Invalid value: existingTunnelId is immutable (it cannot be added, changed or removed after creation): create a new Tunnel to adopt a different Cloudflare tunnel";

export const UPDATE_CASES: UpdateCase[] = [
  {
    what: "provider type changed",
    before: provider({ type: "edge", edge: { sshSecretRef: { name: "vps-ssh" }, envoy: PINNED_ENVOY } }, "immutable-type"),
    after: provider({ type: "cloudflare", cloudflare }, "immutable-type"),
    message: "spec.type is immutable",
  },
  {
    what: "tunnel moved to another provider",
    before: tunnel({ providerRef: { name: "a" } }, "immutable-provider"),
    after: tunnel({ providerRef: { name: "b" } }, "immutable-provider"),
    message: "spec.providerRef is immutable",
  },
  {
    what: "adopted tunnel id changed",
    before: tunnel({ providerRef: { name: "p" }, cloudflare: { existingTunnelId: tunnelId } }, "adopt-changed"),
    after: tunnel({ providerRef: { name: "p" }, cloudflare: { existingTunnelId: otherTunnelId } }, "adopt-changed"),
    message: EXISTING_ID_IMMUTABLE,
  },
  {
    what: "adopted tunnel id removed",
    before: tunnel({ providerRef: { name: "p" }, cloudflare: { existingTunnelId: tunnelId } }, "adopt-removed"),
    after: tunnel({ providerRef: { name: "p" }, cloudflare: { replicas: 2 } }, "adopt-removed"),
    message: EXISTING_ID_IMMUTABLE,
  },
  {
    what: "adopted tunnel id removed with the whole cloudflare block",
    before: tunnel({ providerRef: { name: "p" }, cloudflare: { existingTunnelId: tunnelId } }, "adopt-block-removed"),
    after: tunnel({ providerRef: { name: "p" } }, "adopt-block-removed"),
    message: EXISTING_ID_IMMUTABLE,
  },
  {
    what: "adopted tunnel id added after creation",
    before: tunnel({ providerRef: { name: "p" }, cloudflare: { replicas: 2 } }, "adopt-added"),
    after: tunnel({ providerRef: { name: "p" }, cloudflare: { replicas: 2, existingTunnelId: tunnelId } }, "adopt-added"),
    message: EXISTING_ID_IMMUTABLE,
  },
  {
    what: "adopted tunnel id added with a new cloudflare block",
    before: tunnel({ providerRef: { name: "p" } }, "adopt-block-added"),
    after: tunnel({ providerRef: { name: "p" }, cloudflare: { existingTunnelId: tunnelId } }, "adopt-block-added"),
    message: EXISTING_ID_IMMUTABLE,
  },
];

/** Updates next to the immutable fields that must still go through. */
export const ALLOWED_UPDATE_CASES: Array<Omit<UpdateCase, "message">> = [
  {
    what: "adopted tunnel scaled",
    before: tunnel({ providerRef: { name: "p" }, cloudflare: { existingTunnelId: tunnelId, replicas: 2 } }, "adopt-scaled"),
    after: tunnel({ providerRef: { name: "p" }, cloudflare: { existingTunnelId: tunnelId, replicas: 3 } }, "adopt-scaled"),
  },
  {
    what: "created tunnel scaled and given allowed hostnames",
    before: tunnel({ providerRef: { name: "p" }, cloudflare: { replicas: 2 } }, "created-scaled"),
    after: tunnel(
      { providerRef: { name: "p" }, allowedBindings: { hostnames: ["shop.example.com", "*.apps.example.com"] }, cloudflare: { replicas: 3 } },
      "created-scaled",
    ),
  },
  {
    what: "tunnel of another provider type given a block",
    before: tunnel({ providerRef: { name: "p" } }, "other-provider"),
    after: tunnel({ providerRef: { name: "p" }, ngrok: { replicas: 2 } }, "other-provider"),
  },
];

export const toYaml = (object: Obj): string => stringify(object);
