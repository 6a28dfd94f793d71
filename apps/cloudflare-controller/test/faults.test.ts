// The cloudflare controller when things go wrong, and when nothing changes.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import { sleep, type KubeObject } from "@ktube/runtime";
import { eventually } from "@ktube/testenv";
import Cloudflare from "cloudflare";
import { tunnelName } from "../src/provider/tunnels.ts";
import { binding, cloudflareProvider, connectTunnel, createHarness, service, status, TOKEN, tunnel, waitForCondition, type Harness } from "./harness.ts";

let h: Harness;
let ns: string;
let providerName: string;

beforeAll(async () => {
  h = await createHarness();
  h.fake.addZone("example.net", h.account);
  ns = await h.namespace("cf-faults");
  providerName = `cf-faults-${h.id}`;
  await h.client.create(TunnelProviderResource, cloudflareProvider(h, providerName) as KubeObject);
  await h.client.create(Core.Service, service(ns, "web", [{ name: "http", port: 80 }]) as KubeObject);
});
afterAll(() => h.close());

const putsFor = (tunnelId: string) => h.fake.requests.filter((r) => r.operation === "cloudflare-tunnel-configuration-put-configuration" && r.path.includes(tunnelId) && r.status === 200).length;

describe("restart after a crash", () => {
  it("finds the tunnel an earlier run created but could not record, instead of making a second", async () => {
    await h.client.create(TunnelResource, tunnel(ns, "crashed", providerName) as KubeObject);
    const live = await h.client.get<KubeObject & { metadata: { uid: string } }>(TunnelResource, ns, "crashed");
    // The state a controller killed right after its create call leaves behind.
    const cf = new Cloudflare({ apiToken: TOKEN, baseURL: h.fake.baseUrl, maxRetries: 0 });
    const made = await cf.zeroTrust.tunnels.cloudflared.create({ account_id: h.account, name: tunnelName(live as never), config_src: "cloudflare" });
    await h.startController();
    await eventually(async () => expect((await status(h, "Tunnel", ns, "crashed")).tunnelId).toBe(made.id));
    expect(h.fake.liveTunnels().filter((t) => t.name === made.name)).toHaveLength(1);
    expect(h.fake.callsByOperation()["cloudflare-tunnel-create-a-cloudflare-tunnel"]).toBe(1); // only ours
  });
});

describe("adopting an existing tunnel", () => {
  it("uses existingTunnelId as is and never deletes it", async () => {
    const cf = new Cloudflare({ apiToken: TOKEN, baseURL: h.fake.baseUrl, maxRetries: 0 });
    const theirs = await cf.zeroTrust.tunnels.cloudflared.create({ account_id: h.account, name: "made-by-hand", config_src: "cloudflare" });
    await h.client.create(TunnelResource, tunnel(ns, "adopted", providerName, { cloudflare: { replicas: 1, existingTunnelId: theirs.id } }) as KubeObject);
    await eventually(async () => expect((await status(h, "Tunnel", ns, "adopted")).tunnelId).toBe(theirs.id));
    await h.client.delete(TunnelResource, ns, "adopted");
    await eventually(async () => expect((await h.client.list(TunnelResource, { namespace: ns })).items.map((t) => t.metadata!.name)).not.toContain("adopted"));
    expect(h.fake.liveTunnels().map((t) => t.id)).toContain(theirs.id);
  });
});

