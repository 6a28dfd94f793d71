// Who may claim what on one tunnel: hostnames belong to a namespace, paths are
// normalised, some protocols take a hostname whole, a binding may not claim one thing
// twice, and providers add claims of their own (listen ports).
import { describe, expect, it } from "@jest/globals";
import type { Route } from "@ktube/api";
import { evaluateTunnel, normalizePath, type ProviderCapabilities } from "../src/index.ts";
import { binding, cloudflare, edge, tunnel, view } from "./fixtures.ts";

const all = tunnel({ from: "All" });
const accepted = (bindings: ReturnType<typeof binding>[], caps: ProviderCapabilities = cloudflare) =>
  new Map([...evaluateTunnel(view(all, bindings), caps)].map(([key, verdict]) => [key, verdict.accepted]));

describe("normalizePath", () => {
  it.each([
    [undefined, "/"],
    ["/", "/"],
    ["//", "/"],
    ["/api", "/api"],
    ["/api/", "/api"],
    ["/api//", "/api"],
    ["/api/v1/", "/api/v1"],
    ["/a//b", "/a//b"],
  ])("%s -> %s", (path, normalised) => {
    expect(normalizePath(path)).toBe(normalised);
  });
});

describe("a hostname belongs to the namespace of its oldest accepted binding", () => {
  it("refuses another namespace any path on it, naming the owning binding", () => {
    const owner = binding("shop", "web", [{ hostname: "shop.example.com" }]);
    const hijack = binding("other", "login", [{ name: "login", hostname: "shop.example.com", path: "/login" }]);
    const v = accepted([hijack, owner]);
    expect(v.get("shop/web")!.status).toBe("True");
    expect(v.get("other/login")).toEqual({
      status: "False",
      reason: "Conflict",
      message:
        "route login: hostname shop.example.com belongs to namespace shop on this tunnel, as TunnelBinding shop/web (route web) claimed it first; bindings from other namespaces cannot add routes to it; the older binding keeps its claims",
    });
  });

  it("lets bindings of the owning namespace split the hostname by path", () => {
    const web = binding("shop", "web", [{ hostname: "shop.example.com" }]);
    const api = binding("shop", "api", [{ hostname: "shop.example.com", path: "/api" }]);
    const v = accepted([web, api]);
    expect(v.get("shop/api")!.status).toBe("True");
  });

  it("is decided by the oldest accepted binding, not the oldest binding", () => {
    const refused = binding("shop", "udp", [{ hostname: "shop.example.com" }, { name: "dns", protocol: "UDP", hostname: undefined }]);
    const owner = binding("other", "web", [{ hostname: "shop.example.com", path: "/web" }]);
    const later = binding("shop", "api", [{ hostname: "shop.example.com", path: "/api" }]);
    const v = accepted([refused, owner, later]);
    expect(v.get("shop/udp")!.reason).toBe("UnsupportedProtocol");
    expect(v.get("other/web")!.status).toBe("True");
    expect(v.get("shop/api")!.message).toContain("belongs to namespace other");
  });

  it("passes to the next namespace when the owner goes", () => {
    const owner = binding("shop", "web", [{ hostname: "shop.example.com" }]);
    const waiting = binding("other", "web", [{ hostname: "shop.example.com", path: "/other" }]);
    expect(accepted([owner, waiting]).get("other/web")!.reason).toBe("Conflict");
    expect(accepted([waiting]).get("other/web")!.status).toBe("True");
  });

  it("takes the whole binding down when one of its routes is on another namespace's hostname", () => {
    const owner = binding("shop", "web", [{ hostname: "shop.example.com" }]);
    const mixed = binding("other", "mixed", [{ hostname: "other.example.com" }, { name: "login", hostname: "shop.example.com", path: "/login" }]);
    const next = binding("platform", "next", [{ hostname: "other.example.com" }]);
    const v = accepted([owner, mixed, next]);
    expect(v.get("other/mixed")!.message).toMatch(/^route login: hostname shop.example.com belongs to namespace shop/);
    expect(v.get("platform/next")!.status).toBe("True");
  });

  it("treats a wildcard hostname as a hostname of its own", () => {
    const wildcard = binding("shop", "wild", [{ hostname: "*.example.com" }]);
    const exact = binding("other", "exact", [{ hostname: "a.example.com" }]);
    expect(accepted([wildcard, exact]).get("other/exact")!.status).toBe("True");
  });
});

