// The real TunnelManagementHttpClient against the fake management API: a tunnel's whole
// life (create, get, list, conflict, ports, update, delete) the way the controller drives it.
import { afterEach, beforeEach, describe, expect, it } from "@jest/globals";
import { TunnelAccessControlEntryType, TunnelAccessScopes, TunnelConnectionMode, type Tunnel } from "@microsoft/dev-tunnels-contracts";
import { failure, startManagement, statusOf, type ManagementHarness } from "./support/management-harness.ts";

let h: ManagementHarness;

beforeEach(async () => {
  h = await startManagement();
});
afterEach(async () => {
  expect(h.api.violations).toEqual([]);
  expect(h.api.unknownRoutes).toEqual([]);
  await h.close();
});

const anonymousConnect = {
  entries: [{ type: TunnelAccessControlEntryType.Anonymous, subjects: [], scopes: [TunnelAccessScopes.Connect] }],
};

function desiredTunnel(id = "kt-abcdefgh12345678"): Tunnel {
  return {
    tunnelId: id,
    labels: ["ktube", "ktube-cluster=c0ffee", "ktube-tunnel=1234"],
    description: "KTube default/web (managed; do not edit)",
    accessControl: structuredClone(anonymousConnect),
    customExpiration: 7 * 24 * 3600,
  };
}

