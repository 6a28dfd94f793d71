// What the kit never does: take over an object it did not create, delete by name
// alone, or drop a finalizer while cleanup could not run.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import { PatchType, type KubeObject } from "@ktube/runtime";
import { eventually } from "@ktube/testenv";
import { binding, condition, createKitHarness, provider, read, route, serviceObject, tunnel, waitFor, waitGone, type Instance, type KitHarness } from "./harness.ts";
import { connector, connectorName } from "./test-plugin.ts";

let h: KitHarness;
let ctl: Instance;
let ns: string;
let providerName: string;

beforeAll(async () => {
  h = await createKitHarness();
  ns = await h.namespace("kit-own");
  providerName = `kit-own-${h.id}`;
  await h.client.create(TunnelProviderResource, provider(providerName, h.labels) as KubeObject);
  await h.client.create(Core.Service, serviceObject(ns, "web") as KubeObject);
  ctl = await h.start();
});
afterAll(() => h.close());

describe("owned Kubernetes objects", () => {
  it("never takes over an existing object of the connector's name: NameInUse, the object untouched", async () => {
    const mine = connector(ns, "taken");
    const created = await h.client.create(Core.Deployment, { ...mine, metadata: { ...mine.metadata, labels: { ...mine.metadata.labels, team: "theirs" } } } as KubeObject);
    await h.client.create(TunnelResource, tunnel(ns, "taken", providerName) as KubeObject);
    const t = await waitFor(h, "Tunnel", ns, "taken", "Ready", { status: "False", reason: "NameInUse" });
    expect(condition(t.status, "Ready")?.message).toContain(`Deployment ${ns}/${connectorName("taken")} already exists`);
    const after = await h.client.get(Core.Deployment, ns, connectorName("taken"));
    expect(after.metadata?.resourceVersion).toBe(created.metadata?.resourceVersion);
    expect(after.metadata?.ownerReferences ?? []).toEqual([]);
    // Deleting the Tunnel leaves the user's Deployment alone (no ownerReference, no delete by name).
    await h.client.delete(TunnelResource, ns, "taken");
    await waitGone(h, "Tunnel", ns, "taken");
    expect((await h.client.get(Core.Deployment, ns, connectorName("taken"))).metadata?.uid).toBe(created.metadata?.uid);
  });

  it("reverts drift of the fields it manages, and keeps fields others add", async () => {
    await h.client.create(TunnelResource, tunnel(ns, "drift", providerName) as KubeObject);
    await waitFor(h, "Tunnel", ns, "drift", "Ready", { status: "True" });
    const name = connectorName("drift");
    await h.client.patch(
      Core.Deployment,
      ns,
      name,
      { metadata: { labels: { extra: "kept" } }, spec: { replicas: 5, template: { spec: { containers: [{ name: "connector", image: "evil/image:1" }] } } } },
      PatchType.merge,
    );
    await eventually(async () => {
      const d = (await h.client.get(Core.Deployment, ns, name)) as KubeObject & { spec: { replicas: number; template: { spec: { containers: Array<{ image: string }> } } } };
      expect(d.spec.replicas).toBe(1);
      expect(d.spec.template.spec.containers[0]!.image).toBe("registry.example/connector:1");
      expect(d.metadata?.labels?.extra).toBe("kept");
    }, 20_000);
  });
});

