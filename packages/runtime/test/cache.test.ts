// The cache against a real API server: registered reads only, indexes kept current,
// managedFields dropped.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import type { KubeConfig, V1ConfigMap } from "@kubernetes/client-node";
import { createTestNamespace, deleteTestNamespace, eventually, testKubeConfig } from "@ktube/testenv";
import { Cache, KubeClient, PatchType, type ResourceType } from "../src/index.ts";
import { configMap, testLogger } from "./support.ts";

const ConfigMap: ResourceType<V1ConfigMap> = { apiVersion: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true };

let kc: KubeConfig;
let client: KubeClient;
let ns: string;
const caches: Cache[] = [];

beforeAll(async () => {
  kc = testKubeConfig();
  client = new KubeClient(kc);
  ns = await createTestNamespace(kc, "cache");
});
afterAll(async () => {
  await Promise.all(caches.map((c) => c.stop()));
  await deleteTestNamespace(kc, ns);
});

function newCache(): Cache {
  const cache = new Cache(client, { logger: testLogger("cache") });
  caches.push(cache);
  return cache;
}

const team = (name: string, teamName: string) => ({ ...configMap(ns, name), metadata: { name, namespace: ns, labels: { team: teamName } } });

describe("cache", () => {
  it("refuses reads from an informer nobody registered, naming the kind and selector", () => {
    const cache = newCache();
    cache.informer(ConfigMap, { namespace: ns });
    expect(() => cache.get(ConfigMap, ns, "x", { namespace: "other" })).toThrow(/no informer for ConfigMap \(v1\) \{namespace=other\}/);
    expect(() => cache.list(ConfigMap, {}, { labelSelector: "a=b" })).toThrow(/ConfigMap \(v1\) \{labelSelector=a=b\}/);
    expect(() => cache.list(ConfigMap)).toThrow(/ConfigMap \(v1\) \{all\}/);
    expect(() => cache.byIndex(ConfigMap, "team", "a")).toThrow(/no informer for ConfigMap/);
    expect(() => cache.addIndex(ConfigMap, "team", () => [])).toThrow(/no informer for ConfigMap/);
    // The registered one reads fine (nothing yet: the cache has not started).
    expect(cache.get(ConfigMap, ns, "x", { namespace: ns })).toBeUndefined();
  });

  it("keeps indexes current on add, update and delete, and indexes objects cached before the index was added", async () => {
    await client.create(ConfigMap, team("early", "red"));
    const cache = newCache();
    const selector = { namespace: ns };
    const informer = cache.informer(ConfigMap, selector);
    cache.start();
    await cache.waitForSync();
    const names = (value: string) => cache.byIndex(ConfigMap, "team", value, selector).map((c) => c.metadata?.name).sort();

    // Added after the informer has objects: they are filed at once.
    cache.addIndex(ConfigMap, "team", (cm) => (cm.metadata?.labels?.team ? [cm.metadata.labels.team] : []), selector);
    expect(names("red")).toEqual(["early"]);
    expect(() => cache.addIndex(ConfigMap, "team", () => [], selector)).toThrow(/already exists/);
    expect(() => cache.byIndex(ConfigMap, "colour", "red", selector)).toThrow(/no index "colour"/);

    await client.create(ConfigMap, team("late", "red"));
    await client.create(ConfigMap, team("other", "blue"));
    await eventually(() => {
      expect(names("red")).toEqual(["early", "late"]);
      expect(names("blue")).toEqual(["other"]);
    });

    // An update moves the object: its old value no longer finds it.
    await client.patch(ConfigMap, ns, "early", { metadata: { labels: { team: "blue" } } }, PatchType.merge);
    await eventually(() => expect(names("blue")).toEqual(["early", "other"]));
    expect(names("red")).toEqual(["late"]);

    await client.delete(ConfigMap, ns, "late");
    await eventually(() => expect(names("red")).toEqual([]));
    expect(informer.hasIndex("team")).toBe(true);
  });

  it("infers the object type from the ResourceType and drops managedFields from listed and watched objects", async () => {
    await client.create(ConfigMap, { ...configMap(ns, "listed", { k: "listed" }) });
    const created = await client.get(ConfigMap, ns, "listed");
    expect(created.metadata?.managedFields?.length).toBeGreaterThan(0); // the API server does send them

    const cache = newCache();
    cache.informer(ConfigMap, { namespace: ns });
    cache.start();
    await cache.waitForSync();
    const listed = cache.get(ConfigMap, ns, "listed", { namespace: ns });
    // `data` is V1ConfigMap's: no explicit generic, no cast.
    expect(listed?.data?.k).toBe("listed");
    expect(listed?.metadata?.managedFields).toBeUndefined();

    await client.create(ConfigMap, configMap(ns, "watched", { k: "watched" }));
    await client.patch(ConfigMap, ns, "listed", { data: { k: "updated" } }, PatchType.merge);
    await eventually(() => {
      expect(cache.get(ConfigMap, ns, "watched", { namespace: ns })?.data?.k).toBe("watched");
      expect(cache.get(ConfigMap, ns, "listed", { namespace: ns })?.data?.k).toBe("updated");
    });
    for (const cm of cache.list(ConfigMap, { namespace: ns }, { namespace: ns })) expect(cm.metadata?.managedFields).toBeUndefined();
  });
});
