// Controllers against a real API server: coalescing, parallelism, retries, shutdown, metrics.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import type { KubeConfig } from "@kubernetes/client-node";
import { createTestNamespace, deleteTestNamespace, eventually, testKubeConfig } from "@ktube/testenv";
import { ExponentialBackoffLimiter, KubeClient, type KubeObject, type Manager, PatchType, RequeueAfterError, sleep, TerminalError } from "../src/index.ts";
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
        const cm = m.cache.get<KubeObject & { data?: Record<string, string> }>(ConfigMap, namespace, name, { namespace: ns });
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
    await sleep(500);
    expect(seen.at(-1)).toBe("1000");
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
    m.controller("backoff")
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
      expect(gap).toBeLessThan(100 * 2 ** i + 400);
    });
    await sleep(1000);
    expect(attempts).toHaveLength(5); // success ends the retries
    expect(await m.metrics.count("controller_runtime_reconcile_errors_total", { controller: "backoff" })).toBe(4);
  });

  it("honours requeueAfter and RequeueAfterError, and does not retry terminal errors", async () => {
    const ns = await namespace();
    await client.create(ConfigMap, configMap(ns, "later"));
    await client.create(ConfigMap, configMap(ns, "retry-after"));
    await client.create(ConfigMap, configMap(ns, "broken"));
    const m = manager("requeue");
    const calls = new Map<string, number[]>();
    m.controller("requeue")
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
    await sleep(1500);
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
    m.controller("drain")
      .for(ConfigMap, { namespace: ns, fieldSelector: "metadata.name=slow" })
      .build(async () => {
        started++;
        await sleep(1000);
        finished++;
      });
    await m.start();
    await eventually(() => expect(started).toBe(1));
    const stopping = Date.now();
    await m.stop();
    expect(finished).toBe(1);
    expect(Date.now() - stopping).toBeGreaterThanOrEqual(500);
    await client.patch(ConfigMap, ns, "slow", { data: { after: "stop" } }, PatchType.merge);
    await sleep(500);
    expect(started).toBe(1);
  });

  it("runs one reconcile per change, not one per informer callback", async () => {
    const ns = await namespace();
    await client.create(ConfigMap, configMap(ns, "once"));
    const m = manager("once");
    let reconciles = 0;
    m.controller("once")
      .for(ConfigMap, { namespace: ns })
      .withOptions({ resyncPeriodMs: 0 })
      .build(async () => void reconciles++);
    await m.start();
    await eventually(() => expect(reconciles).toBe(1));
    await client.patch(ConfigMap, ns, "once", { data: { a: "1" } }, PatchType.merge);
    await eventually(() => expect(reconciles).toBe(2));
    await sleep(500);
    expect(reconciles).toBe(2);
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
});

describe("manager endpoints", () => {
  it("serves /healthz, /readyz once caches synced, and controller-runtime metrics", async () => {
    const ns = await namespace();
    await client.create(ConfigMap, configMap(ns, "metrics"));
    const m = manager("metrics-test", { probeAddress: { host: "127.0.0.1", port: 0 }, metricsAddress: { host: "127.0.0.1", port: 0 } });
    let reconciled = 0;
    m.controller("metrics-test").for(ConfigMap, { namespace: ns }).build(async () => void reconciled++);
    await m.start();
    const probe = `http://127.0.0.1:${m.address("probe")!.port}`;
    const metrics = `http://127.0.0.1:${m.address("metrics")!.port}`;
    expect((await fetch(`${probe}/healthz`)).status).toBe(200);
    await eventually(async () => expect((await fetch(`${probe}/readyz`)).status).toBe(200));
    await eventually(() => expect(reconciled).toBeGreaterThanOrEqual(1));
    const text = await (await fetch(`${metrics}/metrics`)).text();
    expect(text).toMatch(/controller_runtime_reconcile_total\{controller="metrics-test",result="success"\} [1-9]/);
    expect(text).toContain('controller_runtime_reconcile_time_seconds_bucket{le="0.005",controller="metrics-test"}');
    expect(text).toContain('controller_runtime_max_concurrent_reconciles{controller="metrics-test"} 1');
    expect(text).toContain('workqueue_depth{name="metrics-test",controller="metrics-test"} 0');
    expect(text).toMatch(/workqueue_adds_total\{name="metrics-test",controller="metrics-test"\} [1-9]/);
    expect(text).toMatch(/rest_client_requests_total\{code="200",method="GET",host="127\.0\.0\.1:\d+"\} [1-9]/);
    expect(text).toContain("ktube_provider_requests_total");
  });
});
