// Controllers against a real API server: coalescing, parallelism, retries, shutdown, metrics.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import type { KubeConfig } from "@kubernetes/client-node";
import { createTestNamespace, deleteTestNamespace, eventually, testKubeConfig } from "@ktube/testenv";
import { changed, ExponentialBackoffLimiter, KubeClient, type KubeObject, type Manager, PatchType, type Request, RequeueAfterError, sleep, TerminalError } from "../src/index.ts";
import { ConfigMap, configMap, newManager } from "./support.ts";

let kc: KubeConfig;
let client: KubeClient;
const namespaces: string[] = [];
const managers: Manager[] = [];

beforeAll(() => {
  kc = testKubeConfig();
  client = new KubeClient(kc);
});
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.stop()));
});
afterAll(async () => {
  await Promise.all(namespaces.map((ns) => deleteTestNamespace(kc, ns)));
});

async function namespace(): Promise<string> {
  const ns = await createTestNamespace(kc, "controller");
  namespaces.push(ns);
  return ns;
}

function manager(name: string, options: Parameters<typeof newManager>[2] = {}): Manager {
  const m = newManager(kc, name, options);
  managers.push(m);
  return m;
}

describe("controller", () => {
  it("coalesces 1,000 rapid updates of one object into a few reconciles, the last seeing the final state", async () => {
    const ns = await namespace();
    await client.create(ConfigMap, configMap(ns, "hot", { n: "0" }));
    const m = manager("coalesce");
    const seen: string[] = [];
    m.controller("coalesce")
      .for(ConfigMap, { namespace: ns })
      .build(async ({ namespace, name }) => {
        const cm = m.cache.get(ConfigMap, namespace, name, { namespace: ns });
        seen.push(cm?.data?.n ?? "missing");
        await sleep(100); // the work a real reconcile does
      });
    await m.start();
    await eventually(() => expect(seen).toContain("0"));
    const started = Date.now();
    for (let i = 1; i <= 1000; i++) {
      await client.patch(ConfigMap, ns, "hot", { data: { n: String(i) } }, PatchType.merge);
    }
    await eventually(() => expect(seen.at(-1)).toBe("1000"), 30_000);
    const elapsed = Date.now() - started;
    // Barrier: a later change is seen, and nothing stale came before it.
    await client.patch(ConfigMap, ns, "hot", { data: { n: "barrier" } }, PatchType.merge);
    await eventually(() => expect(seen.at(-1)).toBe("barrier"), 30_000);
    expect(seen.slice(seen.lastIndexOf("1000") + 1)).toEqual(["barrier"]);
    // One key runs one reconcile at a time (100 ms each) and every update that arrives
    // meanwhile folds into the next run: at most one run per 100 ms of updating,
    // however fast or slow the machine is.
    expect(seen.length).toBeLessThanOrEqual(Math.ceil(elapsed / 100) + 3);
    expect(seen.length).toBeLessThan(500);
  });

  it("reconciles distinct keys in parallel up to the limit and never one key twice at once", async () => {
    const ns = await namespace();
    const m = manager("parallel");
    const active = new Set<string>();
    let maxActive = 0;
    let overlaps = 0;
    const done = new Set<string>();
    m.controller("parallel")
      .for(ConfigMap, { namespace: ns, labelSelector: "app=parallel" })
      .withOptions({ maxConcurrentReconciles: 4 })
      .build(async ({ name }) => {
        if (active.has(name)) overlaps++;
        active.add(name);
        maxActive = Math.max(maxActive, active.size);
        // Change the object mid-reconcile: the key is re-added while it is being processed.
        if (!done.has(name)) await client.patch(ConfigMap, ns, name, { data: { touched: "yes" } }, PatchType.merge).catch(() => undefined);
        await sleep(200);
        active.delete(name);
        done.add(name);
      });
    await m.start();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => client.create(ConfigMap, { metadata: { name: `cm-${i}`, namespace: ns, labels: { app: "parallel" } } })),
    );
    await eventually(() => expect(done.size).toBe(20), 20_000);
    expect(maxActive).toBe(4);
    expect(overlaps).toBe(0);
  });

  it("retries errors with per-key exponential backoff", async () => {
    const ns = await namespace();
    await client.create(ConfigMap, configMap(ns, "flaky"));
    const m = manager("backoff");
    const attempts: number[] = [];
    const c = m
      .controller("backoff")
      .for(ConfigMap, { namespace: ns, fieldSelector: "metadata.name=flaky" })
      .withOptions({ rateLimiter: new ExponentialBackoffLimiter(100, 60_000) })
      .build(async () => {
        attempts.push(Date.now());
        if (attempts.length <= 4) throw new Error("provider unavailable");
      });
    await m.start();
    await eventually(() => expect(attempts).toHaveLength(5), 10_000);
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
    gaps.forEach((gap, i) => {
      expect(gap).toBeGreaterThanOrEqual(100 * 2 ** i - 5);
      // Generous: a loaded 2-core machine delays timers, never advances them.
      expect(gap).toBeLessThan(3 * 100 * 2 ** i + 1000);
    });
    // Success ends the retries: nothing is scheduled for the key and its history is gone.
    await eventually(() => expect(m.idle).toBe(true));
    expect(c.queue.isScheduled(`${ns}/flaky`)).toBe(false);
    expect(c.queue.retries(`${ns}/flaky`)).toBe(0);
    expect(attempts).toHaveLength(5);
    expect(await m.metrics.count("controller_runtime_reconcile_errors_total", { controller: "backoff" })).toBe(4);
  });

  it("honours requeueAfter and RequeueAfterError, and does not retry terminal errors", async () => {
    const ns = await namespace();
    await client.create(ConfigMap, configMap(ns, "later"));
    await client.create(ConfigMap, configMap(ns, "retry-after"));
    await client.create(ConfigMap, configMap(ns, "broken"));
    const m = manager("requeue");
    const calls = new Map<string, number[]>();
    const c = m
      .controller("requeue")
      .for(ConfigMap, { namespace: ns })
      .build(async ({ name }) => {
        const list = calls.get(name) ?? [];
        list.push(Date.now());
        calls.set(name, list);
        if (name === "later" && list.length === 1) return { requeueAfterMs: 600 };
        if (name === "retry-after" && list.length === 1) throw new RequeueAfterError("RateLimited", "429 from provider", 800);
        if (name === "broken") throw new TerminalError("InvalidSpec", "cannot be fixed by retrying");
      });
    await m.start();
    await eventually(() => expect(calls.get("later")).toHaveLength(2), 5000);
    await eventually(() => expect(calls.get("retry-after")).toHaveLength(2), 5000);
    const [a1, a2] = calls.get("later")!;
    const [b1, b2] = calls.get("retry-after")!;
    expect(a2! - a1!).toBeGreaterThanOrEqual(595);
    expect(b2! - b1!).toBeGreaterThanOrEqual(795);
    // Nothing more is scheduled: the terminal error is not retried, the requeues are spent.
    await eventually(() => expect(m.idle).toBe(true));
    for (const name of ["broken", "later", "retry-after"]) expect(c.queue.isScheduled(`${ns}/${name}`)).toBe(false);
    expect(calls.get("broken")).toHaveLength(1);
    expect(calls.get("later")).toHaveLength(2);
    expect(await m.metrics.count("controller_runtime_terminal_reconcile_errors_total", { controller: "requeue" })).toBe(1);
  });

  it("lets reconciles in flight finish on shutdown and starts no new ones", async () => {
    const ns = await namespace();
    await client.create(ConfigMap, configMap(ns, "slow"));
    const m = newManager(kc, "drain");
    let started = 0;
    let finished = 0;
    let signal: AbortSignal | undefined;
    const c = m
      .controller("drain")
      .for(ConfigMap, { namespace: ns, fieldSelector: "metadata.name=slow" })
      .build(async (_, context) => {
        started++;
        signal = context.signal;
        await sleep(1000);
        finished++;
      });
    await m.start();
    await eventually(() => expect(started).toBe(1));
    const stopping = Date.now();
    await m.stop();
    expect(finished).toBe(1);
    expect(signal?.aborted).toBe(false); // finished within the drain deadline: never aborted
    expect(Date.now() - stopping).toBeGreaterThanOrEqual(500);
    // Stopped: a key offered now is not taken, so no reconcile can start.
    c.enqueue(`${ns}/slow`);
    expect(c.queue.isShuttingDown).toBe(true);
    expect(c.pending).toBe(0);
    expect(started).toBe(1);
  });

  it("runs one reconcile per change, not one per informer callback", async () => {
    const ns = await namespace();
    await client.create(ConfigMap, configMap(ns, "once"));
    const m = manager("once");
    const reconciles: string[] = [];
    m.controller("once")
      .for(ConfigMap, { namespace: ns })
      .withOptions({ resyncPeriodMs: 0, maxConcurrentReconciles: 1 })
      .build(async ({ name }) => void reconciles.push(name));
    await m.start();
    await eventually(() => expect(reconciles).toEqual(["once"]));
    await client.patch(ConfigMap, ns, "once", { data: { a: "1" } }, PatchType.merge);
    await eventually(() => expect(reconciles).toEqual(["once", "once"]));
    // Barrier: one worker takes keys in the order their events came, so once a later
    // object is reconciled, a second run for the change above would already have shown.
    await client.create(ConfigMap, configMap(ns, "barrier"));
    await eventually(() => expect(reconciles.at(-1)).toBe("barrier"));
    expect(reconciles).toEqual(["once", "once", "barrier"]);
  });

  it("maps owned objects and watched kinds back to the reconciled object", async () => {
    const ns = await namespace();
    const owner = await client.create<KubeObject>(ConfigMap, configMap(ns, "owner"));
    const m = manager("mapping");
    const reconciled: string[] = [];
    m.controller("mapping")
      .for(ConfigMap, { namespace: ns, labelSelector: "role=owner" })
      .owns({ apiVersion: "v1", kind: "Secret", plural: "secrets", namespaced: true }, { namespace: ns })
      .watches({ apiVersion: "v1", kind: "Service", plural: "services", namespaced: true }, (svc) => [`${svc.metadata!.namespace}/${svc.metadata!.labels?.owner}`], { namespace: ns })
      .withOptions({ resyncPeriodMs: 0 })
      .build(async ({ name }) => void reconciled.push(name));
    await client.patch(ConfigMap, ns, "owner", { metadata: { labels: { role: "owner" } } }, PatchType.merge);
    await m.start();
    await eventually(() => expect(reconciled).toEqual(["owner"]));
    await client.create({ apiVersion: "v1", kind: "Secret", plural: "secrets", namespaced: true }, {
      metadata: { name: "child", namespace: ns, ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata!.uid!, controller: true }] },
    });
    await eventually(() => expect(reconciled).toEqual(["owner", "owner"]));
    await client.create({ apiVersion: "v1", kind: "Service", plural: "services", namespaced: true }, {
      metadata: { name: "svc", namespace: ns, labels: { owner: "owner" } },
      spec: { ports: [{ port: 80 }] },
    });
    await eventually(() => expect(reconciled).toEqual(["owner", "owner", "owner"]));
  });

  it("aborts the signal of reconciles still running when a stop's drain deadline passes", async () => {
    const ns = await namespace();
    await client.create(ConfigMap, configMap(ns, "stuck"));
    const m = newManager(kc, "deadline", { gracefulShutdownTimeoutMs: 300 });
    let signal: AbortSignal | undefined;
    let abortReason: unknown;
    m.controller("deadline")
      .for(ConfigMap, { namespace: ns })
      .build(async (_, context) => {
        signal = context.signal;
        // A reconcile stuck in a slow call that honours its signal.
        await new Promise((resolve) => context.signal.addEventListener("abort", resolve, { once: true }));
        abortReason = context.signal.reason;
      });
    await m.start();
    await eventually(() => expect(signal).toBeDefined());
    expect(signal!.aborted).toBe(false);
    await m.stop();
    expect(signal!.aborted).toBe(true);
    await eventually(() => expect((abortReason as DOMException).name).toBe("AbortError"));
  });

  it("filters updates with changed(): only the selected fields wake the controller", async () => {
    const ns = await namespace();
    await client.create(ConfigMap, configMap(ns, "a"));
    await client.create(ConfigMap, configMap(ns, "b"));
    const m = manager("changed");
    const reconciled: string[] = [];
    m.controller("changed")
      .for(ConfigMap, { namespace: ns, predicates: [changed((o) => o.metadata?.annotations?.["example.ktube.dev/watched"])] })
      .withOptions({ resyncPeriodMs: 0 })
      .build(async ({ name }) => void reconciled.push(name));
    await m.start();
    await eventually(() => expect([...reconciled].sort()).toEqual(["a", "b"]));
    await client.patch(ConfigMap, ns, "a", { metadata: { annotations: { "example.ktube.dev/other": "1" } } }, PatchType.merge);
    await client.patch(ConfigMap, ns, "b", { metadata: { annotations: { "example.ktube.dev/watched": "1" } } }, PatchType.merge);
    // Barrier: a's event came first on the same watch and one worker takes keys in order,
    // so had it passed, a would have been reconciled before b.
    await eventually(() => expect(reconciled.filter((n) => n === "b")).toHaveLength(2));
    expect(reconciled.filter((n) => n === "a")).toHaveLength(1);
  });

  it("resyncs periodically without any change", async () => {
    const ns = await namespace();
    await client.create(ConfigMap, configMap(ns, "resynced"));
    const m = manager("periodic");
    const requests: Request[] = [];
    m.controller("periodic")
      .for(ConfigMap, { namespace: ns })
      .withOptions({ resyncPeriodMs: 1000 })
      .build(async (request) => void requests.push(request));
    await m.start();
    await eventually(() => expect(requests.length).toBeGreaterThanOrEqual(3), 10_000);
    expect(requests[0]).toEqual({ key: `${ns}/resynced`, namespace: ns, name: "resynced" });
  });
});

