// The real TunnelRelayTunnelHost hosting through the fake relay: V2 and V1 end to end through
// web forwarding, ports added while connected, raw streams, access control and header
// rewriting, and the relay's answers when there is nothing to reach.
import { afterEach, beforeEach, describe, expect, it } from "@jest/globals";
import { createServer, request } from "node:http";
import { connect } from "node:net";
import type { Duplex } from "node:stream";
import { ConnectionStatus } from "@microsoft/dev-tunnels-connections";
import { TunnelAccessControlEntryType, TunnelAccessScopes } from "@microsoft/dev-tunnels-contracts";
import { HOST_PROTOCOL_V1, HOST_PROTOCOL_V2, type HostProtocol } from "../src/relay/index.ts";
import { eventually, expectNoViolations, type RelayHarness, startRelayHarness } from "./support/relay-harness.ts";

let h: RelayHarness;
beforeEach(async () => {
  h = await startRelayHarness();
});
afterEach(async () => {
  await h.teardown();
  expectNoViolations(h.relay);
});

describe.each<[string, HostProtocol]>([
  ["V2", HOST_PROTOCOL_V2],
  ["V1", HOST_PROTOCOL_V1],
])("%s (%s)", (_name, protocol) => {
  beforeEach(() => {
    h.relay.hostProtocols = [protocol];
  });

  it("an HTTP GET through web forwarding reaches the backend the host forwards the port to", async () => {
    const backend = await h.backend("web");
    const tunnel = h.addTunnel({ id: "kt-hosting", ports: [8080] });
    const host = h.host({ 8080: backend });
    await host.connect(tunnel);

    expect(host.connectionStatus).toBe(ConnectionStatus.Connected);
    expect(h.relay.hostInfo("kt-hosting")?.protocol).toBe(protocol);
    expect(h.service.relay?.hostConnected("kt-hosting")).toBe(true);
    const response = await h.web("kt-hosting", 8080, { path: "/hello?x=1" });
    expect(response.status).toBe(200);
    // Host is rewritten to localhost by default; the public name arrives as X-Forwarded-Host.
    expect(response.body).toBe(`web GET /hello?x=1 host=localhost xfh=${h.relay.webForwardingHost("kt-hosting", 8080)}`);
    expect(response.headers["x-backend"]).toBe("web");
    expect(await h.relay.hostedPorts("kt-hosting")).toEqual([8080]);
    expect(h.management.endpointsUpdated).toBe(1);
    expect(h.relay.events.map((e) => e.event)).toContain("host-connected");

    await host.dispose();
    await eventually(() => expect(h.relay.hostConnected("kt-hosting")).toBe(false));
    expect(h.management.endpointsDeleted).toBe(1);
    expect(h.relay.events.at(-1)).toMatchObject({ event: "host-disconnected", tunnelId: "kt-hosting" });
  });

  it("a port added while connected becomes reachable after host.refreshPorts()", async () => {
    const first = await h.backend("first");
    const second = await h.backend("second");
    const tunnel = h.addTunnel({ id: "kt-addport", ports: [8080] });
    const host = h.host({ 8080: first, 9090: second });
    await host.connect(tunnel);
    expect((await h.web("kt-addport", 8080)).body).toMatch(/^first /);

    h.addPort("kt-addport", 9090);
    await host.refreshPorts();
    await eventually(async () => expect(await h.relay.hostedPorts("kt-addport")).toEqual([8080, 9090]));
    const response = await h.web("kt-addport", 9090);
    expect(response.status).toBe(200);
    expect(response.body).toMatch(/^second GET \/ /);
  });

  it("connectToPort gives a raw byte stream to the hosted port", async () => {
    const backend = await h.backend("raw");
    const tunnel = h.addTunnel({ id: "kt-raw", ports: [3000] });
    await h.host({ 3000: backend }).connect(tunnel);

    const stream = await h.relay.connectToPort("kt-raw", 3000);
    const reply = new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => resolve(Buffer.concat(chunks).toString()));
    });
    stream.write("GET /raw HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n");
    expect(await reply).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*raw GET \/raw host=backend/);
  });
});

describe("subprotocol negotiation", () => {
  it("the SDK offers V2 then V1 and the relay picks V2 by default", async () => {
    const tunnel = h.addTunnel({ id: "kt-negotiate", ports: [] });
    await h.host({}).connect(tunnel);
    expect(h.relay.hostInfo("kt-negotiate")?.protocol).toBe(HOST_PROTOCOL_V2);
  });
});

