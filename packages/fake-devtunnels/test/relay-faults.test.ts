// Faults the relay injects and what the real TunnelRelayTunnelHost does about them: a second
// host (the first is kicked with tooManyConnections and stays down), a cut transport and a
// relay restart (the SDK reconnects), refused upgrades (401 refresh, 404 give-up, 503 retry),
// an expired tunnel, and a silent (half-open) relay.
import { afterEach, beforeEach, describe, expect, it } from "@jest/globals";
import { ConnectionStatus } from "@microsoft/dev-tunnels-connections";
import { TunnelAccessScopes } from "@microsoft/dev-tunnels-contracts";
import { SshConnectionError, SshDisconnectReason } from "@microsoft/dev-tunnels-ssh";
import { HOST_PROTOCOL_V1, HOST_PROTOCOL_V2, type HostProtocol } from "../src/relay/index.ts";
import { eventually, expectNoViolations, type RelayHarness, startRelayHarness, statusReached } from "./support/relay-harness.ts";

let h: RelayHarness;
beforeEach(async () => {
  h = await startRelayHarness();
});
afterEach(async () => {
  await h.teardown();
  expectNoViolations(h.relay);
});

const eventsOf = (tunnelId: string): string[] => h.relay.events.filter((e) => e.tunnelId === tunnelId && !e.event.startsWith("port-")).map((e) => `${e.event}#${e.connection}`);

describe("one host per tunnel", () => {
  it("a second host replaces the first, which is closed with tooManyConnections and refuses to reconnect", async () => {
    const [a, b] = [await h.backend("a"), await h.backend("b")];
    const tunnel = h.addTunnel({ id: "kt-two", ports: [8080] });
    const first = h.host({ 8080: a });
    await first.connect(tunnel);
    expect((await h.web("kt-two", 8080)).body).toMatch(/^a /);

    const kicked = statusReached(first, ConnectionStatus.Disconnected);
    const second = h.host({ 8080: b });
    await second.connect({ ...tunnel });
    const error = await kicked;
    expect(error).toBeInstanceOf(SshConnectionError);
    expect((error as SshConnectionError).reason).toBe(SshDisconnectReason.tooManyConnections);
    expect(first.disconnectReason).toBe(SshDisconnectReason.tooManyConnections);
    expect(eventsOf("kt-two")).toEqual(["host-connected#1", "host-connected#2", "host-replaced#1", "host-disconnected#1"]);
    expect((await h.web("kt-two", 8080)).body).toMatch(/^b /);

    // The SDK will not fight for the tunnel: reconnecting fails without reaching the relay.
    const retry = await first.connect(tunnel).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((retry as SshConnectionError).reason).toBe(SshDisconnectReason.tooManyConnections);
    expect(eventsOf("kt-two")).toHaveLength(4);
    // …and on dispose leaves the endpoint (now the second host's business) alone.
    await first.dispose();
    expect(h.management.endpointsDeleted).toBe(0);
    expect(h.relay.hostInfo("kt-two")?.connection).toBe(2);
  });
});

describe.each<[string, HostProtocol]>([
  ["V2", HOST_PROTOCOL_V2],
  ["V1", HOST_PROTOCOL_V1],
])("transport faults, %s", (_name, protocol) => {
  beforeEach(() => {
    h.relay.hostProtocols = [protocol];
  });

  it("dropHost cuts the transport: the SDK sees connectionLost, reconnects at once, and traffic resumes", async () => {
    const backend = await h.backend("web");
    const tunnel = h.addTunnel({ id: "kt-drop", ports: [8080] });
    const host = h.host({ 8080: backend });
    await host.connect(tunnel);
    expect((await h.web("kt-drop", 8080)).status).toBe(200);

    const reconnecting = statusReached(host, ConnectionStatus.Connecting);
    expect(h.relay.dropHost("kt-drop")).toBe(true);
    await reconnecting;
    await statusReached(host, ConnectionStatus.Connected);
    await eventually(() => expect(eventsOf("kt-drop")).toEqual(["host-connected#1", "host-dropped#1", "host-disconnected#1", "host-connected#2"]));
    expect(h.relay.events.find((e) => e.event === "host-disconnected")?.detail).toMatch(/^connectionLost/);
    const response = await h.web("kt-drop", 8080);
    expect(response.status).toBe(200);
    expect(response.body).toMatch(/^web /);
    expect(h.management.endpointsUpdated).toBe(1);
  });

  it("a relay restart on the same ports: the SDK reconnects and traffic resumes", async () => {
    const backend = await h.backend("web");
    const tunnel = h.addTunnel({ id: "kt-restart", ports: [8080] });
    const host = h.host({ 8080: backend });
    await host.connect(tunnel);
    const [port, publicPort] = [h.relay.port, h.relay.publicHttpPort];

    const reconnecting = statusReached(host, ConnectionStatus.Connecting);
    await h.relay.close();
    await reconnecting;
    expect(h.relay.hostConnected("kt-restart")).toBe(false);
    await h.relay.start();
    expect([h.relay.port, h.relay.publicHttpPort]).toEqual([port, publicPort]);
    await statusReached(host, ConnectionStatus.Connected, 15_000);
    expect((await h.web("kt-restart", 8080)).body).toMatch(/^web /);
  });

  it("silentHost: web requests time out with 504 while the host notices nothing; lifting it restores traffic", async () => {
    h.relay.requestTimeoutMs = 300;
    const backend = await h.backend("web");
    const tunnel = h.addTunnel({ id: "kt-silent", ports: [8080] });
    const host = h.host({ 8080: backend });
    await host.connect(tunnel);
    expect((await h.web("kt-silent", 8080)).status).toBe(200);

    expect(h.relay.silentHost("kt-silent", true)).toBe(true);
    const stalled = await h.web("kt-silent", 8080);
    expect(stalled.status).toBe(504);
    expect(host.connectionStatus).toBe(ConnectionStatus.Connected);

    h.relay.silentHost("kt-silent", false);
    h.relay.requestTimeoutMs = 10_000;
    const revived = await h.web("kt-silent", 8080);
    expect(revived.status).toBe(200);
    expect(h.relay.webRequests.map((r) => r.relayStatus)).toEqual([undefined, 504, undefined]);
  });
});

