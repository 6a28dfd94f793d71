// Leader election with real processes: the README's example controller, run twice.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { KubeConfig } from "@kubernetes/client-node";
import { createTestNamespace, deleteTestNamespace, eventually, testKubeConfig } from "@ktube/testenv";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { KubeClient, LeaseType, type KubeObject } from "../src/index.ts";
import { FaultyProxy } from "./faulty-proxy.ts";
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
    // Barrier: while b campaigns, a renews the Lease three more times; b cannot have led in between.
    const renewals = new Set<string>();
    await eventually(async () => {
      const lease = await client.get<KubeObject & { spec: { holderIdentity?: string | null; renewTime?: string } }>(LeaseType, ns, "stamp-controller.ktube.dev");
      expect(lease.spec.holderIdentity).toContain("instance-a");
      renewals.add(lease.spec.renewTime!);
      expect(renewals.size).toBeGreaterThanOrEqual(4);
    }, 30_000, 250);
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

  it("on losing the lease aborts reconciles in flight, starts no new ones and does not wait for them", async () => {
    const leaseName = "lease-loser.ktube.dev";
    const selector = { namespace: ns, labelSelector: "loser=yes" };
    const started: string[] = [];
    let inFlight: AbortSignal | undefined;
    let finishedSlow = false;
    let releaseSlow!: () => void;
    const slowGate = new Promise<void>((resolve) => (releaseSlow = resolve));
    let atLoss: { aborted: boolean; finishedSlow: boolean } | undefined;
    const m = newManager(kc, "lease-loser", {
      leaderElection: { namespace: ns, leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 },
      // Not exiting, so the test can look at what happened.
      onLeadershipLost: () => (atLoss = { aborted: inFlight?.aborted ?? false, finishedSlow }),
    });
    const controller = m
      .controller("lease-loser")
      .for(ConfigMap, selector)
      .withOptions({ maxConcurrentReconciles: 2, resyncPeriodMs: 0 })
      .build(async ({ name }, { signal }) => {
        started.push(name);
        if (name !== "slow") return;
        inFlight = signal;
        await slowGate; // ignores its signal on purpose: the manager must not wait for it
        finishedSlow = true;
      });
    try {
      await m.start();
      await client.create(ConfigMap, { metadata: { name: "slow", namespace: ns, labels: { loser: "yes" } } });
      await eventually(() => expect(inFlight).toBeDefined(), 10_000);

      // Another party takes the lease over (as after a long partition).
      await eventually(() => stealLease(leaseName), 5000);
      await eventually(() => expect(atLoss).toBeDefined(), 10_000);
      expect(atLoss).toEqual({ aborted: true, finishedSlow: false }); // aborted, and not drained first
      expect(m.isLeader).toBe(false);

      // Barrier: a handler registered after the controller's sees "after" only once the
      // controller's handler has enqueued it (handlers run in order); one more turn of the
      // event loop lets a free worker (one of two is idle) start it, were the queue live.
      const afterSeen = new Promise<void>((resolve) =>
        m.cache.informer(ConfigMap, selector).addHandler({ add: (o) => o.metadata?.name === "after" && resolve() }),
      );
      await client.create(ConfigMap, { metadata: { name: "after", namespace: ns, labels: { loser: "yes" } } });
      await afterSeen;
      await new Promise((resolve) => setImmediate(resolve));
      expect(started).toEqual(["slow"]);
      expect(controller.queue.length).toBe(0);
    } finally {
      releaseSlow();
      await m.stop();
    }
  }, 60_000);

  it("gives up leading by the renew deadline when the API server stops answering", async () => {
    const server = kc.getCurrentCluster()!.server;
    const proxy = new FaultyProxy(Number(new URL(server).port));
    const port = await proxy.listen();
    const partitioned = new KubeConfig();
    partitioned.loadFromString(kc.exportConfig().replace(server, `https://127.0.0.1:${port}`));
    const renewDeadlineMs = 3000;
    const retryPeriodMs = 2000;
    const leaseDurationMs = 15_000;
    let lostAt: number | undefined;
    const m = newManager(partitioned, "lease-partition", {
      leaderElection: { namespace: ns, leaseDurationMs, renewDeadlineMs, retryPeriodMs },
      onLeadershipLost: () => (lostAt = Date.now()),
    });
    try {
      await m.start();
      await eventually(() => expect(m.isLeader).toBe(true), 10_000);
      proxy.blackhole(); // requests now hang instead of failing
      await eventually(() => expect(lostAt).toBeDefined(), 20_000);
      const lease = await client.get<KubeObject & { spec: { renewTime: string } }>(LeaseType, ns, "lease-partition.ktube.dev");
      const renewedAt = Date.parse(lease.spec.renewTime);
      // The renewTime written is the start of the last successful attempt: the deadline
      // counts from there, and the next attempt hangs until it.
      expect(lostAt! - renewedAt).toBeGreaterThanOrEqual(renewDeadlineMs - 10);
      // Bounded by the deadline, not by request timeouts (the old code stopped at about
      // renewTime + retryPeriod + 2 * retryPeriod = +6 s here); long before a candidate
      // could take over at renewTime + leaseDuration.
      expect(lostAt! - renewedAt).toBeLessThan(renewDeadlineMs + 2000);
    } finally {
      await m.stop();
      await proxy.close();
    }
  }, 60_000);
});

async function stealLease(leaseName: string): Promise<void> {
  const lease = await client.get<KubeObject & { spec: Record<string, unknown> }>(LeaseType, ns, leaseName);
  await client.request("PUT", `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${leaseName}`, {
    body: { ...lease, spec: { ...lease.spec, holderIdentity: "thief", leaseDurationSeconds: 60, renewTime: new Date().toISOString().replace("Z", "000Z") } },
  });
}
