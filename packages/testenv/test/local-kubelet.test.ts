// LocalKubelet's watch mode against the real API server: the Pods of matching Deployments and
// StatefulSets are made, run as local processes and kept as their controllers would keep them.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { AppsV1Api, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod } from "@kubernetes/client-node";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { createTestNamespace, deleteTestNamespace, eventually, isProcessAlive, LocalKubelet, rollingLimits, testKubeConfig } from "../src/index.ts";

const kc = testKubeConfig();
const apps = kc.makeApiClient(AppsV1Api);
const core = kc.makeApiClient(CoreV1Api);
const id = randomBytes(3).toString("hex");
const labels = { "ktube.dev/kubelet-test": id };
// Each "image" is a node program that says which Pod it is and what GREETING it got, then waits.
const PROGRAM = 'console.log(`started ${process.env.POD_NAME} ${process.env.GREETING ?? ""} ${process.env.EXTRA ?? ""}`); setInterval(() => {}, 1000);';
const jsonPatch = setHeaderOptions("Content-Type", PatchStrategy.JsonPatch);
let ns = "";
let kubelet: LocalKubelet;
const logged: string[] = [];

const template = (app: string, greeting: string) => ({
  metadata: { labels: { app } },
  spec: {
    containers: [
      {
        name: "main",
        image: "sleeper",
        env: [
          { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
          { name: "GREETING", value: greeting },
        ],
      },
    ],
  },
});

/** The Pods of `app` in the API, and which of them runs here (by pid). */
async function state(app: string): Promise<{ api: V1Pod[]; running: Map<string, number> }> {
  const api = (await core.listNamespacedPod({ namespace: ns, labelSelector: `app=${app}` })).items.filter((p) => !p.metadata?.deletionTimestamp);
  const running = new Map(kubelet.pods().filter((p) => p.process.running && api.some((a) => a.metadata!.name === p.name)).map((p) => [p.name, p.process.child.pid!]));
  return { api, running };
}


beforeAll(async () => {
  ns = await createTestNamespace(kc, "kubelet");
  kubelet = new LocalKubelet(kc, { command: () => [process.execPath, "-e", PROGRAM] });
  kubelet.run({ labelSelector: `ktube.dev/kubelet-test=${id}`, env: { EXTRA: "extra" }, log: (line) => logged.push(line) });
});

afterAll(async () => {
  await kubelet.close();
  await deleteTestNamespace(kc, ns);
});

describe("LocalKubelet.run", () => {
  it("keeps a Deployment's Pods running: replaces dead and deleted ones, scales, rolls a new template, stops them when it goes", async () => {
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: { metadata: { name: "web", labels }, spec: { replicas: 2, selector: { matchLabels: { app: "web" } }, template: template("web", "hello") } },
    });
    const first = await eventually(async () => {
      const s = await state("web");
      expect(s.api).toHaveLength(2);
      expect(s.running.size).toBe(2);
      return s;
    }, 30_000, 200);
    // Reported as the workload controllers and a kubelet would.
    await eventually(async () => {
      const d = await apps.readNamespacedDeployment({ namespace: ns, name: "web" });
      expect(d.status).toMatchObject({ observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2 });
      expect((await state("web")).api.map((p) => p.status?.phase)).toEqual(["Running", "Running"]);
    }, 10_000, 200);
    const pod = kubelet.pods().find((p) => p.name === first.api[0]!.metadata!.name)!;
    await eventually(() => expect(pod.process.output).toContain(`started ${pod.name} hello extra`), 10_000);

    // A process that dies is replaced by a new Pod.
    const [killedName, killedPid] = [...first.running][0]!;
    process.kill(killedPid, "SIGKILL");
    await eventually(async () => {
      const s = await state("web");
      expect(s.api.map((p) => p.metadata!.name)).not.toContain(killedName);
      expect(s.running.size).toBe(2);
    }, 20_000, 200);
    expect(logged.some((l) => l.includes(killedName) && l.includes("exited"))).toBe(true);

    // So is a Pod that is deleted, and its process gets SIGTERM.
    const before = await state("web");
    const [deletedName, deletedPid] = [...before.running][0]!;
    await core.deleteNamespacedPod({ namespace: ns, name: deletedName });
    await eventually(async () => {
      const s = await state("web");
      expect(s.api.map((p) => p.metadata!.name)).not.toContain(deletedName);
      expect(s.running.size).toBe(2);
      expect(isProcessAlive(deletedPid)).toBe(false);
    }, 20_000, 200);

    // Scaling up and down.
    await apps.patchNamespacedDeploymentScale({ namespace: ns, name: "web", body: [{ op: "replace", path: "/spec/replicas", value: 3 }] }, jsonPatch);
    await eventually(async () => expect((await state("web")).running.size).toBe(3), 20_000, 200);
    const three = await state("web");
    await apps.patchNamespacedDeploymentScale({ namespace: ns, name: "web", body: [{ op: "replace", path: "/spec/replicas", value: 1 }] }, jsonPatch);
    await eventually(async () => {
      const s = await state("web");
      expect(s.api).toHaveLength(1);
      expect(s.running.size).toBe(1);
      expect([...three.running.values()].filter(isProcessAlive)).toHaveLength(1);
    }, 20_000, 200);

    // A new template: its Pods replace the old ones, which stop.
    await apps.patchNamespacedDeployment(
      { namespace: ns, name: "web", body: [{ op: "replace", path: "/spec/template/spec/containers/0/env/1/value", value: "bonjour" }] },
      jsonPatch,
    );
    const old = await state("web");
    await eventually(async () => {
      const s = await state("web");
      expect(s.api).toHaveLength(1);
      expect(s.running.size).toBe(1);
      const name = s.api[0]!.metadata!.name!;
      expect(old.running.has(name)).toBe(false);
      expect(kubelet.pods().find((p) => p.name === name)!.process.output).toContain("bonjour");
      expect([...old.running.values()].some(isProcessAlive)).toBe(false);
    }, 30_000, 200);

    // The Deployment goes: so do its Pods' processes.
    const last = await state("web");
    await apps.deleteNamespacedDeployment({ namespace: ns, name: "web" });
    await eventually(() => expect([...last.running.values()].some(isProcessAlive)).toBe(false), 20_000, 200);
  }, 120_000);

  it("keeps a StatefulSet's ordinals running, and leaves workloads without the label alone", async () => {
    await apps.createNamespacedStatefulSet({
      namespace: ns,
      body: { metadata: { name: "db", labels }, spec: { replicas: 2, serviceName: "db", selector: { matchLabels: { app: "db" } }, template: template("db", "hi") } },
    });
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: { metadata: { name: "other" }, spec: { replicas: 1, selector: { matchLabels: { app: "other" } }, template: template("other", "no") } },
    });
    const first = await eventually(async () => {
      const s = await state("db");
      expect([...s.running.keys()].sort()).toEqual(["db-0", "db-1"]);
      return s;
    }, 30_000, 200);
    await eventually(async () => expect((await apps.readNamespacedStatefulSet({ namespace: ns, name: "db" })).status).toMatchObject({ replicas: 2, readyReplicas: 2 }), 10_000, 200);
    process.kill(first.running.get("db-1")!, "SIGKILL");
    await eventually(async () => {
      const s = await state("db");
      expect([...s.running.keys()].sort()).toEqual(["db-0", "db-1"]);
      expect(s.running.get("db-1")).not.toBe(first.running.get("db-1"));
      expect(s.running.get("db-0")).toBe(first.running.get("db-0"));
    }, 20_000, 200);
    expect((await state("other")).api).toHaveLength(0);
  }, 60_000);

  it("rides out an API server it cannot reach, and catches up when it can", async () => {
    // A second kubelet reaches the API server through a relay that is closed for a while.
    const target = new URL(kc.getCurrentCluster()!.server);
    const sockets = new Set<net.Socket>();
    const relay = net.createServer((inbound) => {
      const outbound = net.connect(Number(target.port), target.hostname);
      for (const s of [inbound, outbound]) (sockets.add(s), s.on("error", () => s.destroy()), s.once("close", () => sockets.delete(s)));
      inbound.pipe(outbound).pipe(inbound);
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    const port = (relay.address() as net.AddressInfo).port;
    const relayed = new KubeConfig();
    relayed.loadFromOptions({
      clusters: kc.clusters.map((c) => ({ ...c, server: `https://127.0.0.1:${port}` })),
      users: kc.users,
      contexts: kc.contexts,
      currentContext: kc.currentContext,
    });
    const second = new LocalKubelet(relayed, { command: () => [process.execPath, "-e", PROGRAM] });
    const errors: string[] = [];
    try {
      relay.close();
      for (const s of sockets) s.destroy();
      second.run({ labelSelector: `ktube.dev/kubelet-test=${id}-down`, log: (line) => errors.push(line) });
      await apps.createNamespacedDeployment({
        namespace: ns,
        body: { metadata: { name: "late", labels: { "ktube.dev/kubelet-test": `${id}-down` } }, spec: { replicas: 1, selector: { matchLabels: { app: "late" } }, template: template("late", "late") } },
      });
      await eventually(() => expect(errors.length).toBeGreaterThan(0), 10_000, 100);
      expect(second.pods()).toHaveLength(0);
      await new Promise<void>((resolve) => relay.listen(port, "127.0.0.1", resolve));
      await eventually(() => expect(second.pods().filter((p) => p.process.running)).toHaveLength(1), 20_000, 200);
    } finally {
      await second.close();
      relay.close();
      for (const s of sockets) s.destroy();
    }
  }, 60_000);

  it("writes a Pod's Secret volume as files, points env values and arguments under the mount path at them, and adds the Pod's own env", async () => {
    await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: "creds" }, stringData: { token: "s3cret" } } });
    const reader = 'const fs = require("node:fs"); console.log(`arg=${fs.readFileSync(process.argv[1], "utf8")} env=${fs.readFileSync(process.env.TOKEN_PATH, "utf8")} own=${process.env.OWN}`); setInterval(() => {}, 1000);';
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: "reader" },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: "reader" } },
          template: {
            metadata: { labels: { app: "reader" } },
            spec: {
              volumes: [{ name: "creds", secret: { secretName: "creds" } }],
              containers: [{ name: "main", image: "reader", args: ["/etc/app/creds/token"], env: [{ name: "TOKEN_PATH", value: "/etc/app/creds/token" }], volumeMounts: [{ name: "creds", mountPath: "/etc/app/creds" }] }],
            },
          },
        },
      },
    });
    const second = new LocalKubelet(kc, { command: () => [process.execPath, "-e", reader], podEnv: async (pod) => ({ OWN: pod.metadata!.name! }) });
    try {
      const [pod] = await second.runDeployment(ns, "reader");
      await eventually(() => expect(pod!.process.output).toContain(`arg=s3cret env=s3cret own=${pod!.name}`), 10_000, 100);
    } finally {
      await second.close();
    }
  }, 30_000);

  it("stops every process on close()", async () => {
    const pids = kubelet.pods().filter((p) => p.process.running).map((p) => p.process.child.pid!);
    expect(pids.length).toBeGreaterThan(0);
    await kubelet.close();
    expect(pids.filter(isProcessAlive)).toEqual([]);
  });
});

describe("rollingLimits", () => {
  it("resolves maxSurge up and maxUnavailable down, with Kubernetes' defaults and Recreate", () => {
    expect(rollingLimits({ spec: { replicas: 2, selector: {}, template: {} } })).toEqual({ maxSurge: 1, maxUnavailable: 0 });
    expect(rollingLimits({ spec: { replicas: 2, selector: {}, template: {}, strategy: { rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } } } })).toEqual({ maxSurge: 0, maxUnavailable: 1 });
    expect(rollingLimits({ spec: { replicas: 10, selector: {}, template: {}, strategy: { rollingUpdate: { maxSurge: "15%", maxUnavailable: "15%" } } } })).toEqual({ maxSurge: 2, maxUnavailable: 1 });
    expect(rollingLimits({ spec: { replicas: 3, selector: {}, template: {}, strategy: { type: "Recreate" } } })).toEqual({ maxSurge: 0, maxUnavailable: 3 });
  });
});
