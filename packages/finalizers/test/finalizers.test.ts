// Finalizers against a real API server, with an "external system" (a Map standing
// in for a provider) whose entries the controller creates and must clean up.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import type { KubeConfig } from "@kubernetes/client-node";
import { createTestNamespace, deleteTestNamespace, eventually, testKubeConfig } from "@ktube/testenv";
import { ApiError, createLogger, ExponentialBackoffLimiter, type KubeObject, KubeClient, Manager, type ResourceType } from "@ktube/runtime";
import { addFinalizer, finalize, hasFinalizer, removeFinalizer } from "../src/index.ts";

const ConfigMap: ResourceType = { apiVersion: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true };
const FINALIZER = "test.ktube.dev/cleanup";

let kc: KubeConfig;
let client: KubeClient;
let ns: string;
const managers: Manager[] = [];

beforeAll(async () => {
  kc = testKubeConfig();
  client = new KubeClient(kc);
  ns = await createTestNamespace(kc, "finalizers");
});
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.stop()));
});
afterAll(() => deleteTestNamespace(kc, ns));

/** A controller that mirrors each ConfigMap into `external` and removes the entry on deletion. */
function startController(
  external: Map<string, string>,
  label: string,
  cleanup: (name: string) => Promise<void> = async (name) => void external.delete(name),
): Manager {
  const m = new Manager({
    kubeConfig: kc,
    name: `finalizer-${label}`,
    logger: createLogger({ level: process.env.KTUBE_TEST_LOG ?? "silent" }),
    probeAddress: false,
    metricsAddress: false,
  });
  const selector = { namespace: ns, labelSelector: `test=${label}` };
  m.controller(`finalizer-${label}`)
    .for(ConfigMap, selector)
    .withOptions({ rateLimiter: new ExponentialBackoffLimiter(200, 60_000) })
    .build(async ({ namespace, name }) => {
      const cm = m.cache.get<KubeObject>(ConfigMap, namespace, name, selector);
      if (!cm) return;
      await finalize(m.client, ConfigMap, cm, FINALIZER, {
        apply: async () => void external.set(name, "created"),
        cleanup: () => cleanup(name),
      });
    });
  managers.push(m);
  return m;
}

const labelled = (name: string, label: string) => ({ metadata: { name, namespace: ns, labels: { test: label } } });
const exists = async (name: string) => client.get(ConfigMap, ns, name).then(() => true, (e: unknown) => (e instanceof ApiError && e.status === 404 ? false : Promise.reject(e)));

describe("finalize()", () => {
  it("adds the finalizer before the side effect, and removes it after cleanup", async () => {
    const external = new Map<string, string>();
    await startController(external, "basic").start();
    await client.create(ConfigMap, labelled("one", "basic"));
    await eventually(() => expect(external.get("one")).toBe("created"));
    expect(hasFinalizer(await client.get(ConfigMap, ns, "one"), FINALIZER)).toBe(true);
    await client.delete(ConfigMap, ns, "one");
    await eventually(async () => expect(await exists("one")).toBe(false));
    expect(external.has("one")).toBe(false);
  });

  it("completes a deletion made while the controller was down once it is back", async () => {
    const external = new Map<string, string>();
    const first = startController(external, "down");
    await first.start();
    await client.create(ConfigMap, labelled("two", "down"));
    await eventually(() => expect(external.get("two")).toBe("created"));
    await first.stop();

    await client.delete(ConfigMap, ns, "two");
    // No controller runs, so only the finalizer stands between the object and its removal.
    expect(await exists("two")).toBe(true);
    expect(external.has("two")).toBe(true);

    await startController(external, "down").start();
    await eventually(async () => expect(await exists("two")).toBe(false), 15_000);
    expect(external.has("two")).toBe(false);
  });

  it("keeps the finalizer while cleanup fails and retries it with backoff", async () => {
    const external = new Map<string, string>();
    const attempts: number[] = [];
    const flakyCleanup = async (name: string) => {
      attempts.push(Date.now());
      if (attempts.length <= 3) throw new Error("provider returned 503");
      external.delete(name);
    };
    const m = startController(external, "flaky", flakyCleanup);
    await m.start();
    await client.create(ConfigMap, labelled("three", "flaky"));
    await eventually(() => expect(external.get("three")).toBe("created"));
    // Barrier: the reconcile caused by adding the finalizer is done; only the deletion wakes it now.
    await eventually(() => expect(m.idle).toBe(true));
    await client.delete(ConfigMap, ns, "three");
    await eventually(() => expect(attempts.length).toBeGreaterThanOrEqual(2), 10_000);
    expect(hasFinalizer(await client.get(ConfigMap, ns, "three"), FINALIZER)).toBe(true);
    await eventually(async () => expect(await exists("three")).toBe(false), 15_000);
    expect(attempts).toHaveLength(4);
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(190);
    expect(gaps[1]).toBeGreaterThanOrEqual(390);
    expect(gaps[2]).toBeGreaterThanOrEqual(790);
  });

  it("tolerates a cleanup of side effects that never happened", async () => {
    const external = new Map<string, string>();
    // Created with the finalizer already on and deleted before the controller ever ran.
    await client.create(ConfigMap, { metadata: { ...labelled("four", "never").metadata, finalizers: [FINALIZER] } });
    await client.delete(ConfigMap, ns, "four");
    await startController(external, "never").start();
    await eventually(async () => expect(await exists("four")).toBe(false), 10_000);
    expect(external.size).toBe(0);
  });
});

describe("finalizer patches", () => {
  it("are guarded: a stale object cannot clobber a finalizer list someone else changed", async () => {
    const stale = await client.create<KubeObject>(ConfigMap, { metadata: { name: "five", namespace: ns, finalizers: ["other.example.com/keep"] } });
    await client.patch(ConfigMap, ns, "five", [{ op: "add", path: "/metadata/finalizers/-", value: "third.example.com/x" }], "application/json-patch+json");
    await expect(addFinalizer(client, ConfigMap, stale, FINALIZER)).rejects.toBeInstanceOf(ApiError);
    const fresh = await client.get<KubeObject>(ConfigMap, ns, "five");
    const added = await addFinalizer(client, ConfigMap, fresh, FINALIZER);
    expect(added.metadata?.finalizers).toEqual(["other.example.com/keep", "third.example.com/x", FINALIZER]);
    const removed = await removeFinalizer(client, ConfigMap, added, FINALIZER);
    expect(removed?.metadata?.finalizers).toEqual(["other.example.com/keep", "third.example.com/x"]);
    await client.patch(ConfigMap, ns, "five", { metadata: { finalizers: null } }, "application/merge-patch+json");
  });
});
