// The manager's endpoints against a real API server: probes, readiness with failed
// controllers, controller-runtime metrics including work in flight.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import type { KubeConfig } from "@kubernetes/client-node";
import { createTestNamespace, deleteTestNamespace, eventually, testKubeConfig } from "@ktube/testenv";
import { KubeClient, type Manager } from "../src/index.ts";
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
  const ns = await createTestNamespace(kc, "manager");
  namespaces.push(ns);
  return ns;
}

function manager(name: string): Manager {
  const m = newManager(kc, name, { probeAddress: { host: "127.0.0.1", port: 0 }, metricsAddress: { host: "127.0.0.1", port: 0 } });
  managers.push(m);
  return m;
}

const url = (m: Manager, which: "probe" | "metrics", path: string) => `http://127.0.0.1:${m.address(which)!.port}${path}`;

/** The value of one sample in Prometheus text format, or undefined. */
function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("manager endpoints", () => {
  it("serves /healthz, /readyz once caches synced, and controller-runtime metrics", async () => {
    const ns = await namespace();
    await client.create(ConfigMap, configMap(ns, "metrics"));
    const m = manager("metrics-test");
    let reconciled = 0;
    m.controller("metrics-test").for(ConfigMap, { namespace: ns }).build(async () => void reconciled++);
    await m.start();
    expect((await fetch(url(m, "probe", "/healthz"))).status).toBe(200);
    await eventually(async () => expect((await fetch(url(m, "probe", "/readyz"))).status).toBe(200));
    await eventually(() => expect(reconciled).toBeGreaterThanOrEqual(1));
    const text = await (await fetch(url(m, "metrics", "/metrics"))).text();
    expect(text).toMatch(/controller_runtime_reconcile_total\{controller="metrics-test",result="success"\} [1-9]/);
    expect(text).toContain('controller_runtime_reconcile_time_seconds_bucket{le="0.005",controller="metrics-test"}');
    expect(text).toContain('controller_runtime_max_concurrent_reconciles{controller="metrics-test"} 1');
    expect(text).toContain('workqueue_depth{name="metrics-test",controller="metrics-test"} 0');
    expect(text).toMatch(/workqueue_adds_total\{name="metrics-test",controller="metrics-test"\} [1-9]/);
    expect(text).toMatch(/rest_client_requests_total\{code="200",method="GET",host="127\.0\.0\.1:\d+"\} [1-9]/);
    expect(text).toContain("ktube_provider_requests_total");
  });

  it("answers /readyz 503 naming a controller that failed to start, and lists it", async () => {
    const ns = await namespace();
    const m = manager("failing");
    // A kind the API server does not serve: its cache can never sync.
    const Missing = { apiVersion: "ktube.dev/v1alpha1", kind: "Missing", plural: "missings", namespaced: true };
    m.controller("healthy").for(ConfigMap, { namespace: ns }).build(async () => {});
    m.controller("deaf").for(Missing, { namespace: ns }).withOptions({ cacheSyncTimeoutMs: 1000 }).build(async () => {});
    await m.start();
    await eventually(() => expect(m.failedControllers.map((f) => f.controller)).toEqual(["deaf"]), 15_000);
    expect(m.failedControllers[0]!.error).toMatch(/caches did not sync within 1000 ms: Missing/);
    const res = await fetch(url(m, "probe", "/readyz"));
    expect(res.status).toBe(503);
    expect(await res.text()).toContain("controller deaf failed to start");
    expect((await fetch(url(m, "probe", "/healthz"))).status).toBe(200);
  });

  it("reports work in flight: workqueue_unfinished_work_seconds and workqueue_longest_running_processor_seconds", async () => {
    const ns = await namespace();
    await client.create(ConfigMap, configMap(ns, "busy-1"));
    await client.create(ConfigMap, configMap(ns, "busy-2"));
    const m = manager("inflight");
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let running = 0;
    m.controller("inflight")
      .for(ConfigMap, { namespace: ns })
      .withOptions({ maxConcurrentReconciles: 2, resyncPeriodMs: 0 })
      .build(async () => {
        running++;
        await gate;
      });
    await m.start();
    const labels = 'name="inflight",controller="inflight"';
    const scrape = async () => {
      const text = await (await fetch(url(m, "metrics", "/metrics"))).text();
      return { unfinished: sample(text, "workqueue_unfinished_work_seconds", labels), longest: sample(text, "workqueue_longest_running_processor_seconds", labels) };
    };
    await eventually(() => expect(running).toBe(2));
    // Both keys are stuck: the gauges grow with every scrape while nothing completes.
    await eventually(async () => {
      const { unfinished, longest } = await scrape();
      expect(longest).toBeGreaterThan(0.2);
      expect(unfinished).toBeGreaterThan(longest!); // two processors' worth
    });
    const first = await scrape();
    await eventually(async () => expect((await scrape()).longest).toBeGreaterThan(first.longest!));
    release();
    await eventually(async () => expect(await scrape()).toEqual({ unfinished: 0, longest: 0 }));
  });
});
