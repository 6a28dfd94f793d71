// The cloudflare controller when things go wrong, and when nothing changes: a process
// killed (SIGKILL) in its crash windows, adopted tunnels, bursts, a 429 and 5xx storm.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import { requestsWhileBlocked } from "@ktube/fake-cloudflare";
import { PatchType, type KubeObject } from "@ktube/runtime";
import { eventually } from "@ktube/testenv";
import Cloudflare from "cloudflare";
import { binding, cloudflareProvider, condition, connectTunnel, createHarness, service, status, TOKEN, tunnel, waitForCondition, type Harness } from "./harness.ts";

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

const records = (name: string) => [...h.fake.records.values()].filter((r) => r.name === name || r.name === `_ktube.${name}`);
const putsFor = (tunnelId: string) => h.fake.requests.filter((r) => r.name === "tunnels.configurations.update" && r.path.includes(tunnelId) && r.status === 200).length;

describe("a controller process killed with SIGKILL", () => {
  it("between creating the Cloudflare tunnel and writing status: the next run finds it, no second tunnel", async () => {
    const held = h.fake.hold("tunnels.create");
    const first = h.startProcess();
    await h.client.create(TunnelResource, tunnel(ns, "crashed", providerName) as KubeObject);
    const created = await held.arrived; // Cloudflare made the tunnel; the controller never heard back
    await first.kill();
    held.release();
    expect(created.status).toBe(200);
    expect((await status(h, "Tunnel", ns, "crashed")).tunnelId).toBeUndefined();
    const made = h.fake.liveTunnels();
    expect(made).toHaveLength(1);

    const second = h.startProcess();
    await eventually(async () => expect((await status(h, "Tunnel", ns, "crashed")).tunnelId).toBe(made[0]!.id), 30_000);
    expect(h.fake.liveTunnels()).toHaveLength(1);
    expect(h.fake.requests.filter((r) => r.name === "tunnels.create")).toHaveLength(1);
    await second.stop();
  });

  it("between the DNS write and the status write: the next run converges with one record of each", async () => {
    const held = h.fake.hold("dns.records.batch");
    const first = h.startProcess();
    await h.client.create(TunnelBindingResource, binding(ns, "dns-crash", { name: "crashed" }, [{ name: "web", hostname: "crash.example.net", service: { name: "web", port: "http" } }]) as KubeObject);
    await held.arrived;
    await first.kill();
    held.release();
    // Written at Cloudflare, not in status.
    expect(records("crash.example.net").map((r) => r.type).sort()).toEqual(["CNAME", "TXT"]);
    expect((await status(h, "TunnelBinding", ns, "dns-crash")).routes?.[0]?.url).toBeUndefined();

    const second = h.startProcess();
    await connectTunnel(h, ns, "crashed");
    const s = await waitForCondition(h, "TunnelBinding", ns, "dns-crash", "Ready", { status: "True" }, 30_000);
    expect(s.routes).toEqual([{ name: "web", ready: true, url: "https://crash.example.net/" }]);
    expect(records("crash.example.net").map((r) => r.type).sort()).toEqual(["CNAME", "TXT"]);
    await second.stop();
    // Nothing it logged carries the API token or the connector token.
    expect(first.output + second.output).not.toContain(TOKEN);
    expect(first.output + second.output).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}/);
  });

  it("during a zone batch that renames one hostname and drops a deleted binding's: the next run converges, nothing leaked or doubled", async () => {
    const first = h.startProcess();
    const route = (hostname: string) => [{ name: "web", hostname, service: { name: "web", port: "http" } }];
    await h.client.create(TunnelBindingResource, binding(ns, "renamed", { name: "crashed" }, route("old.example.net")) as KubeObject);
    await h.client.create(TunnelBindingResource, binding(ns, "leaving", { name: "crashed" }, route("leaving.example.net")) as KubeObject);
    for (const name of ["renamed", "leaving"]) await waitForCondition(h, "TunnelBinding", ns, name, "Ready", { status: "True" }, 30_000);

    const held = h.fake.hold("dns.records.batch");
    await h.client.patch(TunnelBindingResource, ns, "renamed", [{ op: "replace", path: "/spec/routes/0/hostname", value: "new.example.net" }], PatchType.json);
    await h.client.delete(TunnelBindingResource, ns, "leaving");
    const batch = await held.arrived; // Cloudflare applies it; the controller never hears back
    await first.kill();
    held.release();
    expect(batch.status).toBe(200);

    const second = h.startProcess();
    await eventually(async () => expect((await status(h, "TunnelBinding", ns, "renamed")).routes).toEqual([{ name: "web", ready: true, url: "https://new.example.net/" }]), 30_000);
    await eventually(async () => expect((await h.client.list(TunnelBindingResource, { namespace: ns })).items.map((b) => b.metadata!.name)).not.toContain("leaving"), 30_000);
    await eventually(() => {
      expect(records("new.example.net").map((r) => r.type).sort()).toEqual(["CNAME", "TXT"]);
      expect([...records("old.example.net"), ...records("leaving.example.net")]).toEqual([]);
    }, 30_000);
    await h.client.delete(TunnelBindingResource, ns, "renamed");
    await eventually(() => expect(records("new.example.net")).toEqual([]), 30_000);
    await second.stop();
  });
});