describe("refused upgrades", () => {
  it("401 for a wrong host token: the SDK refreshes the token through the management API once and connects", async () => {
    const tunnel = h.addTunnel({ id: "kt-token", ports: [] });
    const statuses: ConnectionStatus[] = [];
    const host = h.host({});
    host.connectionStatusChanged((e) => statuses.push(e.status));
    await host.connect({ ...tunnel, accessTokens: { [TunnelAccessScopes.Host]: "fake-tunnel.wrong" } });
    expect(host.connectionStatus).toBe(ConnectionStatus.Connected);
    expect(statuses).toEqual([ConnectionStatus.Connecting, ConnectionStatus.RefreshingTunnelAccessToken, ConnectionStatus.Connecting, ConnectionStatus.Connected]);
    expect(h.relay.events.map((e) => [e.event, e.detail?.split(" ")[0]])).toEqual([
      ["host-rejected", "401"],
      ["host-connected", expect.any(String)],
    ]);
  });

  it("401 again after the refresh: connect fails with Not authorized", async () => {
    const tunnel = h.addTunnel({ id: "kt-token2", ports: [] });
    h.management.refreshToken = () => "fake-tunnel.still-wrong";
    const host = h.host({});
    await expect(host.connect({ ...tunnel, accessTokens: { [TunnelAccessScopes.Host]: "fake-tunnel.wrong" } })).rejects.toThrow(
      "Not authorized (401). Refreshed tunnel access token also does not work.",
    );
    expect(host.connectionStatus).toBe(ConnectionStatus.Disconnected);
  });

  it("a token without the host scope is 403: the SDK gives up at once", async () => {
    const tunnel = h.addTunnel({ id: "kt-403", ports: [] });
    const connectToken = h.service.issueToken(h.service.tunnels.get("kt-403")!, [TunnelAccessScopes.Connect]);
    const host = h.host({});
    await expect(host.connect({ ...tunnel, accessTokens: { [TunnelAccessScopes.Host]: connectToken } })).rejects.toThrow("Forbidden (403)");
  });

  it("rejectNextHost 503 twice: the SDK retries (its retrying event shortens the 6.5 s wait) and connects", async () => {
    const tunnel = h.addTunnel({ id: "kt-503", ports: [] });
    h.relay.rejectNextHost("kt-503", 503, 2);
    const host = h.host({});
    const retries: string[] = [];
    host.retryingTunnelConnection((e) => {
      retries.push(`${e.error.message} after ${e.delayMs}`);
      e.delayMs = 0;
    });
    await host.connect(tunnel);
    expect(retries).toEqual(["error.serviceUnavailable after 6500", "error.serviceUnavailable after 6500"]);
    expect(eventsOf("kt-503")).toEqual(["host-rejected#0", "host-rejected#0", "host-connected#1"]);
  });

  it("rejectNextHost 404: the SDK gives up at once", async () => {
    const tunnel = h.addTunnel({ id: "kt-404", ports: [] });
    h.relay.rejectNextHost("kt-404", 404);
    await expect(h.host({}).connect(tunnel)).rejects.toThrow("The tunnel or port is not found (404)");
  });

  it("a tunnel the service expires: its host is dropped, reconnects into a 404 and ends Disconnected", async () => {
    const tunnel = h.addTunnel({ id: "kt-expire", ports: [] });
    const host = h.host({});
    await host.connect(tunnel);
    h.service.tunnels.get("kt-expire")!.expires = 0;
    const disconnected = statusReached(host, ConnectionStatus.Disconnected);
    expect(h.service.expire()).toEqual(["kt-expire"]);
    expect((await disconnected)?.message).toContain("The tunnel or port is not found (404)");
    expect(eventsOf("kt-expire")).toEqual(["host-connected#1", "host-dropped#1", "host-disconnected#1", "host-rejected#0"]);
  });
});
