// Two instances of one controller, each serving its own providers (--provider-selector),
// on one API server: neither touches the other's objects, and a binding moving between
// them is released by the one it leaves.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import { PatchType, type KubeObject } from "@ktube/runtime";
import { eventually } from "@ktube/testenv";
import { binding, createKitHarness, provider, read, route, serviceObject, tunnel, waitFor, type Instance, type KitHarness } from "./harness.ts";

let h: KitHarness;
let a: Instance;
let b: Instance;
let ns: string;
const pa = () => `kit-shard-a-${h.id}`;
const pb = () => `kit-shard-b-${h.id}`;

beforeAll(async () => {
  h = await createKitHarness();
  ns = await h.namespace("kit-shard");
  await h.client.create(Core.Service, serviceObject(ns, "web") as KubeObject);
  await h.client.create(TunnelProviderResource, provider(pa(), { ...h.labels, shard: "a" }) as KubeObject);
  await h.client.create(TunnelProviderResource, provider(pb(), { ...h.labels, shard: "b" }) as KubeObject);
  // One worker each: keys are handled in the order their events came, so a later
  // object being handled proves the earlier ones were (the barriers below).
  a = await h.start({ providerSelector: `ktube.dev/kit-test=${h.id},shard=a`, maxConcurrentReconciles: 1 });
  b = await h.start({ providerSelector: `ktube.dev/kit-test=${h.id},shard=b`, maxConcurrentReconciles: 1 });
  await h.client.create(TunnelResource, tunnel(ns, "ta", pa()) as KubeObject);
  await h.client.create(TunnelResource, tunnel(ns, "tb", pb()) as KubeObject);
  await waitFor(h, "Tunnel", ns, "ta", "Ready", { status: "True" });
  await waitFor(h, "Tunnel", ns, "tb", "Ready", { status: "True" });
});
afterAll(() => h.close());

describe("--provider-selector sharding", () => {
  it("each instance serves only its own providers' objects", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "on-b", { name: "tb" }, [route("web", "b.example.test")]) as KubeObject);
    await waitFor(h, "TunnelBinding", ns, "on-b", "Ready", { status: "True" });
    // Barrier: a binding created after it, handled by instance a.
    await h.client.create(TunnelBindingResource, binding(ns, "on-a", { name: "ta" }, [route("web", "a.example.test")]) as KubeObject);
    await waitFor(h, "TunnelBinding", ns, "on-a", "Ready", { status: "True" });
    await eventually(() => expect(a.manager.idle && b.manager.idle).toBe(true), 20_000);

    expect(a.service.calls.filter((c) => c.includes(pb()) || c.includes(`${ns}/on-b`) || c.includes(`${ns}/tb`))).toEqual([]);
    expect(b.service.calls.filter((c) => c.includes(pa()) || c.includes(`${ns}/on-a`) || c.includes(`${ns}/ta`))).toEqual([]);
    expect((await read(h, "TunnelBinding", ns, "on-b")).metadata?.finalizers).toEqual([`ngrok.ktube.dev/provider-${pb()}`]);
    expect((await read(h, "TunnelBinding", ns, "on-a")).metadata?.finalizers).toEqual([`ngrok.ktube.dev/provider-${pa()}`]);
    expect(a.service.tunnels.size).toBe(1);
    expect(b.service.tunnels.size).toBe(1);
  });

  it("a binding moved from b's tunnel to a's is released at b by b and served by a", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "mover", { name: "tb" }, [route("web", "mover.example.test")]) as KubeObject);
    await waitFor(h, "TunnelBinding", ns, "mover", "Ready", { status: "True" });
    expect(b.service.holders(pb())).toContain(`${ns}/mover`);

    await h.client.patch(TunnelBindingResource, ns, "mover", { spec: { tunnelRef: { name: "ta" } } }, PatchType.merge);
    await eventually(async () => {
      const moved = await read(h, "TunnelBinding", ns, "mover");
      expect(moved.metadata?.finalizers).toEqual([`ngrok.ktube.dev/provider-${pa()}`]);
      expect(moved.status?.observedGeneration).toBe(2);
      expect(moved.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    }, 20_000);
    expect(b.service.holders(pb())).not.toContain(`${ns}/mover`);
    expect(a.service.holders(pa())).toContain(`${ns}/mover`);
    expect(a.service.calls).not.toContain(`binding.release ${pb()} ${ns}/mover`);
  });

  it("instances never campaign for one Lease", async () => {
    const { defaultLeaderElectionId } = await import("../src/index.ts");
    expect(defaultLeaderElectionId("x-controller", "shard=a")).not.toBe(defaultLeaderElectionId("x-controller", "shard=b"));
    expect(defaultLeaderElectionId("x-controller", undefined)).toBe("x-controller.ktube.dev");
  });
});