describe("adopting an existing tunnel", () => {
  let theirs: { id: string };
  beforeAll(async () => {
    await h.startController();
    const cf = new Cloudflare({ apiToken: TOKEN, baseURL: h.fake.baseUrl, maxRetries: 0 });
    const made = await cf.zeroTrust.tunnels.cloudflared.create({ account_id: h.account, name: "made-by-hand", config_src: "cloudflare" });
    theirs = { id: made.id! };
  });

  it("records the adoption in status and never deletes the tunnel", async () => {
    await h.client.create(TunnelResource, tunnel(ns, "adopted", providerName, { cloudflare: { replicas: 1, existingTunnelId: theirs.id } }) as KubeObject);
    await eventually(async () => expect(await status(h, "Tunnel", ns, "adopted")).toMatchObject({ tunnelId: theirs.id, adopted: true }));
  });

  it("refuses a second Tunnel on the same Cloudflare tunnel", async () => {
    await h.client.create(TunnelResource, tunnel(ns, "copycat", providerName, { cloudflare: { replicas: 1, existingTunnelId: theirs.id } }) as KubeObject);
    const s = await waitForCondition(h, "Tunnel", ns, "copycat", "Ready", { status: "False", reason: "TunnelInUse" });
    expect(condition(s, "Ready")?.message).toContain(`${ns}/adopted`);
    expect(s.tunnelId).toBeUndefined();
    await h.client.delete(TunnelResource, ns, "copycat");
  });

  it("deleting the Tunnel leaves the adopted Cloudflare tunnel", async () => {
    await h.client.delete(TunnelResource, ns, "adopted");
    await eventually(async () => expect((await h.client.list(TunnelResource, { namespace: ns })).items.map((t) => t.metadata!.name)).not.toContain("adopted"));
    expect(h.fake.liveTunnels().map((t) => t.id)).toContain(theirs.id);
  });
});

describe("coalescing and steady state", () => {
  it("folds a burst of 30 bindings into a few config writes", async () => {
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
      expect(config?.ingress).toHaveLength(32);
    }, 30_000);
    for (let i = 0; i < 30; i++) await waitForCondition(h, "TunnelBinding", ns, `burst-${i}`, "Ready", { status: "True" }, 30_000);
    expect(putsFor(tunnelId) - before).toBeLessThanOrEqual(5);
  });

  it("makes no provider writes and no Kubernetes writes when nothing changed, even on a full resync", async () => {
    const settled = () => eventually(() => expect(h.manager!.settled).toBe(true), 20_000);
    await settled();
    const kubeWrites = async () =>
      (await h.manager!.metrics.count("rest_client_requests_total")) - (await h.manager!.metrics.count("rest_client_requests_total", { method: "GET" }));
    const reconciles = () => h.manager!.metrics.count("controller_runtime_reconcile_total");
    const [p0, k0, r0] = [h.fake.requests.length, await kubeWrites(), await reconciles()];
    h.manager!.resync();
    // Barrier: every key the resync enqueued was reconciled, and nothing is left gathering.
    await eventually(async () => expect(await reconciles()).toBeGreaterThan(r0 + 30), 20_000);
    await settled();
    expect(h.fake.requests.slice(p0).filter((r) => r.method !== "GET").map((r) => r.name)).toEqual([]);
    expect((await kubeWrites()) - k0).toBe(0);
  });
});

