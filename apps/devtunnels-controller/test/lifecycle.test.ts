// The Dev Tunnels controller end to end: the real controller against the test API server,
// the real host connector (a TunnelRelayTunnelHost subclass in its own process) against the
// fake service, and requests through the fake relay's web forwarding reaching local backends.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import { PatchType, type KubeObject } from "@ktube/runtime";
import { afterCreationSecond, eventually, ktubeStatus, waitForKtubeCondition, type LocalPod } from "@ktube/testenv";
import { binding, CLIENT_SECRET, createHarness, devtunnelsProvider, service, startBackend, tunnel, type Harness } from "./harness.ts";

let h: Harness;
let ns: string;
let host: LocalPod;
let tunnelId: string;
const backends: Array<{ close(): Promise<void> }> = [];

async function backend(name: string, port: number): Promise<void> {
  const b = await startBackend(name);
  backends.push(b);
  h.upstreams[`${name}.${ns}.svc.cluster.local:${port}`] = `127.0.0.1:${b.port}`;
  await h.client.create(Core.Service, service(ns, name, port) as KubeObject);
}

const urlOf = async (name: string, route: string): Promise<string> => {
  const s = await waitForKtubeCondition(h.kc, "TunnelBinding", ns, name, "Ready", { status: "True" }, 30_000);
  return s.routes!.find((r) => r.name === route)!.url!;
};

const ktubeTunnels = () => [...h.fake.service.tunnels.values()].filter((t) => t.tunnel.labels?.includes("ktube"));

beforeAll(async () => {
  h = await createHarness();
  ns = await h.namespace("devtunnels");
  await backend("web", 80);
  await backend("api", 80);
  await h.startController();
  await h.client.create(TunnelProviderResource, devtunnelsProvider(h, `dt-${h.id}`) as KubeObject);
  await h.client.create(TunnelResource, tunnel(ns, "dev", `dt-${h.id}`, { expiration: "2h" }) as KubeObject);
}, 60_000);

afterAll(async () => {
  expect(h.fake.management.violations).toEqual([]);
  await h?.close();
  await Promise.all(backends.map((b) => b.close()));
});