describe("paths are compared normalised", () => {
  it.each([
    ["/api", "/api/"],
    ["/api/", "/api//"],
    [undefined, "/"],
  ])("%s and %s are one claim", (first, second) => {
    const older = binding("shop", "older", [{ hostname: "shop.example.com", path: first }]);
    const younger = binding("shop", "younger", [{ hostname: "shop.example.com", path: second }]);
    const v = accepted([younger, older]);
    expect(v.get("shop/older")!.status).toBe("True");
    expect(v.get("shop/younger")!.message).toBe(
      `route web: shop.example.com${normalizePath(second)} is held by TunnelBinding shop/older (route web); the older binding keeps its claims`,
    );
  });

  it("keeps prefixes that only share their beginning apart", () => {
    const api = binding("shop", "api", [{ hostname: "shop.example.com", path: "/api" }]);
    const apiv2 = binding("shop", "apiv2", [{ hostname: "shop.example.com", path: "/apiv2" }]);
    const nested = binding("shop", "nested", [{ hostname: "shop.example.com", path: "/api/v1" }]);
    expect([...accepted([api, apiv2, nested]).values()].map((a) => a.status)).toEqual(["True", "True", "True"]);
  });
});

describe("a protocol that takes the whole hostname (Cloudflare's TCP)", () => {
  const tcp = (ns: string, name: string, hostname = "db.example.com"): ReturnType<typeof binding> =>
    binding(ns, name, [{ name: "tcp", protocol: "TCP", hostname, service: { name: "db", port: 5432 } }]);

  it("refuses younger routes on that hostname on any path, naming the holder", () => {
    const older = tcp("shop", "db");
    const http = binding("shop", "http", [{ hostname: "db.example.com", path: "/admin" }]);
    const v = accepted([older, http]);
    expect(v.get("shop/db")!.status).toBe("True");
    expect(v.get("shop/http")).toEqual({
      status: "False",
      reason: "Conflict",
      message: "route web: hostname db.example.com is held whole by TunnelBinding shop/db (route tcp), as TCP takes the whole hostname; the older binding keeps its claims",
    });
  });

  it("is refused on a hostname an older route already uses, on any path", () => {
    const http = binding("shop", "http", [{ hostname: "db.example.com", path: "/admin" }]);
    const younger = tcp("shop", "db");
    expect(accepted([younger, http]).get("shop/db")).toEqual({
      status: "False",
      reason: "Conflict",
      message: "route tcp: TCP takes the whole hostname db.example.com, which is held by TunnelBinding shop/http (route web); the older binding keeps its claims",
    });
  });

  it("conflicts with another whole-hostname route, and leaves other hostnames alone", () => {
    const v = accepted([tcp("shop", "first"), tcp("shop", "second"), tcp("shop", "elsewhere", "other.example.com")]);
    expect(v.get("shop/first")!.status).toBe("True");
    expect(v.get("shop/second")!.message).toContain("held whole by TunnelBinding shop/first (route tcp)");
    expect(v.get("shop/elsewhere")!.status).toBe("True");
  });

  it("is a provider's choice: without it, a TCP route claims the hostname's root path only", () => {
    const shared: ProviderCapabilities = { ...cloudflare, wholeHostnameProtocols: [] };
    const v = accepted([tcp("shop", "db"), binding("shop", "http", [{ hostname: "db.example.com", path: "/admin" }])], shared);
    expect(v.get("shop/http")!.status).toBe("True");
  });
});

describe("a provider may scope hostname+path claims (pathClaimScope)", () => {
  const scoped: ProviderCapabilities = { ...edge, extraClaims: undefined, pathClaimScope: (route) => `listen port ${route.listenPort ?? 80}/TCP` };

  it("lets one hostname be served on two ports, and still refuses the same hostname+path twice on one port, naming the port", () => {
    const both = binding("shop", "web", [
      { name: "plain", hostname: "shop.example.com", listenPort: 80 },
      { name: "tls", protocol: "TLS", hostname: "shop.example.com", listenPort: 443 },
    ]);
    const again = binding("shop", "again", [{ name: "tls", protocol: "TLS", hostname: "shop.example.com", listenPort: 443 }]);
    const v = accepted([both, again], scoped);
    expect(v.get("shop/web")!.status).toBe("True");
    expect(v.get("shop/again")).toMatchObject({ status: "False", reason: "Conflict" });
    expect(v.get("shop/again")!.message).toContain("shop.example.com/ on listen port 443/TCP");
    // Without the scope, the two routes of the first binding are one claim made twice.
    expect(accepted([both], { ...scoped, pathClaimScope: undefined }).get("shop/web")!.reason).toBe("DuplicateRoute");
  });

  it("keeps a hostname the namespace's on every port", () => {
    const owner = binding("shop", "web", [{ name: "plain", hostname: "shop.example.com", listenPort: 80 }]);
    const other = binding("other", "tls", [{ name: "tls", protocol: "TLS", hostname: "shop.example.com", listenPort: 443 }]);
    expect(accepted([owner, other], scoped).get("other/tls")!.message).toContain("belongs to namespace shop");
  });
});