describe("a misbehaving Cloudflare", () => {
  it("converges through a 429 storm and 30% 5xx answers (half after the change was made), Access included, without duplicates", async () => {
    const windowMs = 2000;
    h.fake.configure({ rateLimit: { limit: 8, windowMs }, faultRate: 0.3 });
    try {
      for (const name of ["storm-a", "storm-b"]) await h.client.create(TunnelResource, tunnel(ns, name, providerName) as KubeObject);
      for (const [i, t] of ["storm-a", "storm-b", "storm-a", "storm-b"].entries()) {
        const access = i % 2 === 0 ? { access: { emails: [`user${i}@example.net`] } } : {};
        await h.client.create(TunnelBindingResource, binding(ns, `storm-${i}`, { name: t }, [{ name: "web", hostname: `storm${i}.example.net`, service: { name: "web", port: "http" }, ...access }]) as KubeObject);
      }
      for (const name of ["storm-a", "storm-b"]) await connectTunnel(h, ns, name);
      for (const name of ["storm-a", "storm-b"]) await waitForCondition(h, "Tunnel", ns, name, "Ready", { status: "True" }, 90_000);
      for (let i = 0; i < 4; i++) await waitForCondition(h, "TunnelBinding", ns, `storm-${i}`, "Ready", { status: "True" }, 90_000);
    } finally {
      h.fake.configure({ rateLimit: { limit: 1200, windowMs: 300_000 }, faultRate: 0 });
    }
    expect(h.fake.requests.some((r) => r.status === 429)).toBe(true);
    expect(h.fake.requests.some((r) => r.status >= 500)).toBe(true);
    // While blocked, the controller waits out Retry-After: at most the calls already in
    // flight when the 429 came reach Cloudflare, which its workers bound (three
    // controllers with 4 each here); a client that kept calling would send far more.
    const blocks = requestsWhileBlocked(h.fake.requests);
    expect(blocks.length).toBeGreaterThan(0);
    for (const block of blocks) expect(block.requests.length).toBeLessThanOrEqual(12);
    expect(await h.manager!.metrics.count("ktube_provider_requests_total", { provider: "cloudflare", code: "429" })).toBeGreaterThan(0);
    expect(await h.manager!.metrics.count("ktube_provider_requests_total", { provider: "cloudflare", operation: "tunnels.create" })).toBeGreaterThan(0);
    const names = h.fake.liveTunnels().map((t) => t.name);
    expect(new Set(names).size).toBe(names.length);
    for (let i = 0; i < 4; i++) {
      expect(records(`storm${i}.example.net`).map((r) => r.type).sort()).toEqual(["CNAME", "TXT"]);
    }
    // Access: one application per protected hostname, each with exactly its one policy.
    for (const i of [0, 2]) {
      const apps = [...h.fake.apps.values()].filter((a) => a.domain === `storm${i}.example.net`);
      expect(apps).toHaveLength(1);
      expect([...apps[0]!.policies.values()].map((p) => p.include)).toEqual([[{ email: { email: `user${i}@example.net` } }]]);
    }
  }, 180_000);

  it("leaves nothing behind once everything is deleted", async () => {
    for (const b of (await h.client.list<KubeObject>(TunnelBindingResource, { namespace: ns })).items) await h.client.delete(TunnelBindingResource, ns, b.metadata!.name!);
    for (const t of (await h.client.list<KubeObject>(TunnelResource, { namespace: ns })).items) await h.client.delete(TunnelResource, ns, t.metadata!.name!);
    await eventually(async () => expect((await h.client.list(TunnelBindingResource, { namespace: ns })).items).toEqual([]), 60_000);
    await eventually(async () => expect((await h.client.list(TunnelResource, { namespace: ns })).items).toEqual([]), 60_000);
    expect(h.fake.liveTunnels().map((t) => t.name)).toEqual(["made-by-hand"]); // adopted, so never deleted
    expect([...h.fake.records.values()]).toEqual([]);
    expect(h.fake.apps.size).toBe(0);
    expect(h.fake.schemaViolations).toEqual([]);
  }, 90_000);
});
