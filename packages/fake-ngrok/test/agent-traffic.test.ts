// Public traffic through the fake to real upstreams, via the real SDK's forwarding: HTTP
// routed by Host, TCP by port, TLS by SNI (passed through, or terminated with the
// endpoint's certificate), and pooled endpoints taking turns.
import { afterEach, beforeEach, describe, expect, it } from "@jest/globals";
import { randomBytes } from "node:crypto";
import { allocateTcpAddr } from "../src/agent/index.ts";
import { type Harness, hostOf, httpVia, reserveAddr, reserveDomain, startHarness, tcpRoundTrip, tlsRoundTrip } from "./support/agent.ts";

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => h.teardown());

describe("HTTP", () => {
  it("carries a request from the public port through the agent to its upstream", async () => {
    const upstream = await h.httpUpstream("web");
    const session = await h.connect();
    const listener = await session.httpEndpoint().listenAndForward(`http://127.0.0.1:${upstream.port}`);
    const reply = await httpVia(h.ingress, hostOf(listener.url()), "/hello?x=1");
    expect(reply).toEqual({ status: 200, body: "web /hello?x=1", upstream: "web" });
    expect(h.ingress.proxied).toEqual([expect.objectContaining({ url: listener.url(), tunnelId: listener.id(), clientAddr: expect.stringMatching(/^127\.0\.0\.1:\d+$/) })]);
  });

  it("carries a megabyte each way (flow control: windows of 256 KiB in both directions)", async () => {
    const upstream = await h.httpUpstream("echo");
    const session = await h.connect();
    reserveDomain(h.account, "big.example.com");
    await session.httpEndpoint().domain("big.example.com").listenAndForward(`http://127.0.0.1:${upstream.port}`);
    const body = randomBytes(1 << 20);
    const reply = await httpVia(h.ingress, "big.example.com", "/", body);
    expect(reply.status).toBe(200);
    expect(Buffer.from(reply.body, "latin1").equals(body)).toBe(true);
  });

  it("answers a Host no endpoint serves with ngrok's offline page (ERR_NGROK_3200)", async () => {
    const reply = await httpVia(h.ingress, "nobody.example.com");
    expect(reply.status).toBe(404);
    expect(reply.body).toContain("ERR_NGROK_3200");
  });

  it("takes pooled endpoints of two sessions in turn", async () => {
    reserveDomain(h.account, "pool.example.com");
    const [one, two] = [await h.httpUpstream("one"), await h.httpUpstream("two")];
    const [a, b] = [await h.connect(), await h.connect()];
    await a.httpEndpoint().domain("pool.example.com").poolingEnabled(true).listenAndForward(`http://127.0.0.1:${one.port}`);
    await b.httpEndpoint().domain("pool.example.com").poolingEnabled(true).listenAndForward(`http://127.0.0.1:${two.port}`);
    const served: Array<string | undefined> = [];
    for (let i = 0; i < 4; i++) served.push((await httpVia(h.ingress, "pool.example.com")).upstream);
    expect(served.sort()).toEqual(["one", "one", "two", "two"]);
    expect(new Set(h.ingress.proxied.map((p) => p.sessionId)).size).toBe(2);
  });
});

describe("TCP", () => {
  it("carries bytes both ways on a random address", async () => {
    const upstream = await h.tcpEchoUpstream("tcp");
    const session = await h.connect();
    const listener = await session.tcpEndpoint().listenAndForward(`tcp://127.0.0.1:${upstream.port}`);
    const port = Number(new URL(listener.url()!).port);
    expect(await tcpRoundTrip(port, "ping")).toBe("tcp:ping");
  });

  it("carries bytes on a reserved address spelled localhost:PORT (bound as 127.0.0.1:PORT: the same loopback port)", async () => {
    const upstream = await h.tcpEchoUpstream("reserved");
    const addr = (await allocateTcpAddr()).replace("127.0.0.1", "localhost");
    reserveAddr(h.account, addr);
    const session = await h.connect();
    const listener = await session.tcpEndpoint().remoteAddr(addr.replace("localhost", "127.0.0.1")).listenAndForward(`tcp://127.0.0.1:${upstream.port}`);
    expect(listener.url()).toBe(`tcp://${addr}`);
    expect(await tcpRoundTrip(Number(addr.split(":")[1]), "hello")).toBe("reserved:hello");
  });

  it("writes a PROXY v1 header the agent reads and passes upstream", async () => {
    let seen = "";
    const upstream = await h.tcpEchoUpstream("pp");
    const session = await h.connect();
    const listener = await session.tcpEndpoint().proxyProto("1").listenAndForward(`tcp://127.0.0.1:${upstream.port}`);
    seen = await tcpRoundTrip(Number(new URL(listener.url()!).port), "data");
    // The agent re-emits the header it read before the bytes; the echo server returns both.
    expect(seen).toMatch(/^pp:PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ \d+\r\ndata$/);
  });
});

describe("TLS", () => {
  it("passes TLS through by SNI: the client sees the upstream's own certificate", async () => {
    reserveDomain(h.account, "secure.example.com");
    const upstream = await h.tlsEchoUpstream("tls", "secure.example.com");
    const session = await h.connect();
    await session.tlsEndpoint().domain("secure.example.com").listenAndForward(`tls://127.0.0.1:${upstream.port}`);
    const result = await tlsRoundTrip(h.ingress.publicTlsPort, "secure.example.com", h.ca.caPem, "hi");
    expect(result).toEqual({ received: "tls:hi", certCn: "secure.example.com" });
    expect(upstream.served()).toBe(1);
  });

  it("terminates TLS with the certificate the endpoint was bound with and forwards plaintext", async () => {
    reserveDomain(h.account, "edge.example.com");
    const leaf = h.ca.issue(["edge.example.com"]);
    const upstream = await h.tcpEchoUpstream("plain");
    const session = await h.connect();
    await session
      .tlsEndpoint()
      .domain("edge.example.com")
      .termination(Buffer.from(leaf.certPem), Buffer.from(leaf.keyPem))
      .listenAndForward(`tcp://127.0.0.1:${upstream.port}`);
    const result = await tlsRoundTrip(h.ingress.publicTlsPort, "edge.example.com", h.ca.caPem, "hi");
    expect(result).toEqual({ received: "plain:hi", certCn: "edge.example.com" });
  });
});