describe("keyed controllers (forKeys)", () => {
  it("reconciles keys that are not objects, from map functions, enqueue() and resyncKeys", async () => {
    const ns = await namespace();
    const m = manager("zones");
    const keys: Request[] = [];
    let zones = ["zone/static.example"];
    const controller = m
      .controller("zones")
      .forKeys({ resyncKeys: () => zones })
      .watches(ConfigMap, (cm) => (cm.data?.zone ? [`zone/${cm.data.zone}`] : []), { namespace: ns })
      .withOptions({ resyncPeriodMs: 0 })
      .build(async (request) => void keys.push(request));
    expect(controller.informer).toBeUndefined();
    await m.start();
    // resyncKeys are visited at start: zones that no object names still get reconciled.
    await eventually(() => expect(keys.map((k) => k.key)).toEqual(["zone/static.example"]));
    await client.create(ConfigMap, configMap(ns, "site", { zone: "shop.example" }));
    await eventually(() => expect(keys.map((k) => k.key)).toContain("zone/shop.example"));
    expect(keys.find((k) => k.key === "zone/shop.example")).toEqual({ key: "zone/shop.example", namespace: "zone", name: "shop.example" });
    controller.enqueue("account:42");
    await eventually(() => expect(keys.at(-1)).toEqual({ key: "account:42", name: "account:42" }));
    zones = ["zone/static.example", "zone/other.example"];
    controller.resync();
    await eventually(() => expect(keys.map((k) => k.key)).toContain("zone/other.example"));
    expect(keys.filter((k) => k.key === "zone/static.example")).toHaveLength(2);
  });

  it("refuses owns() without a for() owner, and for()/forKeys() together or neither", () => {
    const m = manager("builder-checks");
    const Secret = { apiVersion: "v1", kind: "Secret", plural: "secrets", namespaced: true };
    const noop = async (): Promise<void> => {};
    expect(() => m.controller("k").forKeys().owns(Secret).build(noop)).toThrow(/owns\(Secret\) needs a for\(kind\) owner/);
    expect(() => m.controller("both").for(ConfigMap).forKeys().build(noop)).toThrow(/call one of them once/);
    expect(() => m.controller("none").watches(ConfigMap, () => []).build(noop)).toThrow(/call for\(kind\) or forKeys\(\) before build/);
  });
});
