// Dev Tunnels under faults and the other shapes: a create whose answer was lost (no second
// tunnel: the 409 is met by adopting the one with our labels), the orphan sweep, a private
// tunnel, an HTTPS backend, a raw token instead of client credentials.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import { createTestCa } from "@ktube/fake-ngrok";
import type { KubeObject } from "@ktube/runtime";
import { eventually, ktubeStatus, waitForKtubeCondition } from "@ktube/testenv";
import { devTunnelId, OWNER_LABEL, ownerLabel, tunnelLabel } from "../src/provider/identity.ts";
import { binding, createHarness, devtunnelsProvider, service, startBackend, tunnel, type Harness } from "./harness.ts";

let h: Harness;
let ns: string;
const backends: Array<{ close(): Promise<void> }> = [];

const ktubeTunnels = () => [...h.fake.service.tunnels.values()].filter((t) => t.tunnel.labels?.includes(OWNER_LABEL));

beforeAll(async () => {
  h = await createHarness();
  ns = await h.namespace("devtunnels-faults");
  const web = await startBackend("web");
  const cert = createTestCa("backend CA").issue(["secure.internal"]);
  const secure = await startBackend("secure", { cert: cert.certPem, key: cert.keyPem });
  backends.push(web, secure);
  h.upstreams[`web.${ns}.svc.cluster.local:80`] = `127.0.0.1:${web.port}`;
  h.upstreams[`secure.${ns}.svc.cluster.local:8443`] = `127.0.0.1:${secure.port}`;
  await h.client.create(Core.Service, service(ns, "web", 80) as KubeObject);
  await h.client.create(Core.Service, service(ns, "secure", 8443) as KubeObject);
  // A dev tunnel of this installation whose Tunnel is long gone (a crash leftover): the sweep's.
  const owner = `test-${h.id}`;
  const token = h.fake.service.addUserToken(`sp-11111111-2222-3333-4444-555555555555`);
  const orphan = await fetch(`${h.fake.serviceUrl}tunnels/kt-0rphan0000000000?api-version=2023-09-27-preview`, {
    method: "PUT",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "if-none-match": "*" },
    body: JSON.stringify({ tunnelId: "kt-0rphan0000000000", labels: [OWNER_LABEL, ownerLabel(owner), tunnelLabel("00000000-0000-4000-8000-00000000dead")] }),
  });
  expect(orphan.status).toBeLessThan(300);
  await h.startController();
  await h.client.create(TunnelProviderResource, devtunnelsProvider(h, `dt-${h.id}`) as KubeObject);
}, 60_000);

afterAll(async () => {
  expect(h.fake.management.violations).toEqual([]);
  await h?.close();
  await Promise.all(backends.map((b) => b.close()));
});

