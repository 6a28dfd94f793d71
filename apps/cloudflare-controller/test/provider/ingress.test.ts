// The ingress document: path prefixes that serve the same requests render the same,
// most specific rules first, the catch-all last.
import { describe, expect, it } from "@jest/globals";
import type { Route } from "@ktube/api";
import type { ResolvedRoute } from "@ktube/routing";
import { CATCH_ALL, pathRegex, renderIngressConfig, routeUrl } from "../../src/provider/ingress.ts";

const resolved = (hostname: string, path: string | undefined, service: string, protocol: Route["protocol"] = "HTTP"): ResolvedRoute => ({
  route: { name: `${hostname}${path ?? ""}`, protocol, hostname, ...(path !== undefined ? { path } : {}), service: { name: service, port: 80 } },
  host: `${service}.shop.svc.cluster.local`,
  port: 80,
});

describe("pathRegex", () => {
  it("renders /api, /api/ and /api// alike, and / or none as the whole hostname", () => {
    expect(pathRegex("/api")).toBe("^/api(/.*)?$");
    expect(pathRegex("/api/")).toBe(pathRegex("/api"));
    expect(pathRegex("/api//")).toBe(pathRegex("/api"));
    expect([pathRegex("/"), pathRegex("//"), pathRegex(undefined), pathRegex("")]).toEqual([undefined, undefined, undefined, undefined]);
    expect(pathRegex("/v1.0")).toBe("^/v1\\.0(/.*)?$");
  });
});

describe("renderIngressConfig", () => {
  it("puts exact hostnames before wildcards, longer paths first, and the catch-all last", () => {
    const config = renderIngressConfig([
      resolved("*.apps.example.com", undefined, "wild"),
      resolved("shop.example.com", undefined, "web"),
      resolved("shop.example.com", "/api/", "api"),
      resolved("shop.example.com", "/api/v2", "api2"),
      resolved("db.example.com", undefined, "db", "TCP"),
      resolved("udp.example.com", undefined, "dns", "UDP"),
    ]);
    expect(config.ingress.map((r) => [r.hostname, r.path, r.service])).toEqual([
      ["shop.example.com", "^/api/v2(/.*)?$", "http://api2.shop.svc.cluster.local:80"],
      ["shop.example.com", "^/api(/.*)?$", "http://api.shop.svc.cluster.local:80"],
      ["db.example.com", undefined, "tcp://db.shop.svc.cluster.local:80"],
      ["shop.example.com", undefined, "http://web.shop.svc.cluster.local:80"],
      ["*.apps.example.com", undefined, "http://wild.shop.svc.cluster.local:80"],
      [undefined, undefined, CATCH_ALL.service],
    ]);
  });

  it("keeps one rule, the first given's, for /api and /api/ on one hostname", () => {
    const config = renderIngressConfig([resolved("shop.example.com", "/api", "older"), resolved("shop.example.com", "/api/", "newer")]);
    expect(config.ingress).toEqual([{ hostname: "shop.example.com", path: "^/api(/.*)?$", service: "http://older.shop.svc.cluster.local:80" }, CATCH_ALL]);
  });
});

describe("routeUrl", () => {
  it("is https for HTTP routes with the route's path, tcp:// for TCP", () => {
    expect(routeUrl(resolved("shop.example.com", "/api/", "api").route)).toBe("https://shop.example.com/api/");
    expect(routeUrl(resolved("shop.example.com", undefined, "web").route)).toBe("https://shop.example.com/");
    expect(routeUrl(resolved("db.example.com", undefined, "db", "TCP").route)).toBe("tcp://db.example.com");
  });
});
