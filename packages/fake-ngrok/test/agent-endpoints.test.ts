// Binding endpoints through the real SDK: the URL ngrok's cloud would assign, the account
// rules that refuse a bind (reservations, plan features, limits, conflicts) with ngrok's
// codes, and Unbind.
import { afterEach, describe, expect, it } from "@jest/globals";
import { allocateTcpAddr } from "../src/agent/index.ts";
import { codeOf, eventually, type Harness, rejection, reserveAddr, reserveDomain, startHarness } from "./support/agent.ts";

let h: Harness;
afterEach(async () => h.teardown());

const bindError = async (promise: Promise<unknown>): Promise<{ code: string | undefined; message: string }> => {
  const error = await rejection(promise);
  return { code: codeOf(error), message: error.message };
};

describe("HTTP endpoints", () => {
  it("binds a reserved domain and records the endpoint with its metadata and upstream", async () => {
    h = await startHarness();
    reserveDomain(h.account, "app.example.com");
    const session = await h.connect();
    const listener = await session.httpEndpoint().domain("app.example.com").metadata("route=web").listenAndForward("http://127.0.0.1:9");
    expect(listener.url()).toBe("https://app.example.com");
    expect(listener.id()).toMatch(/^tun_/);
    const endpoints = [...h.account.endpoints.values()];
    expect(endpoints).toEqual([
      expect.objectContaining({ url: "https://app.example.com", proto: "https", hostport: "app.example.com", tunnelId: listener.id(), metadata: "route=web", forwardsTo: "http://127.0.0.1:9/", pooling: false, binding: "public" }),
    ]);
    expect(endpoints[0]!.sessionId).toBe([...h.account.sessions.keys()][0]);
  });

  it("gives an endpoint without a domain the account's dev domain, http or https as asked", async () => {
    h = await startHarness();
    const session = await h.connect();
    const https = await session.httpEndpoint().listenAndForward("http://127.0.0.1:9");
    expect(https.url()).toBe(`https://${h.account.devDomain}`);
    const http = await session.httpEndpoint().scheme("HTTP").listenAndForward("http://127.0.0.1:9");
    expect(http.url()).toBe(`http://${h.account.devDomain}`);
  });

  it("refuses a domain that is not reserved with ERR_NGROK_319", async () => {
    h = await startHarness();
    const session = await h.connect();
    const { code, message } = await bindError(session.httpEndpoint().domain("nope.example.com").listenAndForward("http://127.0.0.1:9"));
    expect(code).toBe("ERR_NGROK_319");
    expect(message).toContain("You must reserve a custom hostname for your account before it can be used to create endpoints.");
    expect(h.account.endpoints.size).toBe(0);
  });

  it("accepts a name under a reserved wildcard domain", async () => {
    h = await startHarness();
    reserveDomain(h.account, "*.apps.example.com");
    const session = await h.connect();
    const listener = await session.httpEndpoint().domain("shop.apps.example.com").listenAndForward("http://127.0.0.1:9");
    expect(listener.url()).toBe("https://shop.apps.example.com");
  });

  it("refuses a URL already online in another session with ERR_NGROK_334 unless both pool", async () => {
    h = await startHarness();
    reserveDomain(h.account, "app.example.com");
    const [a, b] = [await h.connect(), await h.connect()];
    await a.httpEndpoint().domain("app.example.com").listenAndForward("http://127.0.0.1:9");
    const { code, message } = await bindError(b.httpEndpoint().domain("app.example.com").listenAndForward("http://127.0.0.1:9"));
    expect(code).toBe("ERR_NGROK_334");
    expect(message).toContain("The endpoint 'https://app.example.com' is already online. Either");
    // Pooling on one side only is still a conflict.
    expect((await bindError(b.httpEndpoint().domain("app.example.com").poolingEnabled(true).listenAndForward("http://127.0.0.1:9"))).code).toBe("ERR_NGROK_334");
  });

  it("lets two sessions serve one URL when both enable pooling", async () => {
    h = await startHarness();
    reserveDomain(h.account, "pool.example.com");
    const [a, b] = [await h.connect(), await h.connect()];
    const la = await a.httpEndpoint().domain("pool.example.com").poolingEnabled(true).listenAndForward("http://127.0.0.1:9");
    const lb = await b.httpEndpoint().domain("pool.example.com").poolingEnabled(true).listenAndForward("http://127.0.0.1:9");
    expect(la.url()).toBe(lb.url());
    expect(h.account.endpointsAt("https://pool.example.com").map((e) => e.sessionId).sort()).toEqual([...h.account.sessions.keys()].sort());
  });

  it("refuses pooling on a plan without it with ERR_NGROK_18019", async () => {
    h = await startHarness({ pooling: false });
    const session = await h.connect();
    expect((await bindError(session.httpEndpoint().poolingEnabled(true).listenAndForward("http://127.0.0.1:9"))).code).toBe("ERR_NGROK_18019");
  });

  it("refuses an endpoint over the plan's limit with ERR_NGROK_324", async () => {
    h = await startHarness({ maxEndpoints: 1 });
    const session = await h.connect();
    await session.httpEndpoint().listenAndForward("http://127.0.0.1:9");
    const { code, message } = await bindError(session.tcpEndpoint().listenAndForward("tcp://127.0.0.1:9"));
    expect(code).toBe("ERR_NGROK_324");
    expect(message).toContain(`https://${h.account.devDomain}`);
  });

  it("removes the endpoint from the account when the listener closes (Unbind)", async () => {
    h = await startHarness();
    const session = await h.connect();
    const listener = await session.httpEndpoint().listenAndForward("http://127.0.0.1:9");
    expect(h.account.endpoints.size).toBe(1);
    await listener.close();
    expect(h.ingress.rpcs.filter((r) => r.type === "Unbind")).toEqual([expect.objectContaining({ request: { Id: listener.id() }, reply: {} })]);
    expect(h.account.endpoints.size).toBe(0);
  });

  it("refuses what it does not implement, naming it, and records the refusal as a violation", async () => {
    h = await startHarness();
    const session = await h.connect();
    const error = await rejection(session.httpEndpoint().basicAuth("user", "password1234").listenAndForward("http://127.0.0.1:9"));
    expect(error.message).toContain("fake-ngrok does not implement: Bind.Opts.BasicAuth is not implemented");
    const labeled = await rejection(session.labeledListener().label("edge", "edghts_x").listenAndForward("http://127.0.0.1:9"));
    expect(labeled.message).toContain("labeled tunnels");
    expect(h.ingress.violations.splice(0)).toEqual([expect.stringContaining("Bind.Opts.BasicAuth is not implemented"), expect.stringContaining("labeled tunnels")]);
  });
});