describe("Dev Tunnels faults", () => {
  it("sweeps a dev tunnel of this installation whose Tunnel no longer exists", async () => {
    await eventually(() => expect(h.fake.service.tunnels.has("kt-0rphan0000000000")).toBe(false), 30_000);
  });

  it("makes no second tunnel when the create's answer is lost: the 409 finds ours by its labels", async () => {
    h.fake.management.injectFault("createTunnel", { count: 1, kind: "5xx", when: "after" });
    await h.client.create(TunnelResource, tunnel(ns, "lost", `dt-${h.id}`) as KubeObject);
    const s = await eventually(async () => {
      const st = await ktubeStatus(h.kc, "Tunnel", ns, "lost");
      if (!st.tunnelId) throw new Error("no tunnel id yet");
      return st;
    }, 30_000);
    const uid = (await h.client.get(TunnelResource, ns, "lost")).metadata!.uid!;
    expect(s.tunnelId).toBe(devTunnelId(`test-${h.id}`, uid));
    expect(ktubeTunnels().filter((t) => t.tunnel.labels?.includes(tunnelLabel(uid)))).toHaveLength(1);
  });

  it("makes no second tunnel when the controller process is SIGKILLed while the service creates one", async () => {
    await h.stopController();
    // The service makes the tunnel and never answers: the controller is killed waiting.
    h.fake.management.injectFault("createTunnel", { count: 1, kind: "timeout", when: "after" });
    const first = h.startProcess();
    await h.client.create(TunnelResource, tunnel(ns, "killed", `dt-${h.id}`) as KubeObject);
    const uid = (await h.client.get(TunnelResource, ns, "killed")).metadata!.uid!;
    await eventually(() => expect(ktubeTunnels().filter((t) => t.tunnel.labels?.includes(tunnelLabel(uid)))).toHaveLength(1), 30_000);
    await first.kill();
    const second = h.startProcess();
    const s = await eventually(async () => {
      const st = await ktubeStatus(h.kc, "Tunnel", ns, "killed");
      if (!st.tunnelId) throw new Error("no tunnel id yet");
      return st;
    }, 30_000);
    expect(s.tunnelId).toBe(devTunnelId(`test-${h.id}`, uid));
    expect(ktubeTunnels().filter((t) => t.tunnel.labels?.includes(tunnelLabel(uid)))).toHaveLength(1);
    await second.stop();
    await h.startController();
  });

  it("keeps a private tunnel's ports closed to anonymous visitors", async () => {
    await h.client.create(TunnelResource, tunnel(ns, "private", `dt-${h.id}`, { access: "Private" }) as KubeObject);
    await h.runHost(ns, "private");
    await h.client.create(TunnelBindingResource, binding(ns, "hidden", "private", [{ name: "web", service: { name: "web", port: 80 } }]) as KubeObject);
    const s = await waitForKtubeCondition(h.kc, "TunnelBinding", ns, "hidden", "Ready", { status: "True" }, 30_000);
    const answer = await h.fake.httpGet(s.routes![0]!.url!, "/");
    expect(answer.status).not.toBe(200);
    expect(answer.body).not.toContain("web /");
  });

  it("reaches a backend that speaks TLS itself through an HTTPS route", async () => {
    await h.client.create(TunnelResource, tunnel(ns, "public", `dt-${h.id}`) as KubeObject);
    await h.runHost(ns, "public");
    await h.client.create(TunnelBindingResource, binding(ns, "tls", "public", [{ name: "web", protocol: "HTTPS", service: { name: "secure", port: 8443 } }]) as KubeObject);
    const s = await waitForKtubeCondition(h.kc, "TunnelBinding", ns, "tls", "Ready", { status: "True" }, 30_000);
    expect(await h.fake.httpGet(s.routes![0]!.url!, "/over-tls")).toEqual({ status: 200, body: "secure /over-tls" });
  });

  it("reports the service's tunnel quota on the Tunnel it stops, in the service's words", async () => {
    const mine = [...h.fake.service.tunnels.values()].filter((t) => t.owner === "sp-11111111-2222-3333-4444-555555555555").length;
    h.fake.service.limits.maxTunnelsPerUser = mine;
    await h.client.create(TunnelResource, tunnel(ns, "one-too-many", `dt-${h.id}`) as KubeObject);
    const s = await waitForKtubeCondition(h.kc, "Tunnel", ns, "one-too-many", "Ready", { status: "False", reason: "QuotaExceeded" }, 30_000);
    expect(s.conditions!.find((c) => c.type === "Ready")!.message).toMatch(/limit/i);
    h.fake.service.limits.maxTunnelsPerUser = 10;
  });

  it("accepts a raw token for short demos, and reports one the service refuses", async () => {
    const good = h.fake.service.addUserToken("sp-demo");
    await h.client.create(Core.Secret, { metadata: { name: "dt-token", namespace: h.controllerNs }, stringData: { good, bad: "not-a-token" } } as KubeObject);
    const raw = (name: string, key: string) => ({
      apiVersion: "ktube.dev/v1alpha1",
      kind: "TunnelProvider",
      metadata: { name, labels: h.providerLabels },
      spec: { type: "devtunnels", devtunnels: { tokenSecretRef: { name: "dt-token", key } } },
    });
    await h.client.create(TunnelProviderResource, raw(`dt-raw-${h.id}`, "good") as KubeObject);
    await h.client.create(TunnelProviderResource, raw(`dt-raw-bad-${h.id}`, "bad") as KubeObject);
    await waitForKtubeCondition(h.kc, "TunnelProvider", undefined, `dt-raw-${h.id}`, "Ready", { status: "True" });
    await waitForKtubeCondition(h.kc, "TunnelProvider", undefined, `dt-raw-bad-${h.id}`, "Ready", { status: "False", reason: "InvalidCredentials" });
  });
});
