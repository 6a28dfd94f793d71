// What the management API refuses, and how the real SDK surfaces it: credentials (401/403),
// the per-IP rate limit (429 + Retry-After), requests that break the SDK's contracts
// (unknown fields, bad labels and ids, api-version), and injected faults.
import { afterEach, beforeEach, describe, expect, it } from "@jest/globals";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { CONTRACT_SCHEMAS } from "../src/management/index.ts";
import { failure, startManagement, statusOf, type ManagementHarness } from "./support/management-harness.ts";

const V = "api-version=2023-09-27-preview";
let h: ManagementHarness;

beforeEach(async () => {
  h = await startManagement();
});
afterEach(async () => {
  await h.close();
});

/** Takes the violations recorded so far (tests here make some on purpose). */
function takeViolations(): string[] {
  const taken = h.api.violations.map((v) => `${v.status} ${v.operation}: ${v.problems.join(" | ")}`);
  h.api.violations.length = 0;
  return taken;
}

describe("credentials", () => {
  it("answers 401 to an unknown or missing token; recommendations fall back to anonymous as the SDK does", async () => {
    const bad = h.client("not-a-token");
    const refused = await failure(() => bad.listTunnels());
    expect(statusOf(refused)).toBe(401);
    expect(refused.message).toBe("Tunnel service error: Unauthorized The access token is invalid or expired.");
    expect(statusOf(await failure(() => h.client(null).listTunnels()))).toBe(401);
    expect(statusOf(await failure(() => bad.getTunnel({ tunnelId: "kt-x", clusterId: "localhost" })))).toBe(401);

    // createTunnel with a bad token: the recommendation is retried without it (401 → 200), then the PUT is 401.
    const create = await failure(() => bad.createTunnel({ tunnelId: "kt-bad" }));
    expect(statusOf(create)).toBe(401);
    expect(h.api.requests.slice(-3).map((r) => `${r.operation} ${r.status}`)).toEqual([
      "getClusterRecommendations 401",
      "getClusterRecommendations 200",
      "createTunnel 401",
    ]);
    expect(h.service.tunnels.size).toBe(0);
    // Error answers carry X-Served-By (so the SDK never blames a firewall) and a request id.
    const raw = await h.raw("GET", `/tunnels?${V}`, { token: "nope" });
    expect(raw.status).toBe(401);
    expect(raw.headers.get("x-served-by")).toBe("tunnels-fake-localhost");
    expect(raw.headers.get("vssaas-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(raw.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(takeViolations()).toEqual([]);
  });

  it("honours tunnel access tokens by scope, and issues only scopes the caller holds", async () => {
    const owner = h.client();
    const t = await owner.createTunnel({ tunnelId: "kt-tok", clusterId: "localhost" }, { tokenScopes: ["connect", "manage:ports host"] });
    expect(Object.keys(t.accessTokens!).sort()).toEqual(["connect", "manage:ports host"]);
    const anon = h.client(null);
    const connect = t.accessTokens!["connect"]!;
    // connect reads; it cannot add ports, and it cannot get a host token for itself.
    const read = await anon.getTunnel({ tunnelId: "kt-tok", clusterId: "localhost" }, { accessToken: connect, tokenScopes: ["host", "connect"] });
    expect(Object.keys(read!.accessTokens!)).toEqual(["connect"]);
    expect(statusOf(await failure(() => anon.createTunnelPort({ tunnelId: "kt-tok", clusterId: "localhost" }, { portNumber: 1 }, { accessToken: connect })))).toBe(403);
    // The combined token works for either scope (the SDK looks keys up by each space-separated scope).
    const ports = await anon.createTunnelPort({ tunnelId: "kt-tok", clusterId: "localhost", accessTokens: t.accessTokens }, { portNumber: 22, protocol: "tcp" });
    expect(ports.portNumber).toBe(22);
    // A tunnel token cannot list tunnels or read limits.
    expect(statusOf(await failure(() => anon.listTunnels(undefined, undefined, { accessToken: connect })))).toBe(403);
    // Expired: 401.
    h.clock.now += 24 * 3600_000;
    expect(statusOf(await failure(() => anon.getTunnel({ tunnelId: "kt-tok", clusterId: "localhost" }, { accessToken: connect })))).toBe(401);
    expect(takeViolations()).toEqual([]);
  });
});

describe("clusters, limits and names", () => {
  it("serves the one localhost cluster, the user's limits and name availability", async () => {
    const client = h.client();
    expect(await client.listClusters()).toEqual([{ clusterId: "localhost", uri: `${h.baseUrl}/`, azureLocation: "local" }]);
    expect(await client.getClusterRecommendations()).toMatchObject({ recommendedClusterId: "localhost", recommendations: [{ clusterId: "localhost", availability: "Available" }] });
    expect(await client.listUserLimits()).toEqual([{ name: "TunnelsPerUserPerLocation", current: 0, limit: 10 }]);
    await client.createTunnel({ tunnelId: "kt-named", clusterId: "localhost", name: "my-name" });
    expect(await client.checkNameAvailablility("my-name")).toBe(false);
    expect(await client.checkNameAvailablility("free-name")).toBe(true);
    // Names are global aliases: taken → 409 unless forceRename moves it.
    expect(statusOf(await failure(() => client.createTunnel({ tunnelId: "kt-named2", clusterId: "localhost", name: "my-name" })))).toBe(409);
    await client.createTunnel({ tunnelId: "kt-named2", clusterId: "localhost", name: "my-name" }, { forceRename: true });
    expect(h.service.tunnels.get("kt-named")!.tunnel.name).toBeUndefined();
    expect(takeViolations()).toEqual([]);
  });
});

describe("the per-IP rate limit", () => {
  it("answers 429 with Retry-After over requestsPerWindow, and admits again as the window slides", async () => {
    await h.close();
    h = await startManagement({ service: { limits: { requestsPerWindow: 5, windowMs: 60_000 } } });
    const client = h.client();
    for (let i = 0; i < 3; i++) await client.listTunnels();
    h.clock.now += 30_000;
    for (let i = 0; i < 2; i++) await client.listTunnels();
    const refused = await failure(() => client.listTunnels());
    expect(statusOf(refused)).toBe(429);
    expect(refused.message).toBe("Tunnel service error: Rate limit exceeded Too many requests in a given amount of time.");
    expect(refused.response!.headers["retry-after"]).toBe("30");
    expect(refused.response!.headers["ratelimit-limit"]).toBe("ApiQueryRatePerIPAddress:5/60s");
    // Unauthenticated requests count too (the limit is per IP), refused ones do not.
    expect((await h.raw("GET", `/tunnels?${V}`, { token: null })).status).toBe(429);
    expect(h.api.requestsInWindow()).toBe(5);
    h.clock.now += 30_000; // the first three slide out
    for (let i = 0; i < 3; i++) await client.listTunnels();
    expect(statusOf(await failure(() => client.listTunnels()))).toBe(429);
    expect(h.api.callsByOperation((r) => r.status === 429)).toEqual({ listTunnels: 3 });
  });
});

describe("the SDK's contracts as the schema", () => {
  it("refuses an unknown field in a tunnel body (400 problem details) and records the violation", async () => {
    const res = await h.raw("PUT", `/tunnels/kt-raw?${V}`, { body: { tunnelId: "kt-raw", labels: ["a"], visibility: "public" }, headers: { "If-None-Match": "*" } });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({
      title: "One or more validation errors occurred.",
      status: 400,
      errors: { visibility: ["Could not find member 'visibility' on object of type 'Tunnel'."] },
    });
    expect(h.service.tunnels.size).toBe(0);
    expect(takeViolations()).toEqual(["400 createTunnel: visibility: Could not find member 'visibility' on object of type 'Tunnel'."]);
  });

  it("checks nested objects, types, labels, ids and scopes", async () => {
    const bad = {
      labels: ["ktube.io/owner", "ok"],
      description: "x".repeat(401),
      customExpiration: "7d",
      accessControl: { entries: [{ type: "Everyone", subjects: [], scopes: ["connect", "admin"], color: "red" }] },
      options: { hostHeader: 5 },
      ports: [{ portNumber: 70000, protocol: "ftp" }],
    };
    const res = await h.raw("PUT", `/tunnels/kt-bad?${V}`, { body: bad });
    expect(res.status).toBe(400);
    expect(Object.keys(res.json["errors"] as object).sort()).toEqual([
      "accessControl.entries[0].color",
      "accessControl.entries[0].scopes[1]",
      "accessControl.entries[0].type",
      "customExpiration",
      "description",
      "labels[0]",
      "options.hostHeader",
      "ports[0].portNumber",
      "ports[0].protocol",
    ]);
    // The SDK itself refuses a bad label before sending (it validates scopes, not labels): the fake catches labels.
    const sdkBad = await failure(() => h.client().createTunnel({ tunnelId: "kt-labels", clusterId: "localhost", labels: ["ktube.io/owner"] }));
    expect(statusOf(sdkBad)).toBe(400);
    expect(sdkBad.message).toContain("Tunnel service error: One or more validation errors occurred.");
    // Ids: the path's id must match the contract's pattern (3–49 chars, lower case, no edge dashes).
    expect((await h.raw("PUT", `/tunnels/Bad_Id?${V}`, { body: {} })).status).toBe(400);
    expect((await h.raw("PUT", `/tunnels/kt-a?${V}`, { body: { tunnelId: "kt-b" } })).status).toBe(400);
    // customExpiration outside 1 h..30 d.
    expect((await h.raw("PUT", `/tunnels/kt-exp?${V}`, { body: { customExpiration: 60 } })).status).toBe(400);
    // Port bodies and endpoint bodies too.
    await h.client().createTunnel({ tunnelId: "kt-ok", clusterId: "localhost" });
    expect((await h.raw("PUT", `/tunnels/kt-ok/ports/80?${V}`, { body: { portNumber: 81 } })).status).toBe(400);
    expect((await h.raw("PUT", `/tunnels/kt-ok/ports/80?${V}`, { body: { portNumber: 80, hostHeader: "x" } })).status).toBe(400);
    expect((await h.raw("PUT", `/tunnels/kt-ok/endpoints/e1?connectionMode=TunnelRelay&${V}`, { body: { hostId: "h", connectionMode: "TunnelRelay", relay: 1 } })).status).toBe(400);
    expect((await h.raw("PUT", `/tunnels/kt-ok/endpoints/e1?connectionMode=LocalNetwork&${V}`, { body: { hostId: "h", connectionMode: "TunnelRelay" } })).status).toBe(400);
    // Not JSON.
    expect((await h.raw("PUT", `/tunnels/kt-ok?${V}`, { rawBody: "{nope" })).status).toBe(400);
    expect(takeViolations()).toHaveLength(10);
  });

  it("requires api-version 2023-09-27-preview and knows each route's query parameters", async () => {
    expect((await h.raw("GET", "/tunnels")).json).toMatchObject({ status: 400, title: "Unspecified API version" });
    expect((await h.raw("GET", "/tunnels?api-version=2023-05-23-preview")).json).toMatchObject({ status: 400, title: "Unsupported API version" });
    expect((await h.raw("GET", `/tunnels?${V}&pageSize=3`)).status).toBe(400);
    expect((await h.raw("GET", `/tunnels?${V}&tokenScopes=root`)).status).toBe(400);
    expect((await h.raw("GET", `/tunnels?${V}&includePorts=yes`)).status).toBe(400);
    expect((await h.raw("GET", `/tunnels?${V}&labels=a/b`)).status).toBe(400);
    expect(takeViolations().map((v) => v.split(":")[0])).toEqual(Array(6).fill("400 listTunnels"));
    expect((await h.raw("GET", `/nowhere?${V}`)).status).toBe(404);
    expect(h.api.unknownRoutes).toEqual([{ method: "GET", path: "/nowhere" }]);
  });

  it("names exactly the fields of the contract .d.ts files", () => {
    const require = createRequire(import.meta.url);
    const dir = dirname(require.resolve("@microsoft/dev-tunnels-contracts/package.json"));
    const fieldsOf = (file: string, iface: string): string[] => {
      const text = readFileSync(join(dir, file), "utf8");
      const body = new RegExp(`export interface ${iface}(?: extends \\w+)? \\{([\\s\\S]*?)\\n\\}`).exec(text)![1]!;
      return [...body.matchAll(/^ {4}(\w+)\??:/gm)].map((m) => m[1]!);
    };
    const expected: Record<string, string[]> = {
      Tunnel: fieldsOf("tunnel.d.ts", "Tunnel"),
      TunnelPort: fieldsOf("tunnelPort.d.ts", "TunnelPort"),
      TunnelOptions: fieldsOf("tunnelOptions.d.ts", "TunnelOptions"),
      TunnelAccessControl: fieldsOf("tunnelAccessControl.d.ts", "TunnelAccessControl"),
      TunnelAccessControlEntry: fieldsOf("tunnelAccessControlEntry.d.ts", "TunnelAccessControlEntry"),
      TunnelEndpoint: [
        ...fieldsOf("tunnelEndpoint.d.ts", "TunnelEndpoint"),
        ...fieldsOf("tunnelRelayTunnelEndpoint.d.ts", "TunnelRelayTunnelEndpoint"),
        ...fieldsOf("localNetworkTunnelEndpoint.d.ts", "LocalNetworkTunnelEndpoint"),
      ],
    };
    for (const [name, fields] of Object.entries(expected)) {
      expect(fields.length).toBeGreaterThan(0);
      expect([name, Object.keys(CONTRACT_SCHEMAS[name]!.fields).sort()]).toEqual([name, [...fields].sort()]);
    }
  });
});

describe("injected faults", () => {
  it("fails the next N requests of an operation with 5xx or 429, before or after they take effect", async () => {
    const client = h.client();
    h.api.injectFault("createTunnel", { count: 2, status: 500 });
    expect(statusOf(await failure(() => client.createTunnel({ tunnelId: "kt-f", clusterId: "localhost" })))).toBe(500);
    expect(statusOf(await failure(() => client.createTunnel({ tunnelId: "kt-f", clusterId: "localhost" })))).toBe(500);
    expect(h.service.tunnels.size).toBe(0);
    // After: the tunnel exists although the answer was a 503; the retry then sees 409.
    h.api.injectFault("createTunnel", { when: "after" });
    expect(statusOf(await failure(() => client.createTunnel({ tunnelId: "kt-f", clusterId: "localhost" })))).toBe(503);
    expect(h.service.tunnels.has("kt-f")).toBe(true);
    expect(statusOf(await failure(() => client.createTunnel({ tunnelId: "kt-f", clusterId: "localhost" })))).toBe(409);
    h.api.injectFault("*", { kind: "429" });
    const throttled = await failure(() => client.getTunnel({ tunnelId: "kt-f", clusterId: "localhost" }));
    expect(statusOf(throttled)).toBe(429);
    expect(throttled.response!.headers["retry-after"]).toBe("1");
    expect(h.api.pendingFaults()).toEqual([]);
    expect(h.api.requests.filter((r) => r.fault).map((r) => `${r.operation} ${r.status} ${r.fault}`)).toEqual([
      "createTunnel 500 5xx",
      "createTunnel 500 5xx",
      "createTunnel 503 5xx",
      "getTunnel 429 429",
    ]);
  });

  it("never answers a timed-out request (logged with status 0) and answers the next", async () => {
    h.api.injectFault("listTunnels", { kind: "timeout" });
    const aborted = await failure(() => fetch(`${h.baseUrl}/tunnels?${V}`, { headers: { Authorization: `Bearer ${h.token}` }, signal: AbortSignal.timeout(150) }));
    expect(aborted.name).toBe("TimeoutError");
    expect(h.api.requests.at(-1)).toMatchObject({ operation: "listTunnels", status: 0, fault: "timeout" });
    expect(await h.client().listTunnels()).toEqual([]);
  });

  it("adds latency to every answer", async () => {
    h.api.configure({ latencyMs: 60 });
    const started = performance.now();
    await h.client().listTunnels();
    expect(performance.now() - started).toBeGreaterThanOrEqual(55);
  });
});
