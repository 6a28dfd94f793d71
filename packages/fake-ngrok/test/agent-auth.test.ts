// Auth against the agent ingress with the real @ngrok/ngrok SDK: sessions recorded in
// the account, ngrok's auth errors, the session limit, and a server that never answers.
import { afterEach, beforeEach, describe, expect, it } from "@jest/globals";
import { newAuthtoken } from "../src/agent/index.ts";
import { eventually, type Harness, rejection, startHarness } from "./support/agent.ts";

let h: Harness;
afterEach(async () => h.teardown());

describe("auth", () => {
  beforeEach(async () => {
    h = await startHarness({ maxSessions: 2 });
  });

  it("records an authenticated session with its metadata, agent version and OS", async () => {
    await h.connect(h.builder().metadata("pod=a"));
    const sessions = [...h.account.sessions.values()];
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({ metadata: "pod=a", agentVersion: "1.7.0", os: "linux", authtoken: h.token, region: "us" });
    expect(sessions[0]!.id).toMatch(/^ts_/);
    expect(sessions[0]!.ip).toMatch(/^127\.0\.0\.1:\d+$/);
    const auth = h.ingress.rpcs.find((r) => r.type === "Auth")!;
    expect(auth).toMatchObject({ from: "agent", sessionId: sessions[0]!.id });
    // The log never carries the token itself.
    expect(JSON.stringify(h.ingress.rpcs)).not.toContain(h.token);
  });

  it("refuses a token that does not look like one with ERR_NGROK_105", async () => {
    const error = await rejection(h.connect(h.builder("not-a-token")));
    expect(error.errorCode).toBe("ERR_NGROK_105");
    expect(error.message).toContain("does not look like a proper ngrok authtoken");
    expect(h.account.sessions.size).toBe(0);
  });

  it("refuses a well-formed token the account does not know with ERR_NGROK_107", async () => {
    const error = await rejection(h.connect(h.builder(newAuthtoken())));
    expect(error.errorCode).toBe("ERR_NGROK_107");
    expect(error.message).toContain("properly formed, but it is invalid");
  });

  it("refuses a session over the plan's limit with ERR_NGROK_108, and admits one again when a session ends", async () => {
    // Session.close() stops the agent's heartbeats but leaves its connection open; the
    // ingress ends the session after interval + tolerance (here 1 s + 1 s).
    const first = await h.connect(h.builder().heartbeatInterval(1).heartbeatTolerance(1));
    await h.connect();
    const error = await rejection(h.connect());
    expect(error.errorCode).toBe("ERR_NGROK_108");
    expect(error.message).toContain("Your account is limited to 2 simultaneous ngrok agent sessions.");
    await first.close();
    await eventually(() => expect(h.account.sessions.size).toBe(1));
    await h.connect();
    expect(h.account.sessions.size).toBe(2);
  });

  it("silent mode: TLS and muxado work but Auth is never answered, so connect() waits until the transport drops", async () => {
    h.ingress.setSilent(true);
    const connecting = h.builder().connect();
    await eventually(() => expect(h.ingress.rpcs.filter((r) => r.type === "Auth")).toHaveLength(1));
    // The barrier: Auth arrived. Killing the transport now is what makes connect() settle.
    expect(h.ingress.killTransport()).toBe(1);
    const error = await rejection(connecting);
    expect(error.message).toMatch(/failed to connect session/);
    expect(h.ingress.rpcs[0]!.reply).toBeUndefined();
    expect(h.account.sessions.size).toBe(0);
  });
});