describe("cleanup that cannot run", () => {
  it("keeps a deleted Tunnel's finalizer while its provider is gone, says CleanupBlocked, and lets go when abandoned", async () => {
    const gone = `kit-gone-${h.id}`;
    await h.client.create(TunnelProviderResource, provider(gone, h.labels) as KubeObject);
    await h.client.create(TunnelResource, tunnel(ns, "stranded", gone) as KubeObject);
    const t = await waitFor(h, "Tunnel", ns, "stranded", "Ready", { status: "True" });
    const id = t.status!.tunnelId!;
    await h.client.delete(TunnelProviderResource, undefined, gone);
    await h.client.delete(TunnelResource, ns, "stranded");
    const blocked = await waitFor(h, "Tunnel", ns, "stranded", "Ready", { status: "False", reason: "CleanupBlocked" });
    expect(condition(blocked.status, "Ready")?.message).toContain(`TunnelProvider ${gone} not found`);
    expect(condition(blocked.status, "Ready")?.message).toContain("ktube.dev/abandon-on-delete=true");
    expect(blocked.metadata?.finalizers).toContain("ngrok.ktube.dev/cleanup");

    await h.client.patch(TunnelResource, ns, "stranded", { metadata: { annotations: { "ktube.dev/abandon-on-delete": "true" } } }, PatchType.merge);
    await waitGone(h, "Tunnel", ns, "stranded");
    // Abandoned on purpose: the provider-side tunnel was not touched.
    expect(ctl.service.tunnels.has(id)).toBe(true);
  });

  it("keeps a deleted binding's finalizer while its provider's credentials are broken, then cleans up once fixed", async () => {
    const flaky = `kit-flaky-${h.id}`;
    await h.client.create(Core.Secret, { metadata: { name: "flaky", namespace: h.controllerNs }, stringData: { token: "kit-test-token" } } as KubeObject);
    await h.client.create(TunnelProviderResource, provider(flaky, h.labels, "flaky") as KubeObject);
    await h.client.create(TunnelResource, tunnel(ns, "flaky", flaky) as KubeObject);
    await waitFor(h, "Tunnel", ns, "flaky", "Ready", { status: "True" });
    await h.client.create(TunnelBindingResource, binding(ns, "held", { name: "flaky" }, [route("web", "held.example.test")]) as KubeObject);
    await waitFor(h, "TunnelBinding", ns, "held", "Ready", { status: "True" });
    expect(ctl.service.holders(flaky)).toEqual([`${ns}/held`]);

    await h.client.delete(Core.Secret, h.controllerNs, "flaky");
    await h.client.delete(TunnelBindingResource, ns, "held");
    const b = await waitFor(h, "TunnelBinding", ns, "held", "Ready", { status: "False", reason: "CleanupBlocked" });
    expect(b.metadata?.finalizers).toEqual([`ngrok.ktube.dev/provider-${flaky}`]);
    expect(ctl.service.holders(flaky)).toEqual([`${ns}/held`]);
    // Tenants do not learn the controller namespace's Secret names.
    expect(condition(b.status, "Ready")?.message).not.toContain("Secret");

    await h.client.create(Core.Secret, { metadata: { name: "flaky", namespace: h.controllerNs }, stringData: { token: "kit-test-token" } } as KubeObject);
    await waitGone(h, "TunnelBinding", ns, "held");
    expect(ctl.service.holders(flaky)).toEqual([]);
  });

  it("takes over the class-wide finalizer earlier releases put on bindings, without releasing anything", async () => {
    await h.client.create(TunnelResource, tunnel(ns, "upgraded", providerName) as KubeObject);
    await waitFor(h, "Tunnel", ns, "upgraded", "Ready", { status: "True" });
    const old = binding(ns, "old", { name: "upgraded" }, [route("web", "old.example.test")]);
    await h.client.create(TunnelBindingResource, { ...old, metadata: { ...old.metadata, finalizers: ["ngrok.ktube.dev/cleanup"] } } as KubeObject);
    await eventually(async () => {
      const b = await read(h, "TunnelBinding", ns, "old");
      expect(b.metadata?.finalizers).toEqual([`ngrok.ktube.dev/provider-${providerName}`]);
      expect(condition(b.status, "Ready")?.status).toBe("True");
    }, 20_000);
    expect(ctl.service.calls).not.toContain(`binding.release ${providerName} ${ns}/old`);
    // And it is released like any other once deleted.
    await h.client.delete(TunnelBindingResource, ns, "old");
    await waitGone(h, "TunnelBinding", ns, "old");
    expect(ctl.service.calls).toContain(`binding.release ${providerName} ${ns}/old`);
  });

  it("a binding that loses its claim releases what it holds", async () => {
    await h.client.create(TunnelResource, tunnel(ns, "claims", providerName) as KubeObject);
    await waitFor(h, "Tunnel", ns, "claims", "Ready", { status: "True" });
    await h.client.create(TunnelBindingResource, binding(ns, "early", { name: "claims" }, [route("web", "a.example.test")]) as KubeObject);
    await h.client.create(TunnelBindingResource, binding(ns, "late", { name: "claims" }, [route("web", "b.example.test")]) as KubeObject);
    await waitFor(h, "TunnelBinding", ns, "late", "Ready", { status: "True" });
    expect(ctl.service.holders(providerName)).toContain(`${ns}/late`);
    // `late` now claims what `early` holds: it loses and lets go of b.example.test too.
    await h.client.patch(TunnelBindingResource, ns, "late", { spec: { routes: [route("web", "a.example.test")] } }, PatchType.merge);
    await waitFor(h, "TunnelBinding", ns, "late", "Accepted", { status: "False", reason: "Conflict" });
    await eventually(() => expect(ctl.service.holders(providerName)).not.toContain(`${ns}/late`));
    const late = await read(h, "TunnelBinding", ns, "late");
    expect(late.metadata?.finalizers ?? []).toEqual([]);
  });
});