describe("TCP and TLS endpoints", () => {
  it("gives a TCP endpoint without an address a random loopback address with a listener", async () => {
    h = await startHarness();
    const session = await h.connect();
    const listener = await session.tcpEndpoint().listenAndForward("tcp://127.0.0.1:9");
    expect(listener.url()).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(h.ingress.publicTcpPorts).toEqual([Number(new URL(listener.url()!).port)]);
    await listener.close();
    await eventually(() => expect(h.ingress.publicTcpPorts).toEqual([]));
  });

  it("binds a reserved TCP address and refuses an unreserved one with ERR_NGROK_307", async () => {
    h = await startHarness();
    const addr = await allocateTcpAddr();
    reserveAddr(h.account, addr);
    const session = await h.connect();
    const listener = await session.tcpEndpoint().remoteAddr(addr).listenAndForward("tcp://127.0.0.1:9");
    expect(listener.url()).toBe(`tcp://${addr}`);
    const { code, message } = await bindError(session.tcpEndpoint().remoteAddr("1.tcp.ngrok.io:12345").listenAndForward("tcp://127.0.0.1:9"));
    expect(code).toBe("ERR_NGROK_307");
    expect(message).toContain("You must reserve an address for your account before it can be used.");
  });

  it("binds a TLS endpoint on a reserved domain; refuses one without a reservation (319) or on a plan without TLS endpoints (312)", async () => {
    h = await startHarness();
    reserveDomain(h.account, "tls.example.com");
    const session = await h.connect();
    const listener = await session.tlsEndpoint().domain("tls.example.com").listenAndForward("tls://127.0.0.1:9");
    expect(listener.url()).toBe("tls://tls.example.com");
    expect((await bindError(session.tlsEndpoint().domain("other.example.com").listenAndForward("tls://127.0.0.1:9"))).code).toBe("ERR_NGROK_319");
    await h.teardown();

    h = await startHarness({ tlsEndpoints: false });
    reserveDomain(h.account, "tls.example.com");
    const other = await h.connect();
    const { code, message } = await bindError(other.tlsEndpoint().domain("tls.example.com").listenAndForward("tls://127.0.0.1:9"));
    expect(code).toBe("ERR_NGROK_312");
    expect(message).toContain("Only Pay-as-you-go plans may create TLS endpoints.");
  });
});
