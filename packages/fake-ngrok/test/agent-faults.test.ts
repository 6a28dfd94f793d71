// Faults the ingress injects, and what the real SDK does about them: a dropped transport
// (the SDK reconnects, resumes its session and rebinds), an ingress restart on the same
// port, an endpoint stopped server-side, unanswered heartbeats, and dashboard commands.
import { afterEach, beforeEach, describe, expect, it } from "@jest/globals";
import { eventually, type Harness, hostOf, httpVia, rejection, startHarness } from "./support/agent.ts";

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => h.teardown());

const onlySession = (): string => {
  const ids = [...h.account.sessions.keys()];
  expect(ids).toHaveLength(1);
  return ids[0]!;
};

/** The Bind the agent sent to rebind `tunnelId` after a reconnect, once answered. */
const rebound = (tunnelId: string | null): (() => void) => () =>
  expect(h.ingress.rpcs.filter((r) => r.type === "Bind" && (r.request as { Id?: string }).Id === tunnelId && r.reply !== undefined)).toHaveLength(1);

describe("transport faults", () => {
  it("a killed transport: the SDK reconnects, resumes the same session id, rebinds the same tunnel, and traffic flows again", async () => {
    const disconnects: string[] = [];
    const upstream = await h.httpUpstream("web");
    const session = await h.connect(
      h.builder().handleDisconnection((_addr, error) => {
        disconnects.push(error);
        return true; // synchronous and boolean: anything else aborts the process
      }),
    );
    const listener = await session.httpEndpoint().listenAndForward(`http://127.0.0.1:${upstream.port}`);
    const sessionId = onlySession();

    expect(h.ingress.killTransport(sessionId)).toBe(1);
    await eventually(rebound(listener.id()));
    expect(disconnects).toEqual(["transport error"]);
    expect(h.ingress.events.filter((e) => e.event === "resumed").map((e) => e.sessionId)).toEqual([sessionId]);
    expect(onlySession()).toBe(sessionId);
    expect([...h.account.endpoints.values()].map((e) => [e.url, e.tunnelId])).toEqual([[listener.url(), listener.id()]]);
    expect(await httpVia(h.ingress, hostOf(listener.url()))).toMatchObject({ status: 200, upstream: "web" });
  });

  it("an ingress restart on the same port: the SDK comes back with its session and endpoint", async () => {
    const upstream = await h.tcpEchoUpstream("echo");
    const session = await h.connect(h.builder().handleDisconnection(() => true));
    const listener = await session.tcpEndpoint().listenAndForward(`tcp://127.0.0.1:${upstream.port}`);
    const sessionId = onlySession();
    const port = h.ingress.port;

    await h.ingress.close();
    expect(h.account.sessions.size).toBe(0);
    await h.ingress.start();
    expect(h.ingress.port).toBe(port);
    await eventually(rebound(listener.id()));
    expect(onlySession()).toBe(sessionId);
    // A random TCP address survives the reconnect, as the listener's URL does.
    expect([...h.account.endpoints.values()].map((e) => e.url)).toEqual([listener.url()]);
  });

  it("a session whose agent closed it ends when its heartbeats stop (the SDK leaves the connection open)", async () => {
    const session = await h.connect(h.builder().heartbeatInterval(1).heartbeatTolerance(1));
    const sessionId = onlySession();
    await session.close();
    await eventually(() => expect(h.account.sessions.size).toBe(0));
    expect(h.ingress.events.find((e) => e.event === "closed" && e.sessionId === sessionId)?.detail).toMatch(/^no heartbeat from the agent for 2000 ms$/);
  });
});

