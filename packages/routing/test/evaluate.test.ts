import { describe, expect, it } from "@jest/globals";
import type { Route, Tunnel, TunnelBinding } from "@ktube/api";
import { evaluateTunnel, type ProviderCapabilities, type ServiceLike } from "../src/index.ts";

const caps: ProviderCapabilities = {
  provider: "cloudflare",
  protocols: ["HTTP", "HTTPS", "TCP"],
  hostnameRequired: ["HTTP", "HTTPS", "TCP"],
  unsupportedFields: ["listenPort", "tls", "udp", "proxyProtocol"],
  addressTargets: false,
  claimKey: (r) => (r.hostname ? `${r.hostname}${r.path ?? "/"}` : undefined),
};

const tunnel = (from: "Same" | "All" | "Selector" = "Same", selector?: object): Tunnel =>
  ({
    apiVersion: "ktube.dev/v1alpha1",
    kind: "Tunnel",
    metadata: { name: "home", namespace: "platform" },
    spec: { providerRef: { name: "cf" }, allowedBindings: { namespaces: { from, ...(selector ? { selector } : {}) } } },
  }) as Tunnel;

let clock = 0;
const binding = (ns: string, name: string, routes: Array<Partial<Route>>, created?: string): TunnelBinding => ({
  apiVersion: "ktube.dev/v1alpha1",
  kind: "TunnelBinding",
  metadata: { name, namespace: ns, creationTimestamp: created ?? `2026-01-01T00:00:${String(clock++).padStart(2, "0")}Z` },
  spec: {
    tunnelRef: { name: "home", namespace: "platform" },
    routes: routes.map((r) => ({ name: "web", protocol: "HTTP", service: { name: "web", port: "http" }, ...r }) as Route),
  },
});

const services: Record<string, ServiceLike> = {
  "shop/web": { spec: { ports: [{ name: "http", port: 8080 }, { name: "admin", port: 9090 }] } },
  "platform/web": { spec: { ports: [{ name: "http", port: 80 }] } },
};
const namespaces: Record<string, { metadata: { labels: Record<string, string> } }> = {
  shop: { metadata: { labels: { team: "shop" } } },
  other: { metadata: { labels: { team: "other" } } },
  platform: { metadata: { labels: {} } },
};
const view = (t: Tunnel, bindings: TunnelBinding[]) => ({
  tunnel: t,
  bindings,
  services: (ns: string, name: string) => services[`${ns}/${name}`],
  namespaces: (name: string) => namespaces[name],
});

