// The ReplicaSet and StatefulSet controllers' part of LocalKubelet's watch mode
// (`kubelet.run({ labelSelector })`): keeps the Pods of matching workloads as those
// controllers would, and reports their status as they and a kubelet would.
import type { KubeConfig, V1Deployment, V1Pod, V1PodTemplateSpec, V1StatefulSet } from "@kubernetes/client-node";
import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, Watch } from "@kubernetes/client-node";
import { createHash } from "node:crypto";
import type { TestProcess } from "./ktube-objects.ts";

export interface LocalKubeletRunOptions {
  /** Which Deployments and StatefulSets (by their own labels) to keep running, in every namespace. */
  labelSelector: string;
  /** Extra environment for these Pods' processes. */
  env?: Record<string, string>;
  /** How often everything is compared again, besides the watches' nudges (default 1000 ms). */
  resyncMs?: number;
  /** Where to say what failed (API errors are retried at the next resync). */
  log?(line: string): void;
}

/** The label a Pod carries with its template's hash, as ReplicaSet Pods carry `pod-template-hash`. */
export const TEMPLATE_HASH_LABEL = "pod-template-hash";

type Workload = V1Deployment | V1StatefulSet;

const MERGE_PATCH = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** What a WorkloadWatch needs of its kubelet. */
export interface PodHost {
  /** The process this kubelet runs for the Pod of that name, if any (`uid` says which incarnation). */
  running(namespace: string, name: string): { name: string; uid: string; process: TestProcess } | undefined;
  start(pod: V1Pod): Promise<unknown>;
  create(owner: Workload, kind: string, template: V1PodTemplateSpec, naming: { name?: string; generateName?: string }, labels: Record<string, string>): Promise<V1Pod>;
  stop(namespace: string, name: string): Promise<void>;
}

/** A template's hash, as the label its Pods carry: a changed template means new Pods. */
export function templateHash(template: V1PodTemplateSpec): string {
  return createHash("sha256").update(JSON.stringify(template)).digest("hex").slice(0, 10);
}

/** A Deployment's maxSurge and maxUnavailable in Pods (Kubernetes' rounding: surge up, unavailable down). */
export function rollingLimits(deployment: V1Deployment): { maxSurge: number; maxUnavailable: number } {
  const replicas = deployment.spec?.replicas ?? 1;
  if (deployment.spec?.strategy?.type === "Recreate") return { maxSurge: 0, maxUnavailable: replicas };
  const resolve = (value: number | string | undefined, round: (n: number) => number): number => {
    const v = value ?? "25%";
    return typeof v === "number" ? v : round((Number.parseInt(v, 10) / 100) * replicas);
  };
  const maxSurge = resolve(deployment.spec?.strategy?.rollingUpdate?.maxSurge, Math.ceil);
  const maxUnavailable = resolve(deployment.spec?.strategy?.rollingUpdate?.maxUnavailable, Math.floor);
  return { maxSurge, maxUnavailable: maxSurge === 0 && maxUnavailable === 0 ? 1 : maxUnavailable };
}

/**
 * The ReplicaSet and StatefulSet controllers' part, for the workloads matching one label
 * selector: every pass (a watch event on them, or the resync timer) compares each workload's
 * Pods with its spec and takes the next step. A Pod whose process exited is deleted and
 * replaced (a node would restart the container in place: the effect is the same here). A new
 * template rolls: a Deployment within its maxSurge / maxUnavailable, counting a new Pod as
 * available from the next pass on (there are no readiness probes here); a StatefulSet one Pod
 * at a time from the highest ordinal. Pods of a workload that is gone are stopped.
 */
export class WorkloadWatch {
  private readonly kc: KubeConfig;
  private readonly options: LocalKubeletRunOptions;
  private readonly host: PodHost;
  /** `namespace/pod` -> the uid of the workload it was started for. */
  private readonly owned = new Map<string, string>();
  private readonly aborts: AbortController[] = [];
  private timer?: NodeJS.Timeout;
  private syncing?: Promise<void>;
  private again = false;
  private stopped = false;

  constructor(kc: KubeConfig, options: LocalKubeletRunOptions, host: PodHost) {
    this.kc = kc;
    this.options = options;
    this.host = host;
  }

  start(): void {
    this.timer = setInterval(() => this.nudge(), this.options.resyncMs ?? 1000);
    this.timer.unref();
    this.watch("/apis/apps/v1/deployments");
    this.watch("/apis/apps/v1/statefulsets");
    this.nudge();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    for (const abort of this.aborts) abort.abort();
    await this.syncing;
  }

  private nudge(): void {
    if (this.stopped) return;
    if (this.syncing) {
      this.again = true;
      return;
    }
    this.syncing = this.sync()
      .catch((e: unknown) => this.log(`syncing ${this.options.labelSelector}: ${describe(e)} (retrying)`))
      .finally(() => {
        this.syncing = undefined;
        if (this.again) {
          this.again = false;
          this.nudge();
        }
      });
  }

