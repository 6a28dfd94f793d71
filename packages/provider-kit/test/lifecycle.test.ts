// The three kit controllers with a test plugin, against the real API server: what
// every provider's users get the same way.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import { PatchType, type KubeObject } from "@ktube/runtime";
import { eventually, kubectl } from "@ktube/testenv";
import { ProviderError } from "../src/index.ts";
import { binding, condition, createKitHarness, provider, read, route, serviceObject, tunnel, waitFor, waitGone, type Instance, type KitHarness } from "./harness.ts";
import { connectorName, GOOD_TOKEN } from "./test-plugin.ts";

let h: KitHarness;
let ctl: Instance;
let ns: string;
let providerName: string;

beforeAll(async () => {
  h = await createKitHarness();
  ns = await h.namespace("kit-life");
  providerName = `kit-life-${h.id}`;
  await h.client.create(TunnelProviderResource, provider(providerName, h.labels) as KubeObject);
  await h.client.create(Core.Service, serviceObject(ns, "web") as KubeObject);
  ctl = await h.start();
});
afterAll(() => h.close());

describe("TunnelProvider", () => {
  it("is Ready when the plugin verifies its credentials", async () => {
    await waitFor(h, "TunnelProvider", undefined, providerName, "Ready", { status: "True", reason: "CredentialsVerified" });
  });

  it("names the missing Secret, and recovers when it appears", async () => {
    const name = `kit-nosecret-${h.id}`;
    await h.client.create(TunnelProviderResource, provider(name, h.labels, "later") as KubeObject);
    const p = await waitFor(h, "TunnelProvider", undefined, name, "Ready", { status: "False", reason: "SecretNotFound" });
    expect(condition(p.status, "Ready")?.message).toBe(`Secret ${h.controllerNs}/later not found`);
    await h.client.create(Core.Secret, { metadata: { name: "later", namespace: h.controllerNs }, stringData: { token: "wrong" } } as KubeObject);
    await waitFor(h, "TunnelProvider", undefined, name, "Ready", { status: "False", reason: "TokenRejected" });
    // A rotated token makes a new session; the plugin is told to release the old one.
    await h.client.patch(Core.Secret, h.controllerNs, "later", { stringData: { token: GOOD_TOKEN } }, PatchType.merge);
    await waitFor(h, "TunnelProvider", undefined, name, "Ready", { status: "True" });
    expect(ctl.service.calls).toContain(`disconnect ${name} wrong`);
    expect(ctl.service.calls).not.toContain(`disconnect ${name} ${GOOD_TOKEN}`);
  });
});

describe("Tunnel", () => {
  it("gets its finalizer, a provider-side tunnel, a connector and Ready; deletion cleans up", async () => {
    await h.client.create(TunnelResource, tunnel(ns, "life", providerName) as KubeObject);
    const t = await waitFor(h, "Tunnel", ns, "life", "Ready", { status: "True", reason: "TunnelReady" });
    expect(t.metadata?.finalizers).toContain("ngrok.ktube.dev/cleanup");
    const id = t.status!.tunnelId!;
    expect(ctl.service.tunnels.get(id)?.name).toBe("life");
    const deployment = await h.client.get(Core.Deployment, ns, connectorName("life"));
    expect(deployment.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: "Tunnel", name: "life", uid: t.metadata?.uid, controller: true })]);
    expect(deployment.metadata?.labels?.["app.kubernetes.io/managed-by"]).toBe("ktube-test-controller");

    await h.client.delete(TunnelResource, ns, "life");
    await waitGone(h, "Tunnel", ns, "life");
    expect(ctl.service.tunnels.has(id)).toBe(false);
    expect(ctl.service.callsFor(`${ns}/life`)).toContain(`tunnel.cleanup ${providerName} ${ns}/life`);
  });

  it("reports a typed provider error as a condition and a Warning Event, and recovers", async () => {
    ctl.service.failures.set("quota", new ProviderError("QuotaExceeded", "the account allows 1 tunnel"));
    await h.client.create(TunnelResource, tunnel(ns, "quota", providerName) as KubeObject);
    const t = await waitFor(h, "Tunnel", ns, "quota", "Ready", { status: "False", reason: "QuotaExceeded" });
    expect(condition(t.status, "Ready")?.message).toBe("the account allows 1 tunnel");
    const events = await kubectl(["get", "events.events.k8s.io", "-n", ns, "-o", "json"]);
    const items = (JSON.parse(events.stdout) as { items: Array<{ reason: string; type: string; regarding: { name: string } }> }).items;
    expect(items).toContainEqual(expect.objectContaining({ reason: "QuotaExceeded", type: "Warning", regarding: expect.objectContaining({ name: "quota" }) }));
    ctl.service.failures.delete("quota");
    ctl.kit.controllers.tunnel!.enqueue(`${ns}/quota`);
    await waitFor(h, "Tunnel", ns, "quota", "Ready", { status: "True" });
  });

  it("says ProviderNotFound for a tunnel of our class whose provider does not exist", async () => {
    await h.client.create(TunnelResource, tunnel(ns, "orphan", `no-such-${h.id}`, { ngrok: {} }) as KubeObject);
    const t = await waitFor(h, "Tunnel", ns, "orphan", "Ready", { status: "False", reason: "ProviderNotFound" });
    expect(t.metadata?.finalizers ?? []).toEqual([]);
  });
});

