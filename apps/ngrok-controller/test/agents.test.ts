// The agents under faults, with the real SDK in real connector processes against the fake
// ngrok cloud: an endpoint ngrok stops, a dropped transport (and a stop after it), heartbeats
// that stop, an endpoint another session holds, a plan's session limit.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import type { KubeObject } from "@ktube/runtime";
import { eventually, waitForKtubeCondition } from "@ktube/testenv";
import { binding, createHarness, ngrokProvider, service, startBackend, tunnel, type Harness } from "./harness.ts";

let h: Harness;
let ns: string;
let host: string;
let stopBackend: () => Promise<void>;
const upstreams: Record<string, string> = {};

const sessionsServing = (url: string): string[] => h.fake.account.endpointsAt(url).map((e) => e.sessionId).sort();

beforeAll(async () => {
  h = await createHarness();
  ns = await h.namespace("ngrok-faults");
  host = `faults-${h.id}.example.com`;
  h.fake.reserveDomain(host);
  const web = await startBackend("web");
  stopBackend = web.close;
  upstreams[`web.${ns}.svc.cluster.local:80`] = `127.0.0.1:${web.port}`;
  await h.client.create(Core.Service, service(ns, "web", 80) as KubeObject);
  await h.startController();
  await h.client.create(TunnelProviderResource, ngrokProvider(h, `ngrok-${h.id}`) as KubeObject);
  await h.client.create(TunnelResource, tunnel(ns, "home", `ngrok-${h.id}`, { replicas: 2 }) as KubeObject);
  await h.client.create(TunnelBindingResource, binding(ns, "web", "home", [{ name: "web", hostname: host, service: { name: "web", port: 80 } }]) as KubeObject);
  await h.runAgents(ns, "home", { upstreams, heartbeatS: 1 });
  await waitForKtubeCondition(h.kc, "TunnelBinding", ns, "web", "Ready", { status: "True" }, 30_000);
  await eventually(() => expect(sessionsServing(`https://${host}`)).toHaveLength(2), 20_000);
}, 90_000);

afterAll(async () => {
  await h?.close();
  await stopBackend?.();
});

describe("ngrok agents under faults", () => {
  it("re-create an endpoint ngrok stopped", async () => {
    const [stopped] = h.fake.account.endpointsAt(`https://${host}`);
    h.fake.ingress.stopEndpoint(stopped!.id);
    await eventually(() => {
      const ids = h.fake.account.endpointsAt(`https://${host}`).map((e) => e.id);
      expect(ids).toHaveLength(2);
      expect(ids).not.toContain(stopped!.id);
    }, 20_000);
    await waitForKtubeCondition(h.kc, "TunnelBinding", ns, "web", "Ready", { status: "True" });
  });

  it("come back on new sessions at the same URL after the transport drops, and still hear ngrok stop an endpoint", async () => {
    const before = sessionsServing(`https://${host}`);
    expect(h.fake.ingress.killTransport()).toBeGreaterThanOrEqual(2);
    // Rebuilt by the supervisor, not resumed by the SDK: a resumed session ignores StopTunnel.
    await eventually(() => {
      const now = sessionsServing(`https://${host}`);
      expect(now).toHaveLength(2);
      expect(now.some((id) => before.includes(id))).toBe(false);
    }, 20_000);
    expect(await h.fake.httpGet(host, "/after-drop")).toEqual({ status: 200, body: "web /after-drop" });
    const [stopped] = h.fake.account.endpointsAt(`https://${host}`);
    h.fake.ingress.stopEndpoint(stopped!.id);
    await eventually(() => {
      const ids = h.fake.account.endpointsAt(`https://${host}`).map((e) => e.id);
      expect(ids).toHaveLength(2);
      expect(ids).not.toContain(stopped!.id);
    }, 20_000);
  });

  it("rebuild a session whose heartbeats stop (the SDK never ends one for that)", async () => {
    const [victim, other] = sessionsServing(`https://${host}`);
    h.fake.ingress.dropHeartbeats(victim!, true);
    // The agent gives up on the silent session and serves from a new one...
    await eventually(() => {
      const now = sessionsServing(`https://${host}`);
      expect(now).toContain(other);
      expect(now.filter((id) => id !== victim && id !== other)).toHaveLength(1);
    }, 30_000);
    // ...and ngrok's side ends the old one once it hears nothing from it (the SDK's close()
    // leaves the connection open; only the missing heartbeats end it).
    h.fake.ingress.dropHeartbeats(victim!, false);
    await eventually(() => {
      const now = sessionsServing(`https://${host}`);
      expect(now).toHaveLength(2);
      expect(now).not.toContain(victim);
    }, 30_000);
    expect(await h.fake.httpGet(host, "/after-heartbeats")).toEqual({ status: 200, body: "web /after-heartbeats" });
  });

  it("report an endpoint another session holds unpooled as EndpointConflict, with ngrok's words", async () => {
    const token = h.fake.addAuthtoken();
    await h.client.create(Core.Secret, { metadata: { name: "ngrok-second", namespace: h.controllerNs }, stringData: { authtoken: token } } as KubeObject);
    await h.client.create(TunnelProviderResource, ngrokProvider(h, `ngrok-second-${h.id}`, { authtokenSecretRef: { name: "ngrok-second", key: "authtoken" } }) as KubeObject);
    await h.client.create(TunnelResource, tunnel(ns, "solo", `ngrok-second-${h.id}`, { replicas: 1, poolingEnabled: false }) as KubeObject);
    await h.client.create(TunnelBindingResource, binding(ns, "copy", "solo", [{ name: "web", hostname: host, service: { name: "web", port: 80 } }]) as KubeObject);
    await h.runAgents(ns, "solo", { upstreams, heartbeatS: 1 });
    const s = await waitForKtubeCondition(h.kc, "TunnelBinding", ns, "copy", "Ready", { status: "False", reason: "EndpointConflict" }, 30_000);
    expect(s.routes![0]!.message).toContain("already online");
    // The pooled endpoint is untouched.
    expect(sessionsServing(`https://${host}`)).toHaveLength(2);
  });

  it("name a plan's session limit on the tunnel whose agent it stops", async () => {
    await eventually(() => expect(h.fake.account.sessions.size).toBe(3), 20_000);
    h.fake.account.limits.maxSessions = 3;
    await h.client.create(TunnelResource, tunnel(ns, "third", `ngrok-${h.id}`, { replicas: 1 }) as KubeObject);
    await h.runAgents(ns, "third", { upstreams, heartbeatS: 1 });
    const s = await waitForKtubeCondition(h.kc, "Tunnel", ns, "third", "AgentsReady", { status: "False", reason: "SessionLimitExceeded" }, 30_000);
    expect(s.conditions!.find((c) => c.type === "AgentsReady")!.message).toContain("limited to 3 simultaneous ngrok agent sessions");
    expect(s.conditions!.find((c) => c.type === "Ready")).toMatchObject({ status: "False", reason: "SessionLimitExceeded" });
  });
});
