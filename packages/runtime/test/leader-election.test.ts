// Leader election with real processes: the README's example controller, run twice.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import type { KubeConfig } from "@kubernetes/client-node";
import { createTestNamespace, deleteTestNamespace, eventually, testKubeConfig } from "@ktube/testenv";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { KubeClient, LeaseType, type KubeObject, PatchType, sleep } from "../src/index.ts";
import { ConfigMap, newManager } from "./support.ts";

const EXAMPLE = join(import.meta.dirname, "..", "examples", "stamp-controller.ts");
const STAMP = "example.ktube.dev/stamped-by";

let kc: KubeConfig;
let client: KubeClient;
let ns: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  kc = testKubeConfig();
  client = new KubeClient(kc);
  ns = await createTestNamespace(kc, "leader");
});
afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  await deleteTestNamespace(kc, ns);
});

interface Instance {
  child: ChildProcess;
  log: string[];
  leading: () => boolean;
  identity: () => string | undefined;
}

function startInstance(podName: string): Instance {
  const child = spawn(process.execPath, [EXAMPLE], {
    env: { ...process.env, NODE_OPTIONS: "", LEASE_NAMESPACE: ns, POD_NAME: podName, PROBE_PORT: "0", METRICS_PORT: "0", LOG_LEVEL: "info", LOG_FORMAT: "json" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const log: string[] = [];
  child.stdout!.on("data", (chunk: Buffer) => log.push(...chunk.toString().split("\n").filter(Boolean)));
  child.stderr!.on("data", (chunk: Buffer) => log.push(chunk.toString()));
  const parsed = () => log.flatMap((l) => { try { return [JSON.parse(l) as { msg: string; identity?: string }]; } catch { return []; } });
  return {
    child,
    log,
    leading: () => parsed().some((l) => l.msg === "became leader"),
    identity: () => parsed().find((l) => l.msg === "became leader")?.identity,
  };
}

const stampOf = async (name: string) => (await client.get(ConfigMap, ns, name)).metadata?.annotations?.[STAMP];
const stampable = (name: string) => ({ metadata: { name, namespace: ns, labels: { "example.ktube.dev/stamp": "true" } } });

describe("leader election", () => {
  it("lets one of two instances reconcile; the other takes over within ~20 s of the leader being killed", async () => {
    const a = startInstance("instance-a");
    await eventually(() => expect(a.leading()).toBe(true), 30_000);
    const b = startInstance("instance-b");
    await client.create(ConfigMap, stampable("first"));
    await eventually(async () => expect(await stampOf("first")).toBe(a.identity()), 10_000);
    await sleep(2000);
    expect(b.leading()).toBe(false);

    a.child.kill("SIGKILL");
    const killedAt = Date.now();
    await client.create(ConfigMap, stampable("second"));
    await eventually(() => expect(b.leading()).toBe(true), 30_000, 250);
    const takeover = Date.now() - killedAt;
    await eventually(async () => expect(await stampOf("second")).toMatch(/^instance-b_/), 10_000);
    expect(takeover).toBeLessThan(22_000);

    // A clean shutdown releases the lease: a successor need not wait it out.
    b.child.kill("SIGTERM");
    await new Promise((resolve) => b.child.once("exit", resolve));
    const lease = await client.get<KubeObject & { spec: { holderIdentity?: string | null } }>(LeaseType, ns, "stamp-controller.ktube.dev");
    expect(lease.spec.holderIdentity ?? null).toBeNull();
    const c = startInstance("instance-c");
    const startedAt = Date.now();
    await eventually(() => expect(c.leading()).toBe(true), 10_000, 100);
    expect(Date.now() - startedAt).toBeLessThan(8000);
  }, 90_000);

  it("stops reconciling when the lease is lost", async () => {
    let lost = false;
    const reconciled: string[] = [];
    const m = newManager(kc, "lease-loser", {
      leaderElection: { namespace: ns, leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 },
      onLeadershipLost: () => (lost = true),
    });
    m.controller("lease-loser")
      .for(ConfigMap, { namespace: ns, labelSelector: "loser=yes" })
      .build(async ({ name }) => void reconciled.push(name));
    await m.start();
    await client.create(ConfigMap, { metadata: { name: "before", namespace: ns, labels: { loser: "yes" } } });
    await eventually(() => expect(reconciled).toContain("before"), 10_000);

    // Another party takes the lease over (as after a long partition).
    const leaseName = "lease-loser.ktube.dev";
    const steal = async () => {
      const lease = await client.get<KubeObject & { spec: Record<string, unknown> }>(LeaseType, ns, leaseName);
      await client.request("PUT", `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${leaseName}`, {
        body: { ...lease, spec: { ...lease.spec, holderIdentity: "thief", leaseDurationSeconds: 60, renewTime: new Date().toISOString().replace("Z", "000Z") } },
      });
    };
    await eventually(steal, 5000);
    await eventually(() => expect(lost).toBe(true), 10_000);
    expect(m.isLeader).toBe(false);
    await client.create(ConfigMap, { metadata: { name: "after", namespace: ns, labels: { loser: "yes" } } });
    await client.patch(ConfigMap, ns, "before", { metadata: { labels: { touched: "yes" } } }, PatchType.merge);
    await sleep(1500);
    expect(reconciled).not.toContain("after");
    await m.stop();
  }, 60_000);
});
