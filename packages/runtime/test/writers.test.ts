// Status and Event writers against a real API server.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import type { KubeConfig } from "@kubernetes/client-node";
import { createTestNamespace, deleteTestNamespace, eventually, testKubeConfig } from "@ktube/testenv";
import { ApiError, EventRecorder, EventType, type KubeObject, KubeClient, mergePatch, StatusWriter } from "../src/index.ts";
import { TunnelBinding } from "./support.ts";

let kc: KubeConfig;
let ns: string;

beforeAll(async () => {
  kc = testKubeConfig();
  ns = await createTestNamespace(kc, "writers");
});
afterAll(() => deleteTestNamespace(kc, ns));

interface Binding extends KubeObject {
  status?: { observedGeneration?: number; routes?: Array<{ name: string; ready: boolean; url?: string }> };
}

function countingClient(): { client: KubeClient; writes: () => number } {
  const client = new KubeClient(kc);
  let writes = 0;
  client.onRequest((method) => {
    if (method !== "GET") writes++;
  });
  return { client, writes: () => writes };
}

describe("mergePatch", () => {
  it("nulls removed keys, recurses into objects and replaces arrays", () => {
    expect(mergePatch({ a: 1, b: { c: 1, d: 2 }, e: [1] }, { b: { c: 1, d: 3 }, e: [1, 2] })).toEqual({ a: null, b: { d: 3 }, e: [1, 2] });
    expect(mergePatch({ a: [1] }, { a: [1] })).toBeUndefined();
  });
});

describe("StatusWriter", () => {
  it("writes through /status only when the status changed, guarded by resourceVersion", async () => {
    const { client, writes } = countingClient();
    const writer = new StatusWriter(client, "writers-test");
    const created = await client.create<Binding>(TunnelBinding, {
      metadata: { name: "status", namespace: ns },
      spec: { tunnelRef: { name: "t" }, routes: [{ name: "web", service: { name: "s", port: 80 } }] },
    } as Binding);
    const status = { observedGeneration: 1, routes: [{ name: "web", ready: true, url: "https://a.example.com/" }] };
    const before = writes();
    expect((await writer.update(TunnelBinding, created, status))?.status).toEqual(status);
    const live = await client.get<Binding>(TunnelBinding, ns, "status");
    expect(live.status).toEqual(status);
    expect(live.metadata?.generation).toBe(1);

    // Nothing changed: no request at all.
    expect(await writer.update(TunnelBinding, live, structuredClone(status))).toBeUndefined();
    expect(writes() - before).toBe(1);

    // A field that disappears from the desired status disappears from the object.
    await writer.update(TunnelBinding, live, { observedGeneration: 1 });
    expect((await client.get<Binding>(TunnelBinding, ns, "status")).status).toEqual({ observedGeneration: 1 });

    // Written from a stale read: 409 Conflict, nothing overwritten.
    const error = await writer.update(TunnelBinding, live, { observedGeneration: 7 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(409);
    expect((await client.get<Binding>(TunnelBinding, ns, "status")).status).toEqual({ observedGeneration: 1 });
  });
});

describe("EventRecorder", () => {
  it("records events.k8s.io/v1 Events and folds repeats into one series", async () => {
    const { client, writes } = countingClient();
    const recorder = new EventRecorder(client, { controller: "ktube.dev/writers-test", instance: "test-0", flushIntervalMs: 200 });
    const regarding = await client.create<Binding>(TunnelBinding, {
      metadata: { name: "events", namespace: ns },
      spec: { tunnelRef: { name: "t" }, routes: [{ name: "web", service: { name: "s", port: 80 } }] },
    } as Binding);
    for (let i = 0; i < 50; i++) {
      await recorder.record(regarding, "Warning", "ServiceNotFound", "Reconcile", 'Service "s" not found');
    }
    await recorder.record(regarding, "Normal", "Ready", "Reconcile", "all routes are served");
    await eventually(() => expect(recorder.stats.seriesPatches).toBe(1), 3000);
    expect(writes()).toBeLessThanOrEqual(4); // the binding, two Events, one series patch

    const events = await client.list<KubeObject & { reason: string; series?: { count: number }; regarding: { uid: string }; reportingController: string }>(EventType, { namespace: ns });
    const mine = events.items.filter((e) => e.regarding.uid === regarding.metadata!.uid);
    expect(mine.map((e) => e.reason).sort()).toEqual(["Ready", "ServiceNotFound"]);
    expect(mine.find((e) => e.reason === "ServiceNotFound")?.series?.count).toBe(50);
    expect(mine[0]?.reportingController).toBe("ktube.dev/writers-test");
    await recorder.close();
  });
});
