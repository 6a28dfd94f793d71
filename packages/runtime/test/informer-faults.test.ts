// The informer under network and API server faults: nothing a user changed is lost.
// This file runs its own control plane (watch cache off, so a compacted etcd makes the
// API server answer 410 Gone) behind a proxy that can cut, refuse or freeze traffic.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { KubeConfig, type V1ConfigMap } from "@kubernetes/client-node";
import { ControlPlane, eventually } from "@ktube/testenv";
import { Backoff, Informer, KubeClient, type KubeObject, PatchType } from "../src/index.ts";
import { FaultyProxy } from "./faulty-proxy.ts";
import { ConfigMap, configMap, testLogger } from "./support.ts";

let controlPlane: ControlPlane;
let proxy: FaultyProxy;
let direct: KubeClient;
let viaProxy: KubeClient;
let informer: Informer<V1ConfigMap & KubeObject>;
const NS = "default";
const events: string[] = [];

beforeAll(async () => {
  controlPlane = new ControlPlane({ apiserverArgs: ["--watch-cache=false"] });
  await controlPlane.start();
  const kc = controlPlane.kubeConfig();
  direct = new KubeClient(kc);
  proxy = new FaultyProxy(Number(new URL(controlPlane.server).port));
  const port = await proxy.listen();
  const proxied = new KubeConfig();
  proxied.loadFromString(kc.exportConfig().replace(controlPlane.server, `https://127.0.0.1:${port}`));
  viaProxy = new KubeClient(proxied);
  informer = new Informer<V1ConfigMap & KubeObject>(viaProxy, ConfigMap, {
    namespace: NS,
    labelSelector: "faults=yes",
    idleTimeoutMs: 2000,
    backoff: new Backoff(100, 1000),
    logger: testLogger("informer"),
  });
  informer.addHandler({
    add: (o) => void events.push(`add ${o.metadata!.name}`),
    update: (_, n) => void events.push(`update ${n.metadata!.name} ${n.data?.v}`),
    delete: (o) => void events.push(`delete ${o.metadata!.name}`),
  });
  // Indexed by name and by value: the index must follow every recovery path.
  informer.addIndex("key", (o) => [o.metadata!.name!, ...(o.data?.v ? [`v=${o.data.v}`] : [])]);
  for (const name of ["a", "b", "c", "d"]) await direct.create(ConfigMap, labelled(name));
  informer.start();
  await informer.waitForSync();
}, 180_000);

afterAll(async () => {
  await informer?.stop();
  await proxy?.close();
  await controlPlane?.stop();
});

const labelled = (name: string, data: Record<string, string> = {}) => ({
  ...configMap(NS, name, data),
  metadata: { name, namespace: NS, labels: { faults: "yes" } },
});
const names = () => informer.list().map((o) => o.metadata!.name).sort();
const value = (name: string) => informer.get(`${NS}/${name}`)?.data?.v;
const indexed = (value: string) => informer.byIndex("key", value).map((o) => o.metadata!.name!).sort();

describe("informer faults", () => {
  it("starts with a full list", () => {
    expect(names()).toEqual(["a", "b", "c", "d"]);
  });

  it("recovers from a watch connection reset mid-stream", async () => {
    // First prove the watch is live, so the cut hits an open watch.
    await direct.patch(ConfigMap, NS, "a", { data: { v: "0" } }, PatchType.merge);
    await eventually(() => expect(value("a")).toBe("0"));
    const watchesBefore = informer.stats.watches;
    proxy.cut();
    await direct.create(ConfigMap, labelled("e"));
    await direct.patch(ConfigMap, NS, "a", { data: { v: "1" } }, PatchType.merge);
    await direct.delete(ConfigMap, NS, "b");
    await eventually(() => {
      expect(names()).toEqual(["a", "c", "d", "e"]);
      expect(value("a")).toBe("1");
    });
    expect(events).toEqual(expect.arrayContaining(["add e", "update a 1", "delete b"]));
    expect(informer.stats.watches).toBeGreaterThan(watchesBefore);
  });

  it("loses nothing changed while the API server was stopped and restarted", async () => {
    proxy.down();
    await direct.patch(ConfigMap, NS, "c", { data: { v: "during-outage" } }, PatchType.merge);
    await direct.create(ConfigMap, labelled("f"));
    await controlPlane.restartApiserver();
    await direct.patch(ConfigMap, NS, "d", { data: { v: "after-restart" } }, PatchType.merge);
    await new Promise((r) => setTimeout(r, 1500)); // the informer retries against a dead link meanwhile
    proxy.up();
    await eventually(() => {
      expect(names()).toEqual(["a", "c", "d", "e", "f"]);
      expect(value("c")).toBe("during-outage");
      expect(value("d")).toBe("after-restart");
    }, 20_000);
    expect(informer.stats.errors).toBeGreaterThan(0);
  }, 60_000);

  it("relists on 410 Gone when its resourceVersion was compacted away, emitting deletes it missed", async () => {
    proxy.down();
    await direct.delete(ConfigMap, NS, "e");
    await direct.patch(ConfigMap, NS, "f", { data: { v: "compacted" } }, PatchType.merge);
    await direct.create(ConfigMap, labelled("g"));
    await compactEtcd(controlPlane.etcdUrl);
    const relists = informer.stats.relistsOnGone;
    proxy.up();
    await eventually(() => {
      expect(names()).toEqual(["a", "c", "d", "f", "g"]);
      expect(value("f")).toBe("compacted");
    }, 20_000);
    expect(informer.stats.relistsOnGone).toBeGreaterThan(relists);
    expect(events).toEqual(expect.arrayContaining(["delete e", "update f compacted", "add g"]));
    // The relist unfiled what it found deleted and refiled what it found changed.
    expect(indexed("e")).toEqual([]);
    expect(indexed("g")).toEqual(["g"]);
    expect(indexed("v=compacted")).toEqual(["f"]);
    expect(indexed("v=1")).toEqual(["a"]);
  }, 60_000);

  it("abandons a half-open watch after the idle timeout", async () => {
    // Barrier: a watch is up and delivering (an update after the object was seen comes
    // only through a watch), so the freeze cuts that watch, not a relist still under way.
    await direct.create(ConfigMap, labelled("h0"));
    await eventually(() => expect(names()).toContain("h0"), 10_000);
    await direct.patch(ConfigMap, NS, "h0", { data: { v: "live" } }, PatchType.merge);
    await eventually(() => expect(value("h0")).toBe("live"), 10_000);
    const idle = informer.stats.idleTimeouts;
    proxy.freeze();
    await direct.create(ConfigMap, labelled("h"));
    await eventually(() => expect(names()).toContain("h"), 10_000);
    expect(informer.stats.idleTimeouts).toBeGreaterThan(idle);
  }, 20_000);
});

/** Compacts etcd up to its current revision through etcd's v3 JSON gateway. */
async function compactEtcd(etcdUrl: string): Promise<void> {
  const status = (await (await fetch(`${etcdUrl}/v3/maintenance/status`, { method: "POST", body: "{}" })).json()) as { header: { revision: string } };
  const res = await fetch(`${etcdUrl}/v3/kv/compaction`, {
    method: "POST",
    body: JSON.stringify({ revision: status.header.revision, physical: true }),
  });
  expect(res.status).toBe(200);
}
