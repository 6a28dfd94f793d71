import { describe, expect, it } from "@jest/globals";
import type { Route } from "@ktube/api";
import type { AcceptedBinding } from "@ktube/provider-kit";
import { planRouteTable, routeUrl } from "../../src/provider/route-table.ts";

function binding(namespace: string, name: string, routes: Array<Partial<Route> & { name: string }>, port = 80): AcceptedBinding {
  return {
    binding: { apiVersion: "ktube.dev/v1alpha1", kind: "TunnelBinding", metadata: { namespace, name, uid: `${name}-uid` }, spec: { tunnelRef: { name: "t" }, routes: [] } },
    routes: routes.map((r) => ({ route: { protocol: "HTTP", service: { name: "svc", port }, ...r } as Route, host: `svc.${namespace}.svc.cluster.local`, port })),
  } as unknown as AcceptedBinding;
}

describe("planRouteTable", () => {
  it("gives a hostname one pooled endpoint and routes its paths longest first", () => {
    const { table, refused } = planRouteTable("uid-1", [
      binding("shop", "web", [{ name: "root", hostname: "shop.example.com" }]),
      binding("shop", "api", [{ name: "api", hostname: "shop.example.com", path: "/api", protocol: "HTTPS" }], 8443),
    ], { pooling: true, reservedAddress: null });
    expect(refused).toEqual([]);
    expect(table.endpoints).toHaveLength(1);
    const [endpoint] = table.endpoints;
    expect(endpoint).toMatchObject({ id: "https://shop.example.com", proto: "http", domain: "shop.example.com", pooling: true });
    expect(endpoint!.routes.map((r) => [r.key, r.path, r.upstream])).toEqual([
      ["shop/api/api", "/api", "https://svc.shop.svc.cluster.local:8443"],
      ["shop/web/root", "/", "http://svc.shop.svc.cluster.local:80"],
    ]);
    expect(routeUrl(endpoint!, endpoint!.routes[0]!, undefined)).toBe("https://shop.example.com/api");
  });

  it("keeps the dev domain for the oldest hostname-less route and refuses the next with a reason", () => {
    const { table, refused } = planRouteTable("uid-1", [binding("a", "first", [{ name: "web" }]), binding("b", "second", [{ name: "web" }])], { pooling: true, reservedAddress: null });
    expect(table.endpoints.map((e) => e.id)).toEqual(["http:"]);
    expect(refused).toEqual([{ key: "b/second/web", outcome: expect.objectContaining({ ready: false, reason: "Conflict" }) }]);
    expect(refused[0]!.outcome.message).toContain("a/first/web");
  });

  it("binds TCP on a random address unpooled, and refuses a TCP hostname or a terminated TLS route", () => {
    const { table, refused } = planRouteTable("uid-1", [
      binding("db", "pg", [{ name: "pg", protocol: "TCP", proxyProtocol: "v2" }], 5432),
      binding("db", "named", [{ name: "x", protocol: "TCP", hostname: "db.example.com" }], 5432),
      binding("db", "tls", [{ name: "y", protocol: "TLS", hostname: "t.example.com", tls: { mode: "offload", secretRef: { name: "s" } } } as Partial<Route> & { name: string }], 443),
    ], { pooling: true, reservedAddress: null });
    expect(table.endpoints).toEqual([expect.objectContaining({ id: "tcp:db/pg/pg", proto: "tcp", pooling: false, proxyProto: "2" })]);
    expect(refused.map((r) => [r.key, r.outcome.reason])).toEqual([
      ["db/named/x", "UnsupportedField"],
      ["db/tls/y", "UnsupportedField"],
    ]);
  });

  it("binds a TCP route on its reserved address, pooled, and holds it back while the address is being reserved", () => {
    const reserved = new Map([["db/pg/pg", "1.tcp.ngrok.io:21746"]]);
    const { table, refused } = planRouteTable("uid-1", [
      binding("db", "pg", [{ name: "pg", protocol: "TCP" }], 5432),
      binding("db", "new", [{ name: "pg", protocol: "TCP" }], 5432),
    ], { pooling: true, reservedAddress: (key) => reserved.get(key) });
    expect(table.endpoints).toEqual([expect.objectContaining({ id: "tcp:db/pg/pg", remoteAddr: "1.tcp.ngrok.io:21746", pooling: true })]);
    expect(routeUrl(table.endpoints[0]!, table.endpoints[0]!.routes[0]!, undefined)).toBe("tcp://1.tcp.ngrok.io:21746");
    expect(refused).toEqual([{ key: "db/new/pg", outcome: expect.objectContaining({ ready: false, reason: "Pending" }) }]);
  });

  it("puts no namespace or binding name in the metadata ngrok sees", () => {
    const { table } = planRouteTable("uid-1", [binding("secret-team", "payroll", [{ name: "web", hostname: "pay.example.com" }])], { pooling: true, reservedAddress: null });
    expect(table.endpoints[0]!.metadata).not.toMatch(/secret-team|payroll/);
  });
});
