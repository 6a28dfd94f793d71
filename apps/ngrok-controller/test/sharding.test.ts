// Two ngrok accounts in one cluster, served by two controller instances that split the
// TunnelProviders between them with --provider-selector: each instance's agents use their
// own account's authtoken and ingress, and neither touches the other's objects.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import { FakeNgrok } from "@ktube/fake-ngrok";
import { registerProviderControllers } from "@ktube/provider-kit";
import { createLogger, Manager, type KubeObject } from "@ktube/runtime";
import { ktubeStatus, waitForKtubeCondition } from "@ktube/testenv";
import { MANAGED_BY } from "../src/manifests/connector.ts";
import { ngrokPlugin } from "../src/plugin.ts";
import { binding, createHarness, ngrokProvider, service, startBackend, tunnel, type Harness } from "./harness.ts";

let h: Harness;
let ns: string;
let second: FakeNgrok;
let shardB: Manager;
let stopBackend: () => Promise<void>;
const upstreams: Record<string, string> = {};

beforeAll(async () => {
  h = await createHarness();
  ns = await h.namespace("ngrok-shards");
  second = new FakeNgrok();
  const token = second.addAuthtoken();
  await second.start();
  const web = await startBackend("web");
  stopBackend = web.close;
  upstreams[`web.${ns}.svc.cluster.local:80`] = `127.0.0.1:${web.port}`;
  await h.client.create(Core.Service, service(ns, "web", 80) as KubeObject);
  await h.client.create(Core.Secret, { metadata: { name: "ngrok-b", namespace: h.controllerNs }, stringData: { authtoken: token } } as KubeObject);

  // Shard A: the harness's controller (its own selector); shard B: another instance for the second account.
  await h.startController();
  shardB = new Manager({ kubeConfig: h.kc, name: "ngrok-controller", logger: createLogger({ name: "shard-b", level: "silent" }), probeAddress: false, metricsAddress: false });
  registerProviderControllers(shardB, ngrokPlugin({ connectorImage: "ktube/ngrok-controller:test", serverAddr: second.serverAddr, caPem: second.caPem }), {
    namespace: h.controllerNs,
    managedBy: MANAGED_BY,
    providerSelector: `ktube.dev/shard=b-${h.id}`,
    maxConcurrentReconciles: 4,
    configDelayMs: 200,
  });
  await shardB.start();

  await h.client.create(TunnelProviderResource, ngrokProvider(h, `ngrok-a-${h.id}`) as KubeObject);
  await h.client.create(TunnelProviderResource, {
    ...ngrokProvider(h, `ngrok-b-${h.id}`, { authtokenSecretRef: { name: "ngrok-b", key: "authtoken" } }),
    metadata: { name: `ngrok-b-${h.id}`, labels: { "ktube.dev/shard": `b-${h.id}` } },
  } as KubeObject);
  await h.client.create(TunnelResource, tunnel(ns, "a", `ngrok-a-${h.id}`, { replicas: 1 }) as KubeObject);
  await h.client.create(TunnelResource, tunnel(ns, "b", `ngrok-b-${h.id}`, { replicas: 1 }) as KubeObject);
}, 90_000);

afterAll(async () => {
  await shardB?.stop();
  await h?.close();
  await second?.stop();
  await stopBackend?.();
});

describe("two ngrok accounts, two controller shards", () => {
  it("verifies each provider with its own account, in the shard that serves it", async () => {
    await waitForKtubeCondition(h.kc, "TunnelProvider", undefined, `ngrok-a-${h.id}`, "Ready", { status: "True" });
    await waitForKtubeCondition(h.kc, "TunnelProvider", undefined, `ngrok-b-${h.id}`, "Ready", { status: "True" });
  });

  it("serves each tunnel's routes on its own account", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "on-a", "a", [{ name: "web", service: { name: "web", port: 80 } }]) as KubeObject);
    await h.client.create(TunnelBindingResource, binding(ns, "on-b", "b", [{ name: "web", service: { name: "web", port: 80 } }]) as KubeObject);
    // Tunnel b's agents get the second account's ingress from shard B's Deployment.
    await h.runAgents(ns, "a", { upstreams, heartbeatS: 1 });
    await h.runAgents(ns, "b", { upstreams, heartbeatS: 1 });
    const a = await waitForKtubeCondition(h.kc, "TunnelBinding", ns, "on-a", "Ready", { status: "True" }, 30_000);
    const b = await waitForKtubeCondition(h.kc, "TunnelBinding", ns, "on-b", "Ready", { status: "True" }, 30_000);
    expect(a.routes![0]!.url).toBe(`https://${h.fake.account.devDomain}/`);
    expect(b.routes![0]!.url).toBe(`https://${second.account.devDomain}/`);
    expect(await second.httpGet(second.account.devDomain, "/b")).toEqual({ status: 200, body: "web /b" });
    expect(await h.fake.httpGet(h.fake.account.devDomain, "/a")).toEqual({ status: 200, body: "web /a" });
    // Each account saw exactly its own agent.
    expect([...second.account.endpoints.values()].map((e) => e.url)).toEqual([`https://${second.account.devDomain}`]);
  });

  it("leaves the other shard's objects alone", async () => {
    const a = await ktubeStatus(h.kc, "Tunnel", ns, "a");
    const b = await ktubeStatus(h.kc, "Tunnel", ns, "b");
    expect(a.conditions!.find((c) => c.type === "Ready")!.reason).toBe("AgentsOnline");
    expect(b.conditions!.find((c) => c.type === "Ready")!.reason).toBe("AgentsOnline");
    const deployments = await h.client.list<KubeObject & { spec?: { template?: { spec?: { containers?: Array<{ env?: Array<{ name: string; value?: string }> }> } } } }>(Core.Deployment, { namespace: ns });
    const server = (name: string) =>
      deployments.items.find((d) => d.metadata?.name === `${name}-ngrok`)!.spec!.template!.spec!.containers![0]!.env!.find((e) => e.name === "NGROK_SERVER_ADDR")!.value;
    expect(server("a")).toBe(h.fake.serverAddr);
    expect(server("b")).toBe(second.serverAddr);
  });
});