describe("Dev Tunnels controller", () => {
  it("gets tokens with the service principal's client credentials, and says the service is a preview", async () => {
    const s = await waitForKtubeCondition(h.kc, "TunnelProvider", undefined, `dt-${h.id}`, "Ready", { status: "True", reason: "CredentialsVerified" });
    expect(s.conditions!.find((c) => c.type === "Ready")!.message).toMatch(/preview.*without an SLA/);
    expect(h.fake.entra.requests.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(1);
  });

  it("reports client credentials Entra refuses, in Entra's words and without the secret", async () => {
    await h.client.create(Core.Secret, { metadata: { name: "devtunnels-bad", namespace: h.controllerNs }, stringData: { clientSecret: "wrong" } } as KubeObject);
    const bad = devtunnelsProvider(h, `dt-bad-${h.id}`);
    bad.spec.devtunnels.entra.clientSecretRef.name = "devtunnels-bad";
    await h.client.create(TunnelProviderResource, bad as KubeObject);
    const s = await waitForKtubeCondition(h.kc, "TunnelProvider", undefined, `dt-bad-${h.id}`, "Ready", { status: "False", reason: "InvalidCredentials" });
    const message = s.conditions!.find((c) => c.type === "Ready")!.message!;
    expect(message).toContain("AADSTS7000215");
    expect(message).not.toContain("wrong");
  });

  it("makes one dev tunnel per Tunnel, with a deterministic id, KTube's labels and the expiration the service granted", async () => {
    const s = await eventually(async () => {
      const st = await ktubeStatus(h.kc, "Tunnel", ns, "dev");
      if (!st.tunnelId || !st.expiresAt) throw new Error("no tunnel id or expiration yet");
      return st;
    }, 30_000);
    tunnelId = s.tunnelId!;
    expect(tunnelId).toMatch(/^kt-[0-9a-f]{16}$/);
    const stored = h.fake.service.tunnels.get(tunnelId)!;
    expect(stored.tunnel.labels).toEqual(expect.arrayContaining(["ktube", expect.stringMatching(/^ktube-tunnel=/)]));
    expect(stored.tunnel.accessControl?.entries?.some((e) => String(e.type) === "Anonymous")).toBe(true);
    expect(Date.parse(s.expiresAt!)).toBeGreaterThan(Date.now());
  });

  it("hosts the tunnel from the host connector, under its own identity", async () => {
    host = await h.runHost(ns, "dev");
    await waitForKtubeCondition(h.kc, "Tunnel", ns, "dev", "HostConnected", { status: "True" }, 30_000);
    const s = await waitForKtubeCondition(h.kc, "Tunnel", ns, "dev", "Ready", { status: "True" });
    expect(s.conditions!.find((c) => c.type === "Ready")!.message).toContain("preview");
  });

  it("serves each route on its own port, two Services on port 80 side by side", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "site", "dev", [
      { name: "web", service: { name: "web", port: 80 } },
      { name: "api", service: { name: "api", port: "http" } },
    ]) as KubeObject);
    const web = await urlOf("site", "web");
    const api = await urlOf("site", "api");
    expect(web).toMatch(new RegExp(`^https://${tunnelId}-80\\.`));
    expect(api).toMatch(new RegExp(`^https://${tunnelId}-8000\\.`));
    expect(await h.fake.httpGet(web, "/index.html")).toEqual({ status: 200, body: "web /index.html" });
    expect(await h.fake.httpGet(api, "/v1")).toEqual({ status: 200, body: "api /v1" });
    // The port is kept in status, so the URL survives restarts.
    const st = await ktubeStatus(h.kc, "TunnelBinding", ns, "site");
    expect(st.routes!.find((r) => r.name === "api")!.reservation).toEqual({ id: "port", address: "8000" });
  });

  it("refuses the route past the 10-port limit with PortLimitExceeded, the youngest binding's", async () => {
    const routes = Array.from({ length: 9 }, (_, i) => ({ name: `r${i}`, service: { name: "web", port: 80 } }));
    // Strictly younger than "site" (ages have one-second resolution; ties go by name).
    await afterCreationSecond(await h.client.get(TunnelBindingResource, ns, "site"));
    await h.client.create(TunnelBindingResource, binding(ns, "many", "dev", routes) as KubeObject);
    const s = await waitForKtubeCondition(h.kc, "TunnelBinding", ns, "many", "Ready", { status: "False", reason: "PortLimitExceeded" }, 30_000);
    expect(s.routes!.filter((r) => r.ready)).toHaveLength(8);
    expect(s.routes!.find((r) => r.name === "r8")!.message).toContain("at most 10 ports");
    expect(h.fake.service.tunnels.get(tunnelId)!.ports.size).toBe(10);
    await h.client.delete(TunnelBindingResource, ns, "many");
    await eventually(() => expect(h.fake.service.tunnels.get(tunnelId)!.ports.size).toBe(2), 20_000);
  });

  it("resumes hosting after the relay drops the connection", async () => {
    const web = await urlOf("site", "web");
    expect(h.fake.relay.dropHost(tunnelId)).toBe(true);
    await eventually(async () => expect(await h.fake.httpGet(web, "/after-drop")).toEqual({ status: 200, body: "web /after-drop" }), 30_000);
  });

  it("keeps hosting while the controller is down", async () => {
    const web = await urlOf("site", "web");
    await h.stopController();
    expect(await h.fake.httpGet(web, "/no-controller")).toEqual({ status: 200, body: "web /no-controller" });
    await h.startController();
  });

  it("re-creates a dev tunnel the service expired, with the same id and URLs, and says so", async () => {
    const web = await urlOf("site", "web");
    h.fake.service.tunnels.get(tunnelId)!.expires = Date.now() - 1;
    expect(h.fake.service.expire()).toEqual([tunnelId]);
    // Any change wakes the Tunnel (in a cluster: the periodic resync, or the host reporting it lost the relay).
    await h.client.patch(TunnelResource, ns, "dev", { metadata: { annotations: { "test/poke": "1" } } }, PatchType.merge);
    await eventually(() => expect(h.fake.service.tunnels.has(tunnelId)).toBe(true), 30_000);
    await eventually(async () => expect(await h.fake.httpGet(web, "/again")).toEqual({ status: 200, body: "web /again" }), 40_000);
    const events = await h.client.list<KubeObject & { reason?: string; note?: string }>({ apiVersion: "events.k8s.io/v1", kind: "Event", plural: "events", namespaced: true }, { namespace: ns });
    expect(events.items.some((e) => e.reason === "TunnelRecreated")).toBe(true);
  });

  it("lets the newest of two hosts serve, and the older one step aside", async () => {
    const web = await urlOf("site", "web");
    const second = await h.runHost(ns, "dev");
    await eventually(() => expect(host.process.output).toMatch(/stepped aside/), 30_000);
    await eventually(async () => expect(await h.fake.httpGet(web, "/newest")).toEqual({ status: 200, body: "web /newest" }), 20_000);
    // The older one stays down: the relay's host is the newest.
    expect(h.fake.relay.events.filter((e) => e.tunnelId === tunnelId && e.event === "host-replaced").length).toBeGreaterThanOrEqual(1);
    await host.process.stop();
    host = second;
  });

  it("never puts a token or the client secret in status, Events or the host's logs", async () => {
    const tokens = [...h.fake.service.tunnels.values()].flatMap((t) => [...t.tokens.keys()]);
    const everything = JSON.stringify([
      await ktubeStatus(h.kc, "TunnelProvider", undefined, `dt-${h.id}`),
      await ktubeStatus(h.kc, "Tunnel", ns, "dev"),
      await ktubeStatus(h.kc, "TunnelBinding", ns, "site"),
      (await h.client.list({ apiVersion: "events.k8s.io/v1", kind: "Event", plural: "events", namespaced: true }, { namespace: ns })).items,
      host.process.output,
    ]);
    expect(everything).not.toContain(CLIENT_SECRET);
    for (const token of tokens) expect(everything).not.toContain(token);
  });

  it("deletes the dev tunnel with the Tunnel, leaving the service without KTube's tunnels", async () => {
    await h.client.delete(TunnelBindingResource, ns, "site");
    await h.client.delete(TunnelResource, ns, "dev");
    await eventually(() => expect(ktubeTunnels()).toEqual([]), 30_000);
  });
});