describe("TunnelBinding", () => {
  let tunnelUid: string | undefined;
  beforeAll(async () => {
    await h.client.create(TunnelResource, tunnel(ns, "shared", providerName) as KubeObject);
    tunnelUid = (await waitFor(h, "Tunnel", ns, "shared", "Ready", { status: "True" })).metadata?.uid;
  });

  it("is Ready with a URL per route once the tunnel applied it, and holds a per-provider finalizer", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "shop", { name: "shared" }, [route("web", "shop.example.test")]) as KubeObject);
    const b = await waitFor(h, "TunnelBinding", ns, "shop", "Ready", { status: "True", reason: "RoutesReady" });
    expect(b.status?.routes).toEqual([{ name: "web", ready: true, url: "https://shop.example.test/" }]);
    expect(b.metadata?.finalizers).toEqual([`ngrok.ktube.dev/provider-${providerName}`]);
    expect(ctl.service.holders(providerName)).toContain(`${ns}/shop`);
    expect(tunnelUid).toBeDefined();
  });

  it("keeps one copy of a binding: a write that leaves its generation alone is not judged again, and the verdict takes the cache's object", async () => {
    const verdictOfShop = () => ctl.kit.verdicts.of(ctl.manager.cache.get(TunnelResource, ns, "shared")!, ctl.kit.capabilities(ctl.kit.provider(providerName)!)).get(`${ns}/shop`);
    verdictOfShop();
    const evaluations = ctl.kit.verdicts.evaluations;
    await h.client.patch(TunnelBindingResource, ns, "shop", { metadata: { annotations: { "example.test/note": "metadata only" } } }, PatchType.merge);
    await eventually(async () => expect(ctl.manager.cache.get(TunnelBindingResource, ns, "shop")?.metadata.annotations?.["example.test/note"]).toBe("metadata only"));
    expect(verdictOfShop()?.binding).toBe(ctl.manager.cache.get(TunnelBindingResource, ns, "shop"));
    expect(ctl.kit.verdicts.evaluations).toBe(evaluations);
  });

  it("shows no URL for a route that is not served (its Service is missing)", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "nosvc", { name: "shared" }, [route("web", "nosvc.example.test", "missing")]) as KubeObject);
    const b = await waitFor(h, "TunnelBinding", ns, "nosvc", "ResolvedRefs", { status: "False", reason: "ServiceNotFound" });
    expect(condition(b.status, "Ready")?.status).toBe("False");
    expect(b.status?.routes?.[0]?.url).toBeUndefined();
  });

  it("hands a conflicting claim to the loser within seconds of the winner's deletion", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "first", { name: "shared" }, [route("web", "contested.example.test")]) as KubeObject);
    await waitFor(h, "TunnelBinding", ns, "first", "Ready", { status: "True" });
    await h.client.create(TunnelBindingResource, binding(ns, "second", { name: "shared" }, [route("web", "contested.example.test")]) as KubeObject);
    const loser = await waitFor(h, "TunnelBinding", ns, "second", "Accepted", { status: "False", reason: "Conflict" });
    expect(condition(loser.status, "Accepted")?.message).toContain(`${ns}/first`);
    // The loser holds nothing at the provider while it loses.
    expect(ctl.service.holders(providerName)).not.toContain(`${ns}/second`);

    const deletedAt = Date.now();
    await h.client.delete(TunnelBindingResource, ns, "first");
    const winner = await waitFor(h, "TunnelBinding", ns, "second", "Ready", { status: "True" }, 15_000);
    expect(Date.now() - deletedAt).toBeLessThan(15_000);
    expect(winner.status?.routes?.[0]?.url).toBe("https://contested.example.test/");
    await eventually(() => expect(ctl.service.holders(providerName)).not.toContain(`${ns}/first`));
    const applied = [...ctl.service.tunnels.values()].find((t) => t.name === "shared")!.routes;
    expect(applied.get(`${ns}/second/web`)).toBe("https://contested.example.test/");
    expect(applied.has(`${ns}/first/web`)).toBe(false);
  });

  it("releases what it holds when its tunnel goes, and says TunnelNotFound", async () => {
    await h.client.create(TunnelResource, tunnel(ns, "brief", providerName) as KubeObject);
    await waitFor(h, "Tunnel", ns, "brief", "Ready", { status: "True" });
    await h.client.create(TunnelBindingResource, binding(ns, "mover", { name: "brief" }, [route("web", "mover.example.test")]) as KubeObject);
    await waitFor(h, "TunnelBinding", ns, "mover", "Ready", { status: "True" });
    await h.client.delete(TunnelResource, ns, "brief");
    const b = await waitFor(h, "TunnelBinding", ns, "mover", "Accepted", { status: "False", reason: "TunnelNotFound" });
    expect(b.metadata?.finalizers ?? []).toEqual([]);
    expect(ctl.service.holders(providerName)).not.toContain(`${ns}/mover`);
  });

  it("writes nothing, to Kubernetes or the provider, when a resync finds nothing to change", async () => {
    await eventually(() => expect(ctl.manager.idle).toBe(true), 20_000);
    const writes = async () =>
      (await ctl.manager.metrics.count("rest_client_requests_total", { method: "PATCH" })) +
      (await ctl.manager.metrics.count("rest_client_requests_total", { method: "POST" })) +
      (await ctl.manager.metrics.count("rest_client_requests_total", { method: "PUT" })) +
      (await ctl.manager.metrics.count("rest_client_requests_total", { method: "DELETE" }));
    const before = await writes();
    const tunnelsBefore = JSON.stringify([...ctl.service.tunnels.values()].map((t) => [t.id, [...t.routes]]));
    const reconcilesBefore = await ctl.manager.metrics.count("controller_runtime_reconcile_total");
    ctl.manager.resync();
    // Barrier: every key the resync enqueued has been reconciled.
    await eventually(async () => {
      expect(await ctl.manager.metrics.count("controller_runtime_reconcile_total")).toBeGreaterThan(reconcilesBefore);
      expect(ctl.manager.idle).toBe(true);
    }, 20_000);
    expect(await writes()).toBe(before);
    expect(JSON.stringify([...ctl.service.tunnels.values()].map((t) => [t.id, [...t.routes]]))).toBe(tunnelsBefore);
  });

  it("reads the status it shows from the object it judged: observedGeneration follows spec changes", async () => {
    await h.client.patch(TunnelBindingResource, ns, "shop", { spec: { routes: [route("web", "shop2.example.test")] } }, "application/merge-patch+json");
    const b = await eventually(async () => {
      const obj = await read(h, "TunnelBinding", ns, "shop");
      if (obj.status?.observedGeneration !== 2 || obj.status.routes?.[0]?.url !== "https://shop2.example.test/") throw new Error("not yet");
      return obj;
    }, 20_000);
    expect(condition(b.status, "Ready")?.status).toBe("True");
  });
});
