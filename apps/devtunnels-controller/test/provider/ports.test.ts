import { describe, expect, it } from "@jest/globals";
import type { Route } from "@ktube/api";
import type { AcceptedBinding } from "@ktube/provider-kit";
import { devTunnelId, ownerLabel, routeLabel, tunnelLabel } from "../../src/provider/identity.ts";
import { planPorts } from "../../src/provider/ports.ts";

function binding(name: string, routes: Array<Partial<Route> & { name: string; port?: number }>): AcceptedBinding {
  return {
    binding: { metadata: { namespace: "dev", name, uid: `${name}-uid` }, spec: { tunnelRef: { name: "t" }, routes: [] } },
    routes: routes.map(({ port = 80, ...r }) => ({ route: { protocol: "HTTP", service: { name: "svc", port }, ...r } as Route, host: `svc.dev.svc.cluster.local`, port })),
  } as unknown as AcceptedBinding;
}

describe("planPorts", () => {
  it("takes the route's listenPort, else the Service's port, else the lowest free from 8000", () => {
    const { ports, refused } = planPorts([binding("a", [{ name: "web" }, { name: "api", listenPort: 80 }, { name: "other" }]), binding("b", [{ name: "ui", port: 3000 }])], () => undefined);
    expect(refused).toEqual([]);
    expect(ports.map((p) => [p.key, p.port])).toEqual([
      ["dev/a/api", 80],
      ["dev/b/ui", 3000],
      ["dev/a/web", 8000],
      ["dev/a/other", 8001],
    ]);
  });

  it("keeps the port a route already has, so its URL does not move", () => {
    const recorded = new Map([["dev/a/web", 8005]]);
    const { ports } = planPorts([binding("a", [{ name: "web" }])], (key) => recorded.get(key));
    expect(ports[0]!.port).toBe(8005);
  });

  it("refuses the routes past the port limit, the youngest bindings' first, with a reason", () => {
    const many = Array.from({ length: 11 }, (_, i) => binding(`b${String(i).padStart(2, "0")}`, [{ name: "web", port: 9000 + i }]));
    const { ports, refused } = planPorts(many, () => undefined, 10);
    expect(ports).toHaveLength(10);
    expect(refused).toEqual([{ key: "dev/b10/web", outcome: expect.objectContaining({ ready: false, reason: "PortLimitExceeded" }) }]);
  });

  it("maps HTTPS routes to https ports (the backend speaks TLS)", () => {
    const { ports } = planPorts([binding("a", [{ name: "secure", protocol: "HTTPS", port: 8443 }])], () => undefined);
    expect(ports[0]).toMatchObject({ port: 8443, protocol: "https", upstream: "svc.dev.svc.cluster.local:8443" });
  });
});

describe("dev tunnel identity", () => {
  it("is deterministic per Tunnel uid, valid for the service, and names nothing in clear", () => {
    const id = devTunnelId("default", "4f1c2b9e-0000-4000-8000-000000000001");
    expect(id).toBe(devTunnelId("default", "4f1c2b9e-0000-4000-8000-000000000001"));
    expect(id).not.toBe(devTunnelId("other", "4f1c2b9e-0000-4000-8000-000000000001"));
    expect(id).toMatch(/^[a-z0-9][a-z0-9-]{1,47}[a-z0-9]$/);
    for (const label of [ownerLabel("default"), tunnelLabel("4f1c2b9e-0000-4000-8000-000000000001"), routeLabel("dev/a/web")]) {
      expect(label).toMatch(/^[\w\-=]{1,50}$/);
      expect(label).not.toContain("dev/a");
    }
  });
});
