// Tunnels, bindings and capabilities for routing tests. Bindings get increasing
// creation times in the order they are made, unless a test gives one.
import type { Route, Tunnel, TunnelBinding } from "@ktube/api";
import type { ProviderCapabilities, ServiceLike, TunnelView } from "../src/index.ts";

/** Cloudflare's capabilities, as its plugin declares them. */
export const cloudflare: ProviderCapabilities = {
  provider: "Cloudflare",
  protocols: ["HTTP", "HTTPS", "TCP"],
  hostnameRequired: ["HTTP", "HTTPS", "TCP"],
  unsupportedFields: ["listenPort", "tls", "proxyProtocol", "udp"],
  addressTargets: false,
  wholeHostnameProtocols: ["TCP"],
};

/** An edge-like provider: listen ports are claims of their own, hostnames optional. */
export const edge: ProviderCapabilities = {
  provider: "Edge",
  protocols: ["HTTP", "HTTPS", "TCP", "UDP", "TLS"],
  hostnameRequired: ["HTTP", "HTTPS"],
  unsupportedFields: ["access", "originRequest"],
  addressTargets: true,
  wholeHostnameProtocols: [],
  extraClaims: (route) => (route.listenPort !== undefined && route.protocol !== "TLS" ? [`listen port ${route.listenPort}/${route.protocol === "UDP" ? "UDP" : "TCP"}`] : []),
};

interface TunnelOptions {
  from?: "Same" | "All" | "Selector";
  selector?: Tunnel["spec"]["allowedBindings"]["namespaces"]["selector"];
  hostnames?: string[];
}

export const tunnel = ({ from = "Same", selector, hostnames }: TunnelOptions = {}): Tunnel => ({
  apiVersion: "ktube.dev/v1alpha1",
  kind: "Tunnel",
  metadata: { name: "home", namespace: "platform" },
  spec: {
    providerRef: { name: "cf" },
    allowedBindings: { namespaces: { from, ...(selector ? { selector } : {}) }, ...(hostnames ? { hostnames } : {}) },
  },
});

let clock = 0;
const nextTimestamp = (): string => new Date(Date.UTC(2026, 0, 1) + 1000 * clock++).toISOString().replace(/\.\d{3}Z$/, "Z");

export const binding = (ns: string, name: string, routes: Array<Partial<Route>>, created?: string): TunnelBinding => ({
  apiVersion: "ktube.dev/v1alpha1",
  kind: "TunnelBinding",
  metadata: { name, namespace: ns, creationTimestamp: created ?? nextTimestamp() },
  spec: {
    tunnelRef: { name: "home", namespace: "platform" },
    routes: routes.map((r): Route => ({ name: "web", protocol: "HTTP", service: { name: "web", port: "http" }, ...r })),
  },
});

export const services: Record<string, ServiceLike> = {
  "shop/web": { spec: { ports: [{ name: "http", port: 8080 }, { name: "admin", port: 9090 }] } },
  "platform/web": { spec: { ports: [{ name: "http", port: 80 }] } },
};
const namespaces: Record<string, { metadata: { labels: Record<string, string> } }> = {
  shop: { metadata: { labels: { team: "shop" } } },
  other: { metadata: { labels: { team: "other" } } },
  platform: { metadata: { labels: {} } },
};

export const view = (t: Tunnel, bindings: TunnelBinding[]): TunnelView => ({
  tunnel: t,
  bindings,
  services: (ns, name) => services[`${ns}/${name}`],
  namespaces: (name) => namespaces[name],
});