describe("server-side stops", () => {
  it("StopTunnel: listener.join() rejects with ERR_NGROK_3200 and the endpoint goes offline", async () => {
    const session = await h.connect();
    const listener = await session.httpEndpoint().listenAndForward("http://127.0.0.1:9");
    const joined = rejection(listener.join());
    const stopped = h.ingress.stopEndpoint(listener.url()!);
    expect(stopped.tunnelId).toBe(listener.id());
    const error = await joined;
    expect(error.message).toContain("stopped via API");
    expect(error.message).toContain("ERR_NGROK_3200");
    expect(h.account.endpoints.size).toBe(0);
    expect((await httpVia(h.ingress, hostOf(listener.url()))).status).toBe(404);
    expect(h.ingress.rpcs.find((r) => r.type === "StopTunnel")).toMatchObject({ from: "fake", request: { Id: listener.id(), Message: "stopped via API", ErrorCode: "ERR_NGROK_3200" } });
  });

  // Not a fault of the fake: SDK 1.7.0 bundles ngrok-rust 0.18.0, whose reconnect loses the
  // StopTunnel route. Only `SessionBuilder::connect` (ngrok/src/session.rs:696-697 at tag
  // ngrok-v0.18.0) sets `incoming.session`, which the StopTunnel branch of
  // `IncomingStreams::accept` needs (ngrok/src/internals/raw_session.rs:469-489: without it
  // the stream is dropped unread). `try_reconnect` (session.rs:1119-1171) takes a fresh
  // `IncomingStreams` from `connect_inner`, built with `session: None` (raw_session.rs:227-231),
  // and `accept_incoming` (session.rs:1198) accepts from it from then on. The stopped tunnel
  // also stays in the agent's tunnel map, so `try_reconnect` rebinds it with its old id on the
  // next reconnect (session.rs:1133-1148); the fake accepts that rebind (whether ngrok's cloud
  // does for a stopped tunnel is unconfirmed) and the endpoint is back online.
  it("StopTunnel after a resumed session: the SDK drops it, join() never settles, and the next reconnect rebinds the stopped endpoint", async () => {
    const upstream = await h.httpUpstream("web");
    const session = await h.connect(h.builder().handleDisconnection(() => true));
    const listener = await session.httpEndpoint().listenAndForward(`http://127.0.0.1:${upstream.port}`);
    let settled: string | undefined;
    listener.join().then(
      () => (settled = "resolved"),
      (error: Error) => (settled = `rejected: ${error.message}`),
    );
    const sessionId = onlySession();

    h.ingress.killTransport(sessionId);
    await eventually(rebound(listener.id()));
    expect(await httpVia(h.ingress, hostOf(listener.url()))).toMatchObject({ status: 200, upstream: "web" });
    const rebind = h.ingress.rpcs.find((r) => r.type === "Bind" && (r.request as { Id?: string }).Id === listener.id())!;

    const [endpoint] = [...h.account.endpoints.values()];
    h.ingress.stopEndpoint(endpoint!.id);
    // The fake sent it right: on the resumed connection, with the tunnel id the agent rebound.
    expect(h.ingress.rpcs.filter((r) => r.type === "StopTunnel")).toEqual([
      expect.objectContaining({ from: "fake", connection: rebind.connection, sessionId, request: { Id: listener.id(), Message: "stopped via API", ErrorCode: "ERR_NGROK_3200" } }),
    ]);
    expect(h.account.endpoints.size).toBe(0);
    expect((await httpVia(h.ingress, hostOf(listener.url()))).status).toBe(404);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(settled).toBeUndefined(); // without the earlier kill: rejected with ERR_NGROK_3200 at once

    // The next reconnect brings the stopped endpoint back, same tunnel id and URL.
    h.ingress.killTransport(sessionId);
    await eventually(() => expect([...h.account.endpoints.values()].map((e) => [e.url, e.tunnelId])).toEqual([[listener.url(), listener.id()]]));
    expect(await httpVia(h.ingress, hostOf(listener.url()))).toMatchObject({ status: 200, upstream: "web" });
    expect(settled).toBeUndefined();

    await listener.close(); // Unbind still works, and join() resolves
    await eventually(() => expect(settled).toBe("resolved"));
  });

  it("dashboard commands: Stop and Restart reach the agent's handlers; an agent without handlers says so", async () => {
    let stops = 0;
    let restarts = 0;
    await h.connect(
      h
        .builder()
        .handleStopCommand(() => void stops++)
        .handleRestartCommand(() => void restarts++),
    );
    const withHandlers = onlySession();
    expect(await h.ingress.sendStop(withHandlers)).toEqual({});
    expect(await h.ingress.sendRestart(withHandlers)).toEqual({});
    await eventually(() => expect([stops, restarts]).toEqual([1, 1]));

    await h.connect();
    const bare = [...h.account.sessions.keys()].find((id) => id !== withHandlers)!;
    expect(await h.ingress.sendStop(bare)).toEqual({ Error: "the agent has not defined a callback for this operation" });
  });

  it("account.agentControl.stopSession (the REST API's stop): Stop command, then the session is closed", async () => {
    let stops = 0;
    const disconnects: string[] = [];
    await h.connect(
      h
        .builder()
        .handleStopCommand(() => void stops++)
        .handleDisconnection((_addr, error) => {
          disconnects.push(error);
          return false; // do not reconnect: the agent was told to stop
        }),
    );
    const sessionId = onlySession();
    expect(h.account.agentControl!.stopSession(sessionId)).toBe(true);
    expect(h.account.agentControl!.stopSession("ts_unknown")).toBe(false);
    await eventually(() => expect(h.account.sessions.size).toBe(0));
    await eventually(() => expect(disconnects).toHaveLength(1));
    expect(stops).toBe(1);
    expect(h.ingress.events.find((e) => e.event === "closed")?.detail).toBe("closed by the fake (GOAWAY)");
  });
});

describe("heartbeats", () => {
  it("unanswered heartbeats: the agent reports handleHeartbeat(null) and the session stays", async () => {
    const beats: Array<number | null> = [];
    await h.connect(
      h
        .builder()
        .heartbeatInterval(1)
        .heartbeatTolerance(1)
        .handleHeartbeat((latency) => void beats.push(latency)),
    );
    const sessionId = onlySession();
    await eventually(() => expect(beats.filter((b) => typeof b === "number").length).toBeGreaterThan(0));
    h.ingress.dropHeartbeats(sessionId, true);
    await eventually(() => expect(beats).toContain(null));
    expect(h.account.sessions.has(sessionId)).toBe(true);
  });
});