  /** A watch only hurries the next pass along; when it ends or fails it is made again a second later. */
  private watch(path: string): void {
    if (this.stopped) return;
    let ended = false;
    const again = (): void => {
      if (ended) return;
      ended = true;
      setTimeout(() => this.watch(path), 1000).unref();
    };
    new Watch(this.kc)
      .watch(path, { labelSelector: this.options.labelSelector }, () => this.nudge(), again)
      .then((abort) => {
        if (this.stopped) abort.abort();
        else this.aborts.push(abort);
      })
      .catch(again);
  }

  private async sync(): Promise<void> {
    const apps = this.kc.makeApiClient(AppsV1Api);
    const { labelSelector } = this.options;
    const deployments = (await apps.listDeploymentForAllNamespaces({ labelSelector })).items.filter((d) => !d.metadata?.deletionTimestamp);
    const sets = (await apps.listStatefulSetForAllNamespaces({ labelSelector })).items.filter((s) => !s.metadata?.deletionTimestamp);
    const live = new Set([...deployments, ...sets].map((w) => w.metadata!.uid!));
    for (const [key, owner] of this.owned) {
      if (this.stopped || live.has(owner)) continue;
      const [namespace, name] = key.split("/") as [string, string];
      await this.host.stop(namespace, name);
      this.owned.delete(key);
    }
    for (const workload of [...deployments, ...sets]) {
      if (this.stopped) return;
      const kind = deployments.includes(workload as V1Deployment) ? "Deployment" : "StatefulSet";
      try {
        if (kind === "Deployment") await this.syncDeployment(workload as V1Deployment);
        else await this.syncStatefulSet(workload as V1StatefulSet);
      } catch (e) {
        this.log(`${kind} ${workload.metadata!.namespace}/${workload.metadata!.name}: ${describe(e)} (retrying)`);
      }
    }
  }

  private async syncDeployment(deployment: V1Deployment): Promise<void> {
    const hash = templateHash(deployment.spec!.template);
    const replicas = deployment.spec?.replicas ?? 1;
    const pods = await this.runningPodsOf(deployment);
    const current = pods.filter((p) => p.metadata?.labels?.[TEMPLATE_HASH_LABEL] === hash);
    const old = pods.filter((p) => p.metadata?.labels?.[TEMPLATE_HASH_LABEL] !== hash);
    const { maxSurge, maxUnavailable } = old.length > 0 ? rollingLimits(deployment) : { maxSurge: 0, maxUnavailable: 0 };
    const create = Math.max(0, Math.min(replicas - current.length, replicas + maxSurge - pods.length));
    const name = deployment.metadata!.name!;
    for (let i = 0; i < create; i++) {
      await this.startNew(deployment, await this.host.create(deployment, "Deployment", deployment.spec!.template, { generateName: `${name}-${hash}-` }, { [TEMPLATE_HASH_LABEL]: hash }));
    }
    // Old Pods go first, then any beyond `replicas`, while enough Pods of the pass's start are left.
    const removable = Math.max(0, pods.length - (replicas - maxUnavailable));
    const surplus = [...old, ...current.slice(replicas)].slice(0, old.length > 0 ? removable : current.length - replicas);
    for (const pod of surplus) await this.stopPod(pod.metadata!.namespace!, pod.metadata!.name!);
    const running = pods.length + create - surplus.length;
    const updated = current.length + create - surplus.filter((p) => p.metadata?.labels?.[TEMPLATE_HASH_LABEL] === hash).length;
    await this.reportStatus(deployment, "Deployment", { replicas: running, updatedReplicas: updated, readyReplicas: running, availableReplicas: running, unavailableReplicas: Math.max(0, replicas - running) });
  }

  private async syncStatefulSet(set: V1StatefulSet): Promise<void> {
    const hash = templateHash(set.spec!.template);
    const replicas = set.spec?.replicas ?? 1;
    const name = set.metadata!.name!;
    const ordinal = (podName: string): number => Number(podName.slice(name.length + 1));
    // Pod name -> its template hash, for the Pods whose process runs.
    const running = new Map((await this.runningPodsOf(set)).map((p) => [p.metadata!.name!, p.metadata?.labels?.["controller-revision-hash"]]));
    for (let i = 0; i < replicas; i++) {
      if (running.has(`${name}-${i}`)) continue;
      const labels = { "statefulset.kubernetes.io/pod-name": `${name}-${i}`, "apps.kubernetes.io/pod-index": String(i), "controller-revision-hash": hash };
      await this.startNew(set, await this.host.create(set, "StatefulSet", set.spec!.template, { name: `${name}-${i}` }, labels));
      running.set(`${name}-${i}`, hash);
    }
    const byOrdinalDown = [...running.keys()].sort((a, b) => ordinal(b) - ordinal(a));
    for (const podName of byOrdinalDown.filter((n) => ordinal(n) >= replicas)) {
      await this.stopPod(set.metadata!.namespace!, podName);
      running.delete(podName);
    }
    // One outdated Pod at a time, and only once every ordinal runs: it is made again next pass.
    const outdated = byOrdinalDown.find((n) => ordinal(n) < replicas && running.get(n) !== hash);
    if (outdated && running.size === replicas) {
      await this.stopPod(set.metadata!.namespace!, outdated);
      running.delete(outdated);
    }
    const updated = [...running.values()].filter((h) => h === hash).length;
    await this.reportStatus(set, "StatefulSet", { replicas: running.size, readyReplicas: running.size, availableReplicas: running.size, currentReplicas: running.size, updatedReplicas: updated });
  }