describe("evaluateTunnel", () => {
  it("resolves named and numbered ports to the Service's in-cluster address", () => {
    const b = binding("platform", "a", [{ hostname: "a.example.com" }, { name: "num", hostname: "b.example.com", service: { name: "web", port: 80 } }]);
    const v = evaluateTunnel(view(tunnel(), [b]), caps).get("platform/a")!;
    expect(v.accepted.status).toBe("True");
    expect(v.resolvedRefs.status).toBe("True");
    expect(v.routes.map((r) => r.resolved && `${r.resolved.host}:${r.resolved.port}`)).toEqual([
      "web.platform.svc.cluster.local:80",
      "web.platform.svc.cluster.local:80",
    ]);
  });

  it("admits other namespaces only as allowedBindings says", () => {
    const b = binding("shop", "s", [{ hostname: "s.example.com" }]);
    expect(evaluateTunnel(view(tunnel("Same"), [b]), caps).get("shop/s")!.accepted).toMatchObject({ status: "False", reason: "NotAllowedByTunnel" });
    expect(evaluateTunnel(view(tunnel("All"), [b]), caps).get("shop/s")!.accepted.status).toBe("True");
    const sel = tunnel("Selector", { matchLabels: { team: "shop" } });
    expect(evaluateTunnel(view(sel, [b]), caps).get("shop/s")!.accepted.status).toBe("True");
    const o = binding("other", "o", [{ hostname: "o.example.com" }]);
    expect(evaluateTunnel(view(sel, [o]), caps).get("other/o")!.accepted.message).toContain("does not match the namespace selector");
  });

  it("reports a missing Service or port without dropping the binding's claims", () => {
    const missing = binding("shop", "m", [{ hostname: "m.example.com", service: { name: "nope", port: 80 } }, { name: "p", hostname: "p.example.com", service: { name: "web", port: "grpc" } }]);
    const v = evaluateTunnel(view(tunnel("All"), [missing]), caps).get("shop/m")!;
    expect(v.accepted.status).toBe("True");
    expect(v.resolvedRefs).toMatchObject({ status: "False", reason: "ServiceNotFound" });
    expect(v.resolvedRefs.message).toContain("Service shop/nope not found");
    expect(v.resolvedRefs.message).toContain("has no port grpc (ports: http/8080, admin/9090)");
  });

  it("gives a contested hostname to the older binding and names the winner", () => {
    const older = binding("shop", "older", [{ hostname: "x.example.com" }], "2026-01-01T00:00:00Z");
    const newer = binding("platform", "newer", [{ hostname: "x.example.com" }], "2026-01-02T00:00:00Z");
    const v = evaluateTunnel(view(tunnel("All"), [newer, older]), caps);
    expect(v.get("shop/older")!.accepted.status).toBe("True");
    expect(v.get("platform/newer")!.accepted).toMatchObject({ status: "False", reason: "Conflict" });
    expect(v.get("platform/newer")!.accepted.message).toContain("held by TunnelBinding shop/older");
    expect(v.get("platform/newer")!.resolvedRefs).toMatchObject({ status: "Unknown", reason: "NotEvaluated" });
    // Same path on another hostname, or another path on the same hostname, is no conflict.
    const otherPath = binding("platform", "api", [{ hostname: "x.example.com", path: "/api" }]);
    expect(evaluateTunnel(view(tunnel("All"), [older, otherPath]), caps).get("platform/api")!.accepted.status).toBe("True");
  });

  it("breaks creation-time ties by namespace/name", () => {
    const t = "2026-01-01T00:00:00Z";
    const v = evaluateTunnel(view(tunnel("All"), [binding("shop", "b", [{ hostname: "t.example.com" }], t), binding("shop", "a", [{ hostname: "t.example.com" }], t)]), caps);
    expect(v.get("shop/a")!.accepted.status).toBe("True");
    expect(v.get("shop/b")!.accepted.reason).toBe("Conflict");
  });

  it("lets a rejected binding hold nothing", () => {
    const first = binding("shop", "first", [{ hostname: "a.example.com" }]);
    const loser = binding("shop", "loser", [{ hostname: "a.example.com" }, { name: "b", hostname: "b.example.com" }]);
    const third = binding("shop", "third", [{ hostname: "b.example.com" }]);
    const v = evaluateTunnel(view(tunnel("All"), [first, loser, third]), caps);
    expect(v.get("shop/loser")!.accepted.reason).toBe("Conflict");
    expect(v.get("shop/third")!.accepted.status).toBe("True");
  });

  it("refuses what the provider cannot carry", () => {
    const udp = binding("platform", "u", [{ protocol: "UDP", service: { name: "web", port: 80 } }]);
    expect(evaluateTunnel(view(tunnel(), [udp]), caps).get("platform/u")!.accepted).toMatchObject({ status: "False", reason: "UnsupportedProtocol" });
    const noHost = binding("platform", "n", [{}]);
    expect(evaluateTunnel(view(tunnel(), [noHost]), caps).get("platform/n")!.accepted.reason).toBe("HostnameRequired");
    const port = binding("platform", "l", [{ hostname: "l.example.com", listenPort: 443 }]);
    expect(evaluateTunnel(view(tunnel(), [port]), caps).get("platform/l")!.accepted.message).toContain("does not support listenPort");
  });

  it("ignores bindings of other tunnels and bindings being deleted", () => {
    const elsewhere = { ...binding("platform", "e", [{ hostname: "e.example.com" }]) };
    elsewhere.spec = { ...elsewhere.spec, tunnelRef: { name: "other" } };
    const deleting = binding("platform", "d", [{ hostname: "d.example.com" }]);
    deleting.metadata.deletionTimestamp = "2026-01-01T00:00:00Z";
    expect([...evaluateTunnel(view(tunnel(), [elsewhere, deleting]), caps).keys()]).toEqual([]);
  });
});