describe("access control", () => {
  it("without an Anonymous connect ACE web forwarding answers 401; a connect token in X-Tunnel-Authorization gets through", async () => {
    const backend = await h.backend("private");
    const tunnel = h.addTunnel({ id: "kt-private", ports: [8080], anonymous: false });
    await h.host({ 8080: backend }).connect(tunnel);

    const anonymous = await h.web("kt-private", 8080);
    expect(anonymous.status).toBe(401);
    const stored = h.service.tunnels.get("kt-private")!;
    const hostToken = h.service.issueToken(stored, [TunnelAccessScopes.Host]);
    expect((await h.web("kt-private", 8080, { headers: { "x-tunnel-authorization": `tunnel ${hostToken}` } })).status).toBe(403);
    const connectToken = h.service.issueToken(stored, [TunnelAccessScopes.Connect]);
    const authorized = await h.web("kt-private", 8080, { headers: { "x-tunnel-authorization": `tunnel ${connectToken}` } });
    expect(authorized.status).toBe(200);
    expect(authorized.body).toMatch(/^private /);
    expect(h.relay.webRequests.map((r) => [r.relayStatus, r.access])).toEqual([
      [401, undefined],
      [403, undefined],
      [undefined, "token"],
    ]);
  });

  it("a port-level Anonymous ACE opens that port only", async () => {
    const [a, b] = [await h.backend("a"), await h.backend("b")];
    const tunnel = h.addTunnel({ id: "kt-portacl", ports: [8080, 8081], anonymous: false });
    h.service.tunnels.get("kt-portacl")!.ports.get(8081)!.accessControl = { entries: [{ type: TunnelAccessControlEntryType.Anonymous, subjects: [], scopes: [TunnelAccessScopes.Connect] }] };
    await h.host({ 8080: a, 8081: b }).connect(tunnel);
    expect((await h.web("kt-portacl", 8080)).status).toBe(401);
    expect((await h.web("kt-portacl", 8081)).status).toBe(200);
  });

  it("hostHeader and isHostHeaderUnchanged options decide the Host the backend sees", async () => {
    // Two backends: the SDK cannot forward two tunnel ports to one destination port ("Local port N is already forwarded").
    const [a, b] = [await h.backend("a"), await h.backend("b")];
    const tunnel = h.addTunnel({ id: "kt-hdr", ports: [8080, 8081] });
    const stored = h.service.tunnels.get("kt-hdr")!;
    stored.tunnel.options = { hostHeader: "web.default.svc.cluster.local" };
    stored.ports.get(8081)!.options = { isHostHeaderUnchanged: true };
    await h.host({ 8080: a, 8081: b }).connect(tunnel);
    expect((await h.web("kt-hdr", 8080)).body).toContain("host=web.default.svc.cluster.local ");
    expect((await h.web("kt-hdr", 8081)).body).toContain(`host=${h.relay.webForwardingHost("kt-hdr", 8081)} `);
  });
});

describe("nothing to reach", () => {
  it("unknown names and ports are 404, a tunnel without a host is 502, a port the host does not forward is 502", async () => {
    const backend = await h.backend("b");
    h.addTunnel({ id: "kt-nohost", ports: [8080] });
    expect((await h.web("kt-unknown", 8080)).status).toBe(404);
    expect((await h.web("kt-nohost", 9999)).status).toBe(404);
    const offline = await h.web("kt-nohost", 8080);
    expect(offline.status).toBe(502);
    expect(offline.body).toContain("not connected");

    // A port in the tunnel that the host was never told about (no refreshPorts).
    const tunnel = h.addTunnel({ id: "kt-stale", ports: [8080] });
    await h.host({ 8080: backend }).connect(tunnel);
    h.addPort("kt-stale", 8081);
    const unserved = await h.web("kt-stale", 8081);
    expect(unserved.status).toBe(502);
    expect(unserved.body).toContain("not serving port 8081");
  });
});

describe("upgrades and SDK clients", () => {
  it("an HTTP Upgrade (WebSocket) is piped both ways through web forwarding", async () => {
    const backend = createServer();
    const upgraded: Duplex[] = [];
    backend.on("upgrade", (req, socket: Duplex) => {
      upgraded.push(socket);
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\nX-Seen-Host: ${req.headers.host}\r\n\r\n`);
      socket.on("data", (d: Buffer) => socket.write(`echo:${d.toString()}`));
    });
    await new Promise<void>((resolve) => backend.listen(0, "127.0.0.1", resolve));
    const tunnel = h.addTunnel({ id: "kt-upgrade", ports: [8080] });
    await h.host({ 8080: (backend.address() as { port: number }).port }).connect(tunnel);

    const socket = connect(h.relay.publicHttpPort, "127.0.0.1");
    let received = "";
    socket.on("data", (d: Buffer) => {
      received += d.toString();
      if (received.includes("\r\n\r\n") && !received.includes("echo:")) socket.write("ping");
    });
    socket.write(`GET /ws HTTP/1.1\r\nHost: ${h.relay.webForwardingHost("kt-upgrade", 8080)}\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n`);
    await eventually(() => expect(received).toContain("echo:ping"));
    expect(received).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n[\s\S]*X-Seen-Host: localhost\r\n/);
    socket.destroy();
    for (const s of upgraded) s.destroy(); // a server does not track upgraded sockets
    backend.closeAllConnections();
    await new Promise((resolve) => backend.close(resolve));
    expect(h.relay.webRequests.map((r) => [r.upgrade, r.relayStatus])).toEqual([[true, undefined]]);
  });

  it("an SDK client connecting to the client relay URI is refused (501) and recorded as not implemented", async () => {
    h.addTunnel({ id: "kt-client", ports: [] });
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const url = new URL(h.relay.clientRelayUri("kt-client"));
      const req = request({ host: "127.0.0.1", port: url.port, path: url.pathname, headers: { connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-protocol": "tunnel-relay-client" } });
      req.on("response", (res) => resolve(res.statusCode));
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(501);
    expect(h.relay.violations).toEqual([expect.stringContaining("client connections through the relay are not implemented")]);
    h.relay.violations.length = 0;
  });
});