  /**
   * What the workload controllers report, so `kubectl get deploy` reads as on a cluster: a
   * Pod whose process runs counts as ready (there are no probes here). Written only when it changed.
   */
  private async reportStatus(workload: Workload, kind: "Deployment" | "StatefulSet", counts: Record<string, number>): Promise<void> {
    const status: Record<string, number> = { observedGeneration: workload.metadata!.generation ?? 0, ...counts };
    const had = (workload.status ?? {}) as Record<string, unknown>;
    if (Object.entries(status).every(([k, v]) => (had[k] ?? 0) === v)) return;
    const apps = this.kc.makeApiClient(AppsV1Api);
    const target = { namespace: workload.metadata!.namespace!, name: workload.metadata!.name!, body: { status } };
    if (kind === "StatefulSet") await apps.patchNamespacedStatefulSetStatus(target, MERGE_PATCH);
    else await apps.patchNamespacedDeploymentStatus(target, MERGE_PATCH);
  }

  /** What a kubelet reports of a Pod it started: running on this machine, ready (no probes here). */
  private async reportRunning(pod: V1Pod): Promise<void> {
    const now = new Date();
    const container = pod.spec!.containers[0]!;
    const ready = [{ type: "Ready", status: "True", lastTransitionTime: now }, { type: "ContainersReady", status: "True", lastTransitionTime: now }];
    await this.kc.makeApiClient(CoreV1Api).patchNamespacedPodStatus(
      {
        namespace: pod.metadata!.namespace!,
        name: pod.metadata!.name!,
        body: {
          status: {
            phase: "Running",
            hostIP: "127.0.0.1",
            podIP: "127.0.0.1",
            startTime: now,
            conditions: [{ type: "PodScheduled", status: "True", lastTransitionTime: now }, ...ready],
            containerStatuses: [{ name: container.name, image: container.image ?? "", imageID: "", ready: true, started: true, restartCount: 0, state: { running: { startedAt: now } } }],
          },
        },
      },
      MERGE_PATCH,
    );
  }

  /**
   * The workload's Pods whose process runs: a Pod not yet run here is started (a kubelet
   * runs what is scheduled to it), and one whose process exited is deleted, to be replaced.
   */
  private async runningPodsOf(workload: Workload): Promise<V1Pod[]> {
    const namespace = workload.metadata!.namespace!;
    const selector = Object.entries(workload.spec?.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(",");
    const listed = await this.kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace, labelSelector: selector });
    const pods = listed.items.filter((p) => !p.metadata?.deletionTimestamp && p.metadata?.ownerReferences?.some((o) => o.controller && o.uid === workload.metadata!.uid));
    const running: V1Pod[] = [];
    for (const pod of pods) {
      const local = this.host.running(namespace, pod.metadata!.name!);
      if (!local || local.uid !== pod.metadata!.uid) {
        await this.startNew(workload, pod);
      } else if (!local.process.running) {
        const code = local.process.child.exitCode ?? local.process.child.signalCode;
        this.log(`Pod ${namespace}/${local.name} exited (${code}), replacing it: ${local.process.output.trim().split("\n").slice(-3).join(" | ")}`);
        await this.stopPod(namespace, pod.metadata!.name!);
        continue;
      } else if (pod.status?.phase !== "Running") {
        await this.reportRunning(pod);
      }
      running.push(pod);
    }
    return running;
  }

  private async startNew(workload: Workload, pod: V1Pod): Promise<void> {
    this.owned.set(`${pod.metadata!.namespace}/${pod.metadata!.name}`, workload.metadata!.uid!);
    await this.host.start(pod);
    // Reported on the next pass if this fails.
    await this.reportRunning(pod).catch((e: unknown) => this.log(`Pod ${pod.metadata!.namespace}/${pod.metadata!.name} status: ${describe(e)}`));
  }

  private async stopPod(namespace: string, name: string): Promise<void> {
    await this.host.stop(namespace, name);
    this.owned.delete(`${namespace}/${name}`);
  }

  private log(line: string): void {
    this.options.log?.(line);
  }
}

function describe(error: unknown): string {
  const e = error as { code?: number; body?: unknown; message?: string };
  return e.code ? `${e.code} ${typeof e.body === "string" ? e.body.slice(0, 200) : e.message}` : String(e.message ?? error);
}