describe("a tunnel's life through the real SDK", () => {
  it("creates, reads, lists, conflicts, gets ports, updates and deletes", async () => {
    const client = h.client();

    // Create: no clusterId given → the SDK asks for a recommendation, then PUTs with If-None-Match: *.
    const created = await client.createTunnel(desiredTunnel(), { tokenScopes: [TunnelAccessScopes.Host], includePorts: true });
    expect(created).toMatchObject({
      clusterId: "localhost",
      tunnelId: "kt-abcdefgh12345678",
      labels: ["ktube", "ktube-cluster=c0ffee", "ktube-tunnel=1234"],
      accessControl: anonymousConnect,
      ports: [],
      customExpiration: 604800,
    });
    const hostToken = created.accessTokens?.[TunnelAccessScopes.Host];
    expect(hostToken).toEqual(expect.any(String));
    const stored = h.service.tunnels.get("kt-abcdefgh12345678")!;
    expect(stored.owner).toBe("sp-owner");
    expect(h.service.tokenGrants(stored, hostToken!, "host")).toBe(true);
    expect(h.service.tokenGrants(stored, hostToken!, "manage")).toBe(false);
    // The expiration read back is what the service stored: now + customExpiration.
    expect(created.expiration).toBe(new Date(h.clock.now + 604800_000).toISOString());
    expect(stored.expires).toBe(h.clock.now + 604800_000);
    expect(h.api.requests.slice(0, 2).map((r) => `${r.method} ${r.path} ${r.status} ${r.operation}`)).toEqual([
      "GET /clusters/recommendations 200 getClusterRecommendations",
      "PUT /tunnels/kt-abcdefgh12345678 200 createTunnel",
    ]);
    expect(h.api.requests[1]!.query).toBe("includePorts=true&tokenScopes=host&api-version=2023-09-27-preview");
    expect(h.api.requests[1]!.caller).toBe("sp-owner");

    // Get (needs clusterId): access control always, ports on request.
    const locator = { tunnelId: "kt-abcdefgh12345678", clusterId: "localhost" };
    const got = await client.getTunnel({ ...locator }, { includePorts: true });
    expect(got).toMatchObject({ tunnelId: locator.tunnelId, accessControl: anonymousConnect, ports: [], status: { portCount: { current: 0, limit: 10 } } });
    expect(got!.created).toBeInstanceOf(Date); // the SDK parses `created`
    expect(got!.accessTokens).toBeUndefined();

    // A second tunnel with other labels, then list by labels (any by default, all with requireAllLabels).
    await client.createTunnel({ tunnelId: "kt-other", clusterId: "localhost", labels: ["ktube", "ktube-tunnel=5678"] });
    const byAny = await client.listTunnels(undefined, undefined, { labels: ["ktube-tunnel=1234", "ktube-tunnel=5678"] });
    expect(byAny.map((t) => t.tunnelId)).toEqual(["kt-abcdefgh12345678", "kt-other"]);
    const byAll = await client.listTunnels(undefined, undefined, { labels: ["ktube", "ktube-tunnel=1234"], requireAllLabels: true, includePorts: true });
    expect(byAll.map((t) => t.tunnelId)).toEqual(["kt-abcdefgh12345678"]);
    expect(byAll[0]!.accessControl).toBeUndefined(); // excluded from lists unless includeAccessControl
    expect(byAll[0]!.ports).toEqual([]);
    const withAcl = await client.listTunnels("localhost", undefined, { labels: ["ktube-tunnel=1234"], includeAccessControl: true });
    expect(withAcl[0]!.accessControl).toEqual(anonymousConnect);
    expect(h.api.requests.filter((r) => r.operation === "listTunnels").map((r) => r.query)).toEqual([
      "labels=ktube-tunnel%3D1234,ktube-tunnel%3D5678&global=true&api-version=2023-09-27-preview",
      "includePorts=true&labels=ktube,ktube-tunnel%3D1234&allLabels=true&global=true&api-version=2023-09-27-preview",
      "includeAccessControl=true&labels=ktube-tunnel%3D1234&api-version=2023-09-27-preview",
    ]);

    // The same caller-chosen id again: 409, thrown (the SDK retries only ids it generated).
    const conflict = await failure(() => client.createTunnel(desiredTunnel()));
    expect(statusOf(conflict)).toBe(409);
    expect(conflict.message).toMatch(/^Tunnel service error: Conflict A tunnel with ID 'kt-abcdefgh12345678' already exists\./);
    expect(h.api.callsByOperation((r) => r.status === 409)).toEqual({ createTunnel: 1 });

    // Ports: web-forwarding URIs filled in; the tunnel's ACL shows as inherited.
    const tunnel = { ...locator };
    const port = await client.createTunnelPort(tunnel, { portNumber: 8080, protocol: "http", labels: ["ktube-binding=b1"] });
    expect(port).toMatchObject({
      portNumber: 8080,
      protocol: "http",
      tunnelId: locator.tunnelId,
      clusterId: "localhost",
      labels: ["ktube-binding=b1"],
      portForwardingUris: ["https://kt-abcdefgh12345678-8080.localhost.devtunnels.ms/"],
      accessControl: { entries: [{ ...anonymousConnect.entries[0], isInherited: true }] },
    });
    const tcp = await client.createTunnelPort(tunnel, { portNumber: 2222, protocol: "tcp" });
    expect(tcp.portForwardingUris).toEqual([]); // no web forwarding for TCP
    expect((await client.createTunnelPort(tunnel, { portNumber: 3000 })).protocol).toBe("auto");
    expect(statusOf(await failure(() => client.createTunnelPort(tunnel, { portNumber: 8080, protocol: "http" })))).toBe(409);
    expect((await client.listTunnelPorts(tunnel)).map((p) => p.portNumber)).toEqual([2222, 3000, 8080]);
    expect((await client.listTunnelPorts(tunnel, { labels: ["ktube-binding=b1"] })).map((p) => p.portNumber)).toEqual([8080]);
    expect(await client.getTunnelPort(tunnel, 8080)).toMatchObject({ portNumber: 8080, protocol: "http", status: { clientConnectionCount: { current: 0 } } });

    // Update a port: the SDK re-sends the port it has (inherited ACEs stripped by the SDK).
    const updated = await client.updateTunnelPort(tunnel, { ...port, description: "web", options: { isHostHeaderUnchanged: true } });
    expect(updated).toMatchObject({ portNumber: 8080, description: "web", options: { isHostHeaderUnchanged: true }, protocol: "http" });
    // Changing the protocol is refused (the service: "The tunnel port protocol cannot be changed").
    const protocolChange = await failure(() => client.createOrUpdateTunnelPort(tunnel, { portNumber: 8080, protocol: "https" }));
    expect(statusOf(protocolChange)).toBe(400);
    expect(protocolChange.message).toContain("The tunnel port protocol cannot be changed.");
    // updateTunnelPort of a missing port: 404, thrown.
    expect(statusOf(await failure(() => client.updateTunnelPort(tunnel, { portNumber: 9999 })))).toBe(404);

    // Update the tunnel: labels and description replaced, the rest kept.
    const current = (await client.getTunnel({ ...locator }))!;
    const afterUpdate = await client.updateTunnel({ ...current, description: "changed", labels: [...current.labels!, "extra"] });
    expect(afterUpdate).toMatchObject({ description: "changed", labels: ["ktube", "ktube-cluster=c0ffee", "ktube-tunnel=1234", "extra"], accessControl: anonymousConnect, customExpiration: 604800 });

    // Delete a port: true, then false.
    expect(await client.deleteTunnelPort(tunnel, 3000)).toBe(true);
    expect(await client.deleteTunnelPort(tunnel, 3000)).toBe(false);
    expect([...stored.ports.keys()].sort()).toEqual([2222, 8080]);

    // Delete the tunnel: true, then false; getTunnel of a missing tunnel throws 404 (the SDK does not map it to null).
    expect(await client.deleteTunnel({ ...locator })).toBe(true);
    expect(await client.deleteTunnel({ ...locator })).toBe(false);
    expect(h.service.tunnels.has(locator.tunnelId)).toBe(false);
    expect(statusOf(await failure(() => client.getTunnel({ ...locator })))).toBe(404);
  });

  it("creates a tunnel with its ports in one request, and generates an id when none is given", async () => {
    const client = h.client();
    const t = await client.createTunnel(
      { clusterId: "localhost", tunnelId: "kt-with-ports", ports: [{ portNumber: 80, protocol: "http" }, { portNumber: 443, protocol: "https" }] },
      { includePorts: true },
    );
    expect(t.ports!.map((p) => [p.portNumber, p.portForwardingUris])).toEqual([
      [80, ["https://kt-with-ports-80.localhost.devtunnels.ms/"]],
      [443, ["https://kt-with-ports-443.localhost.devtunnels.ms/"]],
    ]);
    const generated = await client.createTunnel({ clusterId: "localhost" });
    expect(generated.tunnelId).toMatch(/^[a-z]+-[a-z]+-[a-z0-9]+$/);
    expect(h.service.tunnels.has(generated.tunnelId!)).toBe(true);
  });

  it("refuses the 11th port with the limit's problem details", async () => {
    const client = h.client();
    const tunnel: Tunnel = { tunnelId: "kt-ports", clusterId: "localhost" };
    await client.createTunnel(tunnel);
    for (let p = 1; p <= 10; p++) await client.createTunnelPort(tunnel, { portNumber: 8000 + p, protocol: "http" });
    const refused = await failure(() => client.createTunnelPort(tunnel, { portNumber: 8011, protocol: "http" }));
    expect(statusOf(refused)).toBe(429);
    expect(refused.response!.data).toMatchObject({ title: "Resource limit exceeded", detail: expect.stringContaining("PortsPerTunnel") });
    expect(refused.message).toContain("Tunnel service error: Resource limit exceeded");
    // Replacing an existing port is no new port: allowed at the limit.
    expect((await client.createOrUpdateTunnelPort(tunnel, { portNumber: 8010, protocol: "http", description: "x" })).description).toBe("x");
    expect(h.service.tunnels.get("kt-ports")!.ports.size).toBe(10);
  });

  it("refuses a tunnel over the per-user quota (429 by default, 403 when configured), per identity", async () => {
    await h.close();
    h = await startManagement({ service: { limits: { maxTunnelsPerUser: 2 } } });
    const client = h.client();
    await client.createTunnel({ tunnelId: "kt-q1", clusterId: "localhost" });
    await client.createTunnel({ tunnelId: "kt-q2", clusterId: "localhost" });
    const refused = await failure(() => client.createTunnel({ tunnelId: "kt-q3", clusterId: "localhost" }));
    expect(statusOf(refused)).toBe(429);
    // The VS Code CLI recognises the tunnel limit by this name in `detail`.
    expect(refused.response!.data).toMatchObject({ status: 429, title: "Resource limit exceeded", detail: expect.stringContaining("TunnelsPerUserPerLocation") });
    expect(h.service.tunnels.has("kt-q3")).toBe(false);
    expect(await client.listUserLimits()).toEqual([{ name: "TunnelsPerUserPerLocation", current: 2, limit: 2 }]);

    // Another identity has its own quota and does not see (or touch) these tunnels.
    const other = h.client(h.service.addUserToken("sp-other"));
    await other.createTunnel({ tunnelId: "kt-q3", clusterId: "localhost" });
    expect((await other.listTunnels()).map((t) => t.tunnelId)).toEqual(["kt-q3"]);
    expect(statusOf(await failure(() => other.getTunnel({ tunnelId: "kt-q1", clusterId: "localhost" })))).toBe(403);
    expect(statusOf(await failure(() => other.deleteTunnel({ tunnelId: "kt-q1", clusterId: "localhost" })))).toBe(403);

    await h.close();
    h = await startManagement({ service: { limits: { maxTunnelsPerUser: 1 } }, api: { limitExceededStatus: 403 } });
    await h.client().createTunnel({ tunnelId: "kt-q1", clusterId: "localhost" });
    const forbidden = await failure(() => h.client().createTunnel({ tunnelId: "kt-q2", clusterId: "localhost" }));
    expect(statusOf(forbidden)).toBe(403);
    expect(forbidden.message).toContain("TunnelsPerUserPerLocation");
  });

  it("reads back the expiration it stores, clamped when configured, and the service expires it", async () => {
    await h.close();
    h = await startManagement({ api: { expirationClampMs: 4 * 24 * 3600_000 } });
    const client = h.client();
    const start = h.clock.now;
    const t = await client.createTunnel({ tunnelId: "kt-exp", clusterId: "localhost", customExpiration: 30 * 24 * 3600 });
    // Asked for 30 days, got 4 (microsoft/dev-tunnels#651), and customExpiration still says 30 days.
    expect(t.customExpiration).toBe(2592000);
    expect(t.expiration).toBe(new Date(start + 4 * 24 * 3600_000).toISOString());
    const noCustom = await client.createTunnel({ tunnelId: "kt-default", clusterId: "localhost" });
    expect(noCustom.expiration).toBe(new Date(start + 4 * 24 * 3600_000).toISOString());

    // An update is activity: the window starts again.
    h.clock.now += 3600_000;
    const updated = await client.updateTunnel({ tunnelId: "kt-exp", clusterId: "localhost", description: "touched" });
    expect(updated.expiration).toBe(new Date(start + 3600_000 + 4 * 24 * 3600_000).toISOString());

    h.clock.now = start + 4 * 24 * 3600_000;
    expect(h.service.expire()).toEqual(["kt-default"]);
    expect(statusOf(await failure(() => client.getTunnel({ tunnelId: "kt-default", clusterId: "localhost" })))).toBe(404);
  });
});

