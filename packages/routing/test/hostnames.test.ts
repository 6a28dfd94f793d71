import { describe, expect, it } from "@jest/globals";
import { evaluateTunnel, hostnameAdmitted } from "../src/index.ts";
import { binding, cloudflare, edge, tunnel, view } from "./fixtures.ts";

describe("hostnameAdmitted", () => {
  const allowed = ["shop.example.com", "*.apps.example.com"];

  it.each([
    ["shop.example.com", true, "an exact entry"],
    ["www.shop.example.com", false, "a name below an exact entry"],
    ["example.com", false, "a parent of an exact entry"],
    ["a.apps.example.com", true, "a name one label below a wildcard"],
    ["a.b.apps.example.com", true, "a name several labels below a wildcard"],
    ["apps.example.com", false, "the wildcard's own base"],
    ["xapps.example.com", false, "a name that only ends like the wildcard's base"],
    ["*.apps.example.com", true, "a wildcard equal to a wildcard entry"],
    ["*.team.apps.example.com", true, "a wildcard narrower than a wildcard entry"],
    ["*.example.com", false, "a wildcard broader than every entry"],
    ["*.shop.example.com", false, "a wildcard below an exact entry"],
  ])("%s: %s (%s)", (hostname, admitted) => {
    expect(hostnameAdmitted(hostname, allowed)).toBe(admitted);
  });

  it("admits a wildcard only by a wildcard entry, never by an exact one spelled alike", () => {
    expect(hostnameAdmitted("*.example.com", ["example.com"])).toBe(false);
    expect(hostnameAdmitted("*.example.com", ["*.example.com"])).toBe(true);
  });

  it("admits nothing with an empty list", () => {
    expect(hostnameAdmitted("shop.example.com", [])).toBe(false);
  });
});

describe("allowedBindings.hostnames", () => {
  const limited = tunnel({ from: "All", hostnames: ["shop.example.com", "*.apps.example.com"] });

  it("refuses a binding with a route outside the list, naming the hostname and the tunnel", () => {
    const b = binding("shop", "b", [
      { name: "ok", hostname: "shop.example.com" },
      { name: "evil", hostname: "bank.example.com" },
      { name: "wild", hostname: "*.example.com" },
    ]);
    expect(evaluateTunnel(view(limited, [b]), cloudflare).get("shop/b")!.accepted).toEqual({
      status: "False",
      reason: "HostnameNotAllowed",
      message:
        "route evil: hostname bank.example.com is not admitted by Tunnel platform/home (its allowedBindings.hostnames); " +
        "route wild: hostname *.example.com is not admitted by Tunnel platform/home (its allowedBindings.hostnames)",
    });
  });

  it("accepts routes on listed names, and a refused binding holds nothing", () => {
    const refused = binding("shop", "refused", [{ hostname: "a.apps.example.com" }, { name: "evil", hostname: "evil.example.com" }]);
    const fine = binding("other", "fine", [{ hostname: "a.apps.example.com" }, { name: "deep", hostname: "x.y.apps.example.com" }]);
    const v = evaluateTunnel(view(limited, [refused, fine]), cloudflare);
    expect(v.get("shop/refused")!.accepted.reason).toBe("HostnameNotAllowed");
    expect(v.get("other/fine")!.accepted.status).toBe("True");
  });

  it("does not limit routes without a hostname", () => {
    const port = binding("shop", "port", [{ name: "ssh", protocol: "TCP", listenPort: 2222, service: { name: "ssh", port: 22 } }]);
    expect(evaluateTunnel(view(limited, [port]), edge).get("shop/port")!.accepted.status).toBe("True");
  });

  it("admits any hostname when unset", () => {
    const b = binding("shop", "any", [{ hostname: "anything.example.org" }]);
    expect(evaluateTunnel(view(tunnel({ from: "All" }), [b]), cloudflare).get("shop/any")!.accepted.status).toBe("True");
  });
});