describe("coalescing and steady state", () => {
  it("folds a burst of 30 bindings into a few config writes", async () => {
    await connectTunnel(h, ns, "crashed");
    await waitForCondition(h, "Tunnel", ns, "crashed", "Ready", { status: "True" });
    const tunnelId = (await status(h, "Tunnel", ns, "crashed")).tunnelId!;
    const before = putsFor(tunnelId);
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        h.client.create(TunnelBindingResource, binding(ns, `burst-${i}`, { name: "crashed" }, [{ name: "web", hostname: `b${i}.example.net`, service: { name: "web", port: "http" } }]) as KubeObject),
      ),
    );
    await eventually(async () => {
      const config = h.fake.configurations.get(tunnelId)?.config as { ingress: unknown[] } | undefined;
      expect(config?.ingress).toHaveLength(31);
    }, 30_000);
    for (let i = 0; i < 30; i++) await waitForCondition(h, "TunnelBinding", ns, `burst-${i}`, "Ready", { status: "True" }, 30_000);
    expect(putsFor(tunnelId) - before).toBeLessThanOrEqual(5);
  });

  it("makes no provider writes and no Kubernetes writes when nothing changed, even on a full resync", async () => {
    await eventually(() => expect(h.manager!.idle).toBe(true), 20_000);
    await sleep(1500); // delayed keys (config gathering) settle too

    const kubeWrites = async () =>
      (await h.manager!.metrics.count("rest_client_requests_total")) - (await h.manager!.metrics.count("rest_client_requests_total", { method: "GET" }));
    const [p0, k0] = [h.fake.requests.length, await kubeWrites()];
    h.manager!.resync();
    await sleep(500);
    await eventually(() => expect(h.manager!.idle).toBe(true), 20_000);
    await sleep(1500);
    expect(h.fake.requests.slice(p0).filter((r) => r.method !== "GET").map((r) => r.operation)).toEqual([]);
    expect((await kubeWrites()) - k0).toBe(0);
  });
});

describe("a misbehaving Cloudflare", () => {
  it("converges through a 429 storm and 30% 5xx answers, without duplicates", async () => {
    h.fake.configure({ rateLimit: { limit: 8, windowMs: 2000 }, faultRate: 0.3 });
    try {
      for (const name of ["storm-a", "storm-b"]) await h.client.create(TunnelResource, tunnel(ns, name, providerName) as KubeObject);
      for (const [i, t] of ["storm-a", "storm-b", "storm-a", "storm-b"].entries()) {
        await h.client.create(TunnelBindingResource, binding(ns, `storm-${i}`, { name: t }, [{ name: "web", hostname: `storm${i}.example.net`, service: { name: "web", port: "http" } }]) as KubeObject);
      }
      for (const name of ["storm-a", "storm-b"]) await connectTunnel(h, ns, name);
      for (const name of ["storm-a", "storm-b"]) await waitForCondition(h, "Tunnel", ns, name, "Ready", { status: "True" }, 90_000);
      for (let i = 0; i < 4; i++) await waitForCondition(h, "TunnelBinding", ns, `storm-${i}`, "Ready", { status: "True" }, 90_000);
    } finally {
      h.fake.configure({ rateLimit: { limit: 1200, windowMs: 300_000 }, faultRate: 0 });
    }
    expect(h.fake.requests.some((r) => r.status === 429)).toBe(true);
    expect(h.fake.requests.some((r) => r.status >= 500)).toBe(true);
    // What the controller saw is in its metrics, by operation and code.
    expect(await h.manager!.metrics.count("ktube_provider_requests_total", { provider: "cloudflare", code: "429" })).toBeGreaterThan(0);
    expect(await h.manager!.metrics.count("ktube_provider_requests_total", { provider: "cloudflare", operation: "tunnels.create" })).toBeGreaterThan(0);
    const names = h.fake.liveTunnels().map((t) => t.name);
    expect(new Set(names).size).toBe(names.length);
    for (let i = 0; i < 4; i++) {
      expect([...h.fake.records.values()].filter((r) => r.name === `storm${i}.example.net`)).toHaveLength(1);
      expect([...h.fake.records.values()].filter((r) => r.name === `_ktube.storm${i}.example.net`)).toHaveLength(1);
    }
  }, 180_000);

  it("leaves nothing behind once everything is deleted", async () => {
    for (const b of (await h.client.list<KubeObject>(TunnelBindingResource, { namespace: ns })).items) await h.client.delete(TunnelBindingResource, ns, b.metadata!.name!);
    for (const t of (await h.client.list<KubeObject>(TunnelResource, { namespace: ns })).items) await h.client.delete(TunnelResource, ns, t.metadata!.name!);
    await eventually(async () => expect((await h.client.list(TunnelBindingResource, { namespace: ns })).items).toEqual([]), 60_000);
    await eventually(async () => expect((await h.client.list(TunnelResource, { namespace: ns })).items).toEqual([]), 60_000);
    expect(h.fake.liveTunnels().map((t) => t.name)).toEqual(["made-by-hand"]); // adopted, so never deleted
    expect([...h.fake.records.values()]).toEqual([]);
    expect(h.fake.schemaViolations).toEqual([]);
  }, 90_000);
});
