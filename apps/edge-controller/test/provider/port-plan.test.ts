// Which routes the VPS serves on which public port, and which lose a port to an older binding.
import { describe, expect, it } from "@jest/globals";
import { EdgeTunnelSpec, type Route } from "@ktube/api";
import type { AcceptedBinding } from "@ktube/provider-kit";
import { listenPortOf, planPorts, publicUrl, TUNNEL_PORT_FIRST } from "../../src/provider/port-plan.ts";

const edge = EdgeTunnelSpec.parse({ address: "203.0.113.7", listenPorts: [{ from: 80 }, { from: 443 }, { from: 5353 }, { from: 9000, to: 9010 }] });

const binding = (name: string, routes: Array<Partial<Route> & { name: string; protocol: Route["protocol"] }>, namespace = "team"): AcceptedBinding => ({
  binding: { apiVersion: "ktube.dev/v1alpha1", kind: "TunnelBinding", metadata: { name, namespace, uid: `uid-${name}` }, spec: { tunnelRef: { name: "edge" }, routes: [] } } as never,
  routes: routes.map((route) => ({ route: route as Route, host: `${name}.${namespace}.svc.cluster.local`, port: 8080 })),
});

const none = (): undefined => undefined;
const ADMIN = { envoyAdminPort: 9901 };

describe("planPorts", () => {
  it("serves TCP, UDP, SNI fan-out and HTTP on their ports, each route with its own tunnel port", () => {
    const plan = planPorts(
      edge,
      [
        binding("a", [
          { name: "ssh", protocol: "TCP", listenPort: 9000 },
          { name: "dns", protocol: "UDP", listenPort: 5353, udp: { sessionTimeout: "90s" } },
          { name: "web", protocol: "TLS", hostname: "a.example.com" },
          { name: "plain", protocol: "HTTP", hostname: "a.example.com", path: "/api" },
        ]),
        binding("b", [{ name: "web", protocol: "HTTPS", hostname: "b.example.com", tls: { mode: "offload", secretRef: { name: "b-tls" } } }]),
      ],
      none, ADMIN);
    expect(plan.refused).toEqual([]);
    expect(plan.routes.map((r) => [r.key, r.protocol, r.listenPort, r.tunnelPort])).toEqual([
      ["team/a/ssh", "TCP", 9000, TUNNEL_PORT_FIRST],
      ["team/a/dns", "UDP", 5353, TUNNEL_PORT_FIRST + 1],
      ["team/a/web", "TLS", 443, TUNNEL_PORT_FIRST + 2],
      ["team/a/plain", "HTTP", 80, TUNNEL_PORT_FIRST + 3],
      ["team/b/web", "HTTPS", 443, TUNNEL_PORT_FIRST + 4],
    ]);
    expect(plan.routes[1]!.udpSessionTimeoutSeconds).toBe(90);
    expect(plan.routes[4]!.tls).toEqual({ mode: "offload", secret: "team.b-tls" });
    expect(plan.secrets).toEqual([{ name: "team.b-tls", namespace: "team", secret: "b-tls", mutual: false }]);
  });

  it("gives a port serving one kind to the older binding; a younger route of another kind gets ListenPortConflict", () => {
    const plan = planPorts(
      edge,
      [binding("old", [{ name: "raw", protocol: "TCP", listenPort: 443 }]), binding("young", [{ name: "web", protocol: "TLS", hostname: "y.example.com" }])],
      none, ADMIN);
    expect(plan.routes.map((r) => r.key)).toEqual(["team/old/raw"]);
    expect(plan.refused).toEqual([
      { key: "team/young/web", outcome: { ready: false, reason: "ListenPortConflict", message: "route web: port TCP/443 already serves TCP routes of team/old, which is older" } },
    ]);
  });

  it("refuses the WireGuard, SSH and Envoy admin ports and ports outside listenPorts, and TCP without a port", () => {
    // Admission keeps listenPorts away from these ports; the plan checks again all the same.
    const plan = planPorts(
      { ...edge, listenPorts: [{ from: 1, to: 65535 }] },
      [
        binding("a", [
          { name: "wg", protocol: "UDP", listenPort: 51821 },
          { name: "ssh", protocol: "TCP", listenPort: 22 },
          { name: "raw", protocol: "TCP" },
          { name: "admin", protocol: "TCP", listenPort: 9901 },
        ]),
      ],
      none, ADMIN);
    expect(plan.refused.map((r) => [r.key, r.outcome.reason, r.outcome.message])).toEqual([
      ["team/a/wg", "ListenPortConflict", "route wg: 51821/UDP is the tunnel's WireGuard port"],
      ["team/a/ssh", "ListenPortConflict", "route ssh: 22/TCP is the VPS's SSH port"],
      ["team/a/raw", "ListenPortRequired", "route raw: a TCP route on the edge needs listenPort"],
      ["team/a/admin", "ListenPortConflict", "route admin: 9901/TCP is Envoy's admin port on the VPS"],
    ]);
    const outside = planPorts(edge, [binding("a", [{ name: "x", protocol: "TCP", listenPort: 8080 }])], none, ADMIN);
    expect(outside.refused[0]!.outcome).toMatchObject({ reason: "ListenPortNotAllowed", message: "route x: port 8080 is not one of the tunnel's listenPorts (80, 443, 5353, 9000-9010)" });
  });

  it("keeps each route's recorded tunnel port when others come and go", () => {
    const recorded = new Map([["team/b/r", TUNNEL_PORT_FIRST + 7]]);
    const plan = planPorts(
      edge,
      [binding("a", [{ name: "r", protocol: "TCP", listenPort: 9001 }]), binding("b", [{ name: "r", protocol: "TCP", listenPort: 9002 }])],
      (key) => recorded.get(key), ADMIN);
    expect(plan.routes.map((r) => [r.key, r.tunnelPort])).toEqual([
      ["team/a/r", TUNNEL_PORT_FIRST],
      ["team/b/r", TUNNEL_PORT_FIRST + 7],
    ]);
  });

  it("marks a Secret used by a mutual route as needing its CA", () => {
    const plan = planPorts(
      edge,
      [binding("a", [{ name: "m", protocol: "TLS", hostname: "m.example.com", tls: { mode: "mutual", secretRef: { name: "certs" } } }])],
      none, ADMIN);
    expect(plan.secrets).toEqual([{ name: "team.certs", namespace: "team", secret: "certs", mutual: true }]);
  });
});

describe("listenPortOf and publicUrl", () => {
  it("defaults HTTP to 80 and TLS/HTTPS to 443, and writes URLs people can use", () => {
    expect(listenPortOf({ name: "h", protocol: "HTTP" } as Route)).toBe(80);
    expect(listenPortOf({ name: "t", protocol: "TLS" } as Route)).toBe(443);
    expect(listenPortOf({ name: "t", protocol: "TCP" } as Route)).toBeUndefined();
    const base = { key: "k", tunnelPort: 20000 };
    expect(publicUrl("203.0.113.7", { ...base, protocol: "HTTPS", listenPort: 443, hostname: "a.example.com" })).toBe("https://a.example.com");
    expect(publicUrl("203.0.113.7", { ...base, protocol: "HTTP", listenPort: 8080, hostname: "a.example.com", path: "/api" })).toBe("http://a.example.com:8080/api");
    expect(publicUrl("203.0.113.7", { ...base, protocol: "TCP", listenPort: 9000 })).toBe("tcp://203.0.113.7:9000");
    expect(publicUrl("203.0.113.7", { ...base, protocol: "UDP", listenPort: 5353 })).toBe("udp://203.0.113.7:5353");
  });
});
