// The controller as a real process, killed with SIGKILL while ngrok is creating a
// reservation; API rate limits honoured; and deletion that leaves ngrok holding nothing
// KTube made.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import type { KubeObject } from "@ktube/runtime";
import { eventually, waitForKtubeCondition } from "@ktube/testenv";
import { binding, createHarness, ngrokProvider, service, startBackend, tunnel, type Harness } from "./harness.ts";

let h: Harness;
let ns: string;
let stopBackend: () => Promise<void>;
const upstreams: Record<string, string> = {};
const tcpRoute = [{ name: "db", protocol: "TCP", service: { name: "db", port: 5432 } }];

const creates = () => h.fake.api.requests.filter((r) => r.operation === "ReservedAddrsCreate");
/** How long after a refusal a call may still arrive that was sent before the 429 came back. */
const IN_FLIGHT_MS = 500;

beforeAll(async () => {
  h = await createHarness();
  ns = await h.namespace("ngrok-crash");
  const db = await startBackend("db");
  stopBackend = db.close;
  upstreams[`db.${ns}.svc.cluster.local:5432`] = `127.0.0.1:${db.port}`;
  await h.client.create(Core.Service, service(ns, "db", 5432) as KubeObject);
  await h.client.create(TunnelProviderResource, ngrokProvider(h, `ngrok-${h.id}`, { apiKeySecretRef: { name: "ngrok", key: "apiKey" } }) as KubeObject);
  await h.client.create(TunnelResource, tunnel(ns, "home", `ngrok-${h.id}`, { replicas: 1 }) as KubeObject);
}, 60_000);

afterAll(async () => {
  expect(h.fake.api.schemaViolations).toEqual([]);
  await h?.close();
  await stopBackend?.();
});

describe("ngrok controller faults", () => {
  it("reserves nothing twice when it is killed while ngrok creates a reservation", async () => {
    // ngrok makes the reservation but the answer never comes: the controller is killed waiting for it.
    h.fake.api.injectFault("ReservedAddrsCreate", { count: 1, kind: "timeout", when: "after" });
    const first = h.startProcess();
    await h.client.create(TunnelBindingResource, binding(ns, "pg", "home", tcpRoute) as KubeObject);
    await eventually(() => expect(creates()).toHaveLength(1), 30_000);
    expect(h.fake.account.reservedAddrs.size).toBe(1);
    await first.kill();

    const second = h.startProcess();
    await eventually(() => h.client.get(Core.Deployment, ns, "home-ngrok"), 30_000);
    await h.runAgents(ns, "home", { upstreams, heartbeatS: 1 });
    const s = await waitForKtubeCondition(h.kc, "TunnelBinding", ns, "pg", "Ready", { status: "True" }, 30_000);
    // The one ngrok made was adopted from its mark: still one, the one in status.
    expect(h.fake.account.reservedAddrs.size).toBe(1);
    expect(creates()).toHaveLength(1);
    expect(h.fake.account.reservedAddrs.has(s.routes![0]!.reservation!.id)).toBe(true);
    expect(second.output).not.toMatch(/"level":"(error|fatal)"/);
  });

  it("leaves ngrok's API alone for as long as it asks after a 429", async () => {
    await h.stopControllers();
    await h.startController({ api: { baseUrl: h.fake.apiUrl, rateLimitedWaitMs: 3_000 } });
    h.fake.account.limits.apiRequestsPerMinute = 0;
    await h.client.create(TunnelBindingResource, binding(ns, "limited", "home", tcpRoute) as KubeObject);
    const refused = await eventually(() => {
      const r = h.fake.api.requests.find((q) => q.status === 429);
      if (!r) throw new Error("no 429 yet");
      return r;
    }, 30_000);
    h.fake.account.limits.apiRequestsPerMinute = 120;
    h.fake.api.resetRateLimit();
    await waitForKtubeCondition(h.kc, "TunnelBinding", ns, "limited", "Ready", { status: "True" }, 30_000);
    // The next call after the refusal came only after the wait it was told (not at once, not
    // in a loop). A call another reconcile (the tunnel's, the binding's) sent before the 429
    // came back was on its way already and could not wait: it arrives within milliseconds, one
    // per reconcile under way at most.
    const inFlight = h.fake.api.requests.filter((q) => q.at > refused.at && q.at <= refused.at + IN_FLIGHT_MS);
    expect(inFlight.length).toBeLessThanOrEqual(2);
    const sentAfterRefusal = h.fake.api.requests.filter((q) => q.at > refused.at + IN_FLIGHT_MS);
    expect(sentAfterRefusal[0]!.at - refused.at).toBeGreaterThanOrEqual(2_900);
    expect(sentAfterRefusal.filter((q) => q.status === 429)).toHaveLength(0);
  });

  it("leaves ngrok holding nothing KTube made once its objects are deleted", async () => {
    await h.client.delete(TunnelBindingResource, ns, "pg");
    await h.client.delete(TunnelBindingResource, ns, "limited");
    await h.client.delete(TunnelResource, ns, "home");
    await eventually(() => {
      expect(h.fake.account.reservedAddrs.size).toBe(0);
      expect(h.fake.account.endpoints.size).toBe(0);
      expect(h.fake.account.sessions.size).toBe(0);
    }, 30_000);
  });
});