describe("host endpoints", () => {
  it("returns the relay URIs for a TunnelRelay endpoint, shows it on the tunnel, and deletes it", async () => {
    const client = h.client();
    const t = await client.createTunnel({ tunnelId: "kt-host", clusterId: "localhost" }, { tokenScopes: ["host"] });
    // The host authenticates these with the host token from tunnel.accessTokens when it has no user token.
    const hostClient = h.client(null);
    const endpoint = await hostClient.updateTunnelEndpoint(t, { id: "e1-relay", hostId: "h1", hostPublicKeys: ["AAAA"], connectionMode: TunnelConnectionMode.TunnelRelay });
    expect(endpoint).toMatchObject({
      id: "e1-relay",
      hostId: "h1",
      connectionMode: "TunnelRelay",
      hostRelayUri: "ws://localhost:1/api/v1/Host/Connect/kt-host",
      clientRelayUri: "ws://localhost:1/api/v1/Client/Connect/kt-host",
      portUriFormat: "https://kt-host-{port}.localhost.devtunnels.ms/",
    });
    expect(h.api.requests.at(-1)).toMatchObject({ operation: "updateTunnelEndpoint", caller: "tunnel:kt-host", query: "connectionMode=TunnelRelay&api-version=2023-09-27-preview" });
    expect(h.service.tunnels.get("kt-host")!.endpoints.get("e1-relay")).toMatchObject({ hostRelayUri: "ws://localhost:1/api/v1/Host/Connect/kt-host" });
    // A new endpoint of the same host replaces the old one.
    await hostClient.updateTunnelEndpoint(t, { id: "e2-relay", hostId: "h1", connectionMode: TunnelConnectionMode.TunnelRelay });
    expect((await client.getTunnel({ tunnelId: "kt-host", clusterId: "localhost" }))!.endpoints!.map((e) => e.id)).toEqual(["e2-relay"]);
    expect(await hostClient.deleteTunnelEndpoints(t, "e2-relay")).toBe(true);
    expect(await hostClient.deleteTunnelEndpoints(t, "e2-relay")).toBe(false);
    // With no manage token the SDK sends no credentials at all: 401. A host token, sent anyway, is not enough: 403.
    expect(statusOf(await failure(() => hostClient.deleteTunnel(t)))).toBe(401);
    expect(statusOf(await failure(() => hostClient.deleteTunnel(t, { accessToken: t.accessTokens!["host"]! })))).toBe(403);
    // ...but may add ports (manage:ports | host), as the SDK's scope table says.
    expect((await hostClient.createTunnelPort(t, { portNumber: 5000 })).portNumber).toBe(5000);
  });
});