describe("a binding claiming one thing twice is refused (DuplicateRoute)", () => {
  it("names both routes of one hostname+path, however the path is written", () => {
    const b = binding("shop", "twice", [
      { name: "a", hostname: "shop.example.com", path: "/api" },
      { name: "b", hostname: "shop.example.com", path: "/api/" },
      { name: "c", hostname: "shop.example.com", path: "/" },
    ]);
    expect(accepted([b]).get("shop/twice")).toEqual({
      status: "False",
      reason: "DuplicateRoute",
      message: "routes a and b both claim shop.example.com/api",
    });
  });

  it("names both routes when one takes the whole hostname, in either order", () => {
    const tcpFirst = binding("shop", "tcp-first", [
      { name: "ssh", protocol: "TCP", hostname: "h.example.com" },
      { name: "web", hostname: "h.example.com" },
    ]);
    const httpFirst = binding("shop", "http-first", [
      { name: "web", hostname: "h.example.com" },
      { name: "ssh", protocol: "TCP", hostname: "h.example.com" },
    ]);
    const v = evaluateTunnel(view(all, [tcpFirst]), cloudflare).get("shop/tcp-first")!.accepted;
    expect(v).toEqual({ status: "False", reason: "DuplicateRoute", message: "route ssh (TCP) takes the whole hostname h.example.com, which route web also uses" });
    const w = evaluateTunnel(view(all, [httpFirst]), cloudflare).get("shop/http-first")!.accepted;
    expect(w).toEqual({ status: "False", reason: "DuplicateRoute", message: "route ssh (TCP) takes the whole hostname h.example.com, which route web also uses" });
  });

  it("holds nothing, so a younger binding may take the hostname", () => {
    const twice = binding("shop", "twice", [{ name: "a", hostname: "shop.example.com" }, { name: "b", hostname: "shop.example.com" }]);
    const younger = binding("other", "web", [{ hostname: "shop.example.com" }]);
    const v = accepted([twice, younger]);
    expect(v.get("shop/twice")!.reason).toBe("DuplicateRoute");
    expect(v.get("other/web")!.status).toBe("True");
  });

  it("covers a provider's extra claims too", () => {
    const b = binding("shop", "ports", [
      { name: "a", protocol: "TCP", listenPort: 2222 },
      { name: "b", protocol: "TCP", listenPort: 2222 },
    ]);
    expect(accepted([b], edge).get("shop/ports")).toEqual({ status: "False", reason: "DuplicateRoute", message: "routes a and b both claim listen port 2222/TCP" });
  });
});

describe("a provider's extra claims (edge listen ports)", () => {
  const port = (ns: string, name: string, listenPort: number, protocol: Route["protocol"] = "TCP") =>
    binding(ns, name, [{ name: "p", protocol, listenPort, service: { name: "svc", port: 80 } }]);

  it("go to the older binding, whatever its namespace, and the message names it", () => {
    const v = accepted([port("shop", "older", 2222), port("other", "younger", 2222)].reverse(), edge);
    expect(v.get("shop/older")!.status).toBe("True");
    expect(v.get("other/younger")).toEqual({
      status: "False",
      reason: "Conflict",
      message: "route p: listen port 2222/TCP is held by TunnelBinding shop/older (route p); the older binding keeps its claims",
    });
  });

  it("differ by value: another port, or the same port over UDP, is no conflict", () => {
    const v = accepted([port("shop", "a", 2222), port("shop", "b", 2223), port("shop", "c", 2222, "UDP")], edge);
    expect([...v.values()].map((a) => a.status)).toEqual(["True", "True", "True"]);
  });

  it("sit beside hostname claims: TLS routes on one port split it by hostname", () => {
    const tls = (name: string, hostname: string) => binding("shop", name, [{ name: "t", protocol: "TLS", hostname, listenPort: 443, tls: { mode: "passthrough" } }]);
    const v = accepted([tls("a", "a.example.com"), tls("b", "b.example.com"), tls("c", "a.example.com")], edge);
    expect([...v.values()].map((a) => a.reason)).toEqual(["Accepted", "Accepted", "Conflict"]);
  });
});

describe("cost", () => {
  it("computes each route's claims once, however many bindings the tunnel has", () => {
    let calls = 0;
    const counting: ProviderCapabilities = { ...edge, extraClaims: (route) => (calls++, edge.extraClaims!(route)) };
    const bindings = Array.from({ length: 2000 }, (_, i) =>
      binding(i % 2 ? "shop" : "other", `b${i}`, [
        { name: "web", hostname: `h${i % 500}.example.com`, path: `/p${i}` },
        { name: "port", protocol: "TCP", listenPort: 1000 + (i % 700), service: { name: "svc", port: 80 } },
      ]),
    );
    const verdicts = evaluateTunnel(view(all, bindings), counting);
    expect(calls).toBe(2 * bindings.length);
    // Hostname hN goes to the namespace of binding bN (the first to claim it): bindings of the other
    // namespace on it conflict, and of the rest only the first 700 get their listen port.
    const acceptedKeys = [...verdicts].filter(([, v]) => v.accepted.status === "True").map(([k]) => k);
    const expected = bindings.map((b, i) => ({ key: `${b.metadata.namespace}/${b.metadata.name}`, i }))
      .filter(({ i }) => (i % 500) % 2 === i % 2 && i < 700)
      .map(({ key }) => key);
    expect(acceptedKeys).toEqual(expected);
  });
});
