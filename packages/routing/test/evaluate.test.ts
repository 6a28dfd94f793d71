import { describe, expect, it } from "@jest/globals";
import { byAge, evaluateTunnel } from "../src/index.ts";
import { binding, cloudflare as caps, tunnel, view } from "./fixtures.ts";

describe("evaluateTunnel", () => {
  it("resolves named and numbered ports to the Service's in-cluster address", () => {
    const b = binding("platform", "a", [{ hostname: "a.example.com" }, { name: "num", hostname: "b.example.com", service: { name: "web", port: 80 } }]);
    const v = evaluateTunnel(view(tunnel(), [b]), caps).get("platform/a")!;
    expect(v.accepted).toEqual({ status: "True", reason: "Accepted", message: "bound to Tunnel platform/home" });
    expect(v.resolvedRefs.status).toBe("True");
    expect(v.routes.map((r) => r.resolved && `${r.resolved.host}:${r.resolved.port}`)).toEqual([
      "web.platform.svc.cluster.local:80",
      "web.platform.svc.cluster.local:80",
    ]);
  });

  it("admits other namespaces only as allowedBindings says", () => {
    const b = binding("shop", "s", [{ hostname: "s.example.com" }]);
    expect(evaluateTunnel(view(tunnel({ from: "Same" }), [b]), caps).get("shop/s")!.accepted).toMatchObject({ status: "False", reason: "NotAllowedByTunnel" });
    expect(evaluateTunnel(view(tunnel({ from: "All" }), [b]), caps).get("shop/s")!.accepted.status).toBe("True");
    const sel = tunnel({ from: "Selector", selector: { matchLabels: { team: "shop" } } });
    expect(evaluateTunnel(view(sel, [b]), caps).get("shop/s")!.accepted.status).toBe("True");
    const o = binding("other", "o", [{ hostname: "o.example.com" }]);
    expect(evaluateTunnel(view(sel, [o]), caps).get("other/o")!.accepted.message).toContain("does not match the namespace selector");
  });

  it("reports a missing Service or port without dropping the binding's claims", () => {
    const missing = binding("shop", "m", [{ hostname: "m.example.com", service: { name: "nope", port: 80 } }, { name: "p", hostname: "p.example.com", service: { name: "web", port: "grpc" } }]);
    const younger = binding("shop", "younger", [{ hostname: "m.example.com" }]);
    const v = evaluateTunnel(view(tunnel({ from: "All" }), [missing, younger]), caps);
    expect(v.get("shop/m")!.accepted.status).toBe("True");
    expect(v.get("shop/m")!.resolvedRefs).toMatchObject({ status: "False", reason: "ServiceNotFound" });
    expect(v.get("shop/m")!.resolvedRefs.message).toContain("Service shop/nope not found");
    expect(v.get("shop/m")!.resolvedRefs.message).toContain("has no port grpc (ports: http/8080, admin/9090)");
    expect(v.get("shop/younger")!.accepted.reason).toBe("Conflict");
  });

  it("gives a contested hostname+path to the older binding and names the holder", () => {
    const older = binding("shop", "older", [{ hostname: "x.example.com" }], "2026-01-01T00:00:00Z");
    const newer = binding("shop", "newer", [{ hostname: "x.example.com" }], "2026-01-02T00:00:00Z");
    const v = evaluateTunnel(view(tunnel({ from: "All" }), [newer, older]), caps);
    expect(v.get("shop/older")!.accepted.status).toBe("True");
    expect(v.get("shop/newer")!.accepted).toEqual({
      status: "False",
      reason: "Conflict",
      message: "route web: x.example.com/ is held by TunnelBinding shop/older (route web); the older binding keeps its claims",
    });
    expect(v.get("shop/newer")!.resolvedRefs).toMatchObject({ status: "Unknown", reason: "NotEvaluated" });
    expect(v.get("shop/newer")!.routes).toEqual([]);
    // The same path on another hostname, or another path of the same hostname from the same namespace, is no conflict.
    const otherPath = binding("shop", "api", [{ hostname: "x.example.com", path: "/api" }]);
    const otherHost = binding("platform", "y", [{ hostname: "y.example.com" }]);
    const w = evaluateTunnel(view(tunnel({ from: "All" }), [older, otherPath, otherHost]), caps);
    expect(w.get("shop/api")!.accepted.status).toBe("True");
    expect(w.get("platform/y")!.accepted.status).toBe("True");
  });

  it("breaks creation-time ties by namespace/name", () => {
    const t = "2026-01-01T00:00:00Z";
    const v = evaluateTunnel(view(tunnel({ from: "All" }), [binding("shop", "b", [{ hostname: "t.example.com" }], t), binding("shop", "a", [{ hostname: "t.example.com" }], t)]), caps);
    expect(v.get("shop/a")!.accepted.status).toBe("True");
    expect(v.get("shop/b")!.accepted.reason).toBe("Conflict");
  });

  it("keeps a same-second tie with the binding already accepted, whatever the newcomer's name", () => {
    const t = "2026-01-01T00:00:00Z";
    const holder = { ...binding("shop", "b", [{ hostname: "t.example.com" }], t), status: { conditions: [{ type: "Accepted", status: "True" as const, reason: "Accepted", message: "", lastTransitionTime: t }] } };
    const newcomer = binding("shop", "a", [{ hostname: "t.example.com" }], t);
    const v = evaluateTunnel(view(tunnel({ from: "All" }), [newcomer, holder]), caps);
    expect(v.get("shop/b")!.accepted.status).toBe("True");
    expect(v.get("shop/a")!.accepted.reason).toBe("Conflict");
  });

  it("orders by creation time whether metadata carries strings or Dates", () => {
    const sorted = [
      binding("shop", "c", [], "2026-03-01T00:00:00Z"),
      binding("shop", "b", [], "2026-02-01T00:00:00Z"),
      { ...binding("shop", "a", []), metadata: { name: "a", namespace: "shop", creationTimestamp: new Date("2026-01-15T00:00:00Z") } },
      { ...binding("shop", "d", []), metadata: { name: "d", namespace: "shop", creationTimestamp: new Date("2026-12-01T00:00:00Z") } },
    ].sort(byAge);
    expect(sorted.map((b) => b.metadata.name)).toEqual(["a", "b", "c", "d"]);
  });

  it("lets a rejected binding hold nothing", () => {
    const first = binding("shop", "first", [{ hostname: "a.example.com" }]);
    const loser = binding("shop", "loser", [{ hostname: "a.example.com" }, { name: "b", hostname: "b.example.com" }]);
    const third = binding("shop", "third", [{ hostname: "b.example.com" }]);
    const v = evaluateTunnel(view(tunnel({ from: "All" }), [first, loser, third]), caps);
    expect(v.get("shop/loser")!.accepted.reason).toBe("Conflict");
    expect(v.get("shop/third")!.accepted.status).toBe("True");
  });

  it("refuses what the provider cannot carry", () => {
    const udp = binding("platform", "u", [{ protocol: "UDP", service: { name: "web", port: 80 } }]);
    expect(evaluateTunnel(view(tunnel(), [udp]), caps).get("platform/u")!.accepted).toMatchObject({ status: "False", reason: "UnsupportedProtocol" });
    const noHost = binding("platform", "n", [{}]);
    expect(evaluateTunnel(view(tunnel(), [noHost]), caps).get("platform/n")!.accepted.reason).toBe("HostnameRequired");
    const port = binding("platform", "l", [{ hostname: "l.example.com", listenPort: 443 }]);
    expect(evaluateTunnel(view(tunnel(), [port]), caps).get("platform/l")!.accepted.message).toContain("Cloudflare does not support listenPort");
    const address = binding("platform", "ip", [{ hostname: "ip.example.com", service: undefined, address: { ip: "10.0.0.1", port: 80 } }]);
    expect(evaluateTunnel(view(tunnel(), [address]), caps).get("platform/ip")!.accepted.reason).toBe("AddressTargetNotAllowed");
  });

  it("ignores bindings of other tunnels and bindings being deleted", () => {
    const elsewhere = { ...binding("platform", "e", [{ hostname: "e.example.com" }]) };
    elsewhere.spec = { ...elsewhere.spec, tunnelRef: { name: "other" } };
    const deleting = binding("platform", "d", [{ hostname: "d.example.com" }]);
    deleting.metadata.deletionTimestamp = "2026-01-01T00:00:00Z";
    expect([...evaluateTunnel(view(tunnel(), [elsewhere, deleting]), caps).keys()]).toEqual([]);
  });

  it("does not depend on the order bindings are listed in", () => {
    const bindings = [
      binding("shop", "a", [{ hostname: "x.example.com" }, { name: "tcp", protocol: "TCP", hostname: "ssh.example.com" }]),
      binding("other", "b", [{ hostname: "x.example.com", path: "/api" }]),
      binding("shop", "c", [{ hostname: "ssh.example.com", path: "/web" }]),
      binding("shop", "d", [{ hostname: "x.example.com", path: "/api/" }]),
    ];
    const summary = (list: typeof bindings) =>
      Object.fromEntries([...evaluateTunnel(view(tunnel({ from: "All" }), list), caps)].map(([k, v]) => [k, v.accepted]));
    expect(summary([...bindings].reverse())).toEqual(summary(bindings));
    expect(Object.values(summary(bindings)).map((a) => a.reason)).toEqual(["Accepted", "Conflict", "Conflict", "Accepted"]);
  });
});
