// A stand-in for the ReplicaSet and StatefulSet controllers and the kubelet, for control
// planes without nodes (testenv, `npm start`): it makes the Pods of a Deployment (random
// names) or a StatefulSet (`<name>-<ordinal>`) and runs each one's first container as a
// local process, the way a node would run it, as far as that can be done without
// containers: the Pod's name and namespace from the downward API, the container's env, its
// Secret and ConfigMap volumes written to files (only the listed items, where a volume
// lists them; env values and arguments under a mount path are pointed at them), and a token of the Pod's
// own ServiceAccount, so the process has exactly the rights its RBAC grants. Mounted
// Secrets and ConfigMaps follow changes (a kubelet syncs them within a minute; this one
// within a second or two). A Pod that is deleted gets SIGTERM, as on a node.
//
// A Pod can get a network namespace of its own (`networkNamespace`), as a node gives each
// Pod one: the process runs in it (`ip netns exec`), and reaches the API server through a
// relay, since the server listens on the machine's loopback: a small process in the Pod's
// namespace accepts on the same loopback address and port and passes each connection
// through a Unix socket (file system paths are not per network namespace) to the server.
//
// `run({ labelSelector })` is the same stand-in left running (`npm start`): it keeps the Pods
// of every matching Deployment and StatefulSet running as their controllers would (see
// workload-watch.ts), until `close()`.
import type { KubeConfig, V1Container, V1Deployment, V1Pod, V1PodTemplateSpec, V1StatefulSet, V1Volume } from "@kubernetes/client-node";
import { AppsV1Api, CoreV1Api } from "@kubernetes/client-node";
import { execFileSync, spawn } from "node:child_process";
import net from "node:net";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { TestProcess } from "./ktube-objects.ts";
import { kubeConfigAs } from "./service-account.ts";
import { WorkloadWatch, type LocalKubeletRunOptions } from "./workload-watch.ts";

export interface LocalPod {
  name: string;
  process: TestProcess;
}

interface MountedVolume {
  dir: string;
  secret?: { name: string; items?: Array<{ key: string; path: string }> };
  configMap?: { name: string; items?: Array<{ key: string; path: string }> };
}

type RunningPod = LocalPod & { namespace: string; uid: string; volumes: MountedVolume[]; gracePeriodS: number };

export interface LocalKubeletOptions {
  /** The program an image runs: `[executable, ...args before the container's args]`. */
  command(image: string): string[];
  /** Extra environment for every process (e.g. where a Service is reached from outside the cluster). */
  env?: Record<string, string>;
  /** Extra environment for one Pod's process (e.g. a port of its own), after `env`. */
  podEnv?(pod: V1Pod): Promise<Record<string, string>> | Record<string, string>;
  /** The network namespace a Pod runs in (made by the caller, loopback up), or undefined for the machine's own. */
  networkNamespace?(pod: V1Pod): string | undefined;
}

const RELAY = fileURLToPath(new URL("./api-relay.ts", import.meta.url));

export class LocalKubelet {
  private readonly kc: KubeConfig;
  private readonly options: LocalKubeletOptions;
  private readonly dir = mkdtempSync(join(tmpdir(), "ktube-kubelet-"));
  private readonly running = new Map<string, RunningPod>();
  private readonly relays: Array<{ server: net.Server; process: TestProcess }> = [];
  private readonly timer: NodeJS.Timeout;
  private reaping = false;
  private readonly watches: WorkloadWatch[] = [];

  constructor(kc: KubeConfig, options: LocalKubeletOptions) {
    this.kc = kc;
    this.options = options;
    // Deleted Pods stop, as a node would stop them.
    this.timer = setInterval(() => {
      if (this.reaping) return;
      this.reaping = true;
      void this.reap().finally(() => (this.reaping = false));
    }, 1000);
    this.timer.unref();
  }

  /** Makes `replicas` Pods of the Deployment (as its ReplicaSet would) and runs them. */
  async runDeployment(namespace: string, name: string, extraEnv: Record<string, string> = {}): Promise<LocalPod[]> {
    const deployment = await this.kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace, name });
    const pods: LocalPod[] = [];
    for (let i = 0; i < (deployment.spec?.replicas ?? 1); i++) pods.push(await this.runPod(await this.createPod(deployment), extraEnv));
    return pods;
  }

  /** One more Pod of the Deployment (a replacement), made and run. */
  async addPod(namespace: string, name: string, extraEnv: Record<string, string> = {}): Promise<LocalPod> {
    const deployment = await this.kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace, name });
    return this.runPod(await this.createPod(deployment), extraEnv);
  }

  /** Makes the Pods `<name>-0` … of the StatefulSet (as its controller would) and runs them; `extraEnv` per ordinal. */
  async runStatefulSet(namespace: string, name: string, extraEnv: (ordinal: number) => Record<string, string> = () => ({})): Promise<LocalPod[]> {
    const set = await this.kc.makeApiClient(AppsV1Api).readNamespacedStatefulSet({ namespace, name });
    const pods: LocalPod[] = [];
    for (let i = 0; i < (set.spec?.replicas ?? 1); i++) pods.push(await this.runStatefulSetPod(set, i, extraEnv(i)));
    return pods;
  }

  /** The StatefulSet's Pod of one ordinal (a replacement after it was deleted), made and run. */
  async addStatefulSetPod(namespace: string, name: string, ordinal: number, extraEnv: Record<string, string> = {}): Promise<LocalPod> {
    const set = await this.kc.makeApiClient(AppsV1Api).readNamespacedStatefulSet({ namespace, name });
    return this.runStatefulSetPod(set, ordinal, extraEnv);
  }

  /**
   * Keeps the Pods of every Deployment and StatefulSet matching `labelSelector` running,
   * until `close()`: returns at once; API errors are retried.
   */
  run(options: LocalKubeletRunOptions): void {
    const watch = new WorkloadWatch(this.kc, options, {
      running: (namespace, name) => this.running.get(`${namespace}/${name}`),
      start: (pod) => this.runPod(pod, options.env ?? {}),
      create: (owner, kind, template, naming, labels) => this.createPodOf(owner, kind, template, naming, labels),
      stop: (namespace, name) => this.stopPod(namespace, name),
    });
    this.watches.push(watch);
    watch.start();
  }

  pods(): LocalPod[] {
    return [...this.running.values()];
  }

  /** Stops every process (SIGTERM) and removes the files it was given. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.watches.map((w) => w.stop()));
    await Promise.all([...this.running.values()].map(terminate));
    this.running.clear();
    for (const relay of this.relays) {
      relay.server.close();
      await relay.process.kill();
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async createPod(deployment: V1Deployment): Promise<V1Pod> {
    return this.createPodOf(deployment, "Deployment", deployment.spec!.template, { generateName: `${deployment.metadata!.name}-` });
  }

  private async runStatefulSetPod(set: V1StatefulSet, ordinal: number, extraEnv: Record<string, string>): Promise<LocalPod> {
    const name = `${set.metadata!.name}-${ordinal}`;
    const labels = { "statefulset.kubernetes.io/pod-name": name, "apps.kubernetes.io/pod-index": String(ordinal) };
    return this.runPod(await this.createPodOf(set, "StatefulSet", set.spec!.template, { name }, labels), extraEnv);
  }

  private async createPodOf(
    owner: V1Deployment | V1StatefulSet,
    kind: string,
    template: V1PodTemplateSpec,
    naming: { name?: string; generateName?: string },
    labels: Record<string, string> = {},
  ): Promise<V1Pod> {
    return this.kc.makeApiClient(CoreV1Api).createNamespacedPod({
      namespace: owner.metadata!.namespace!,
      body: {
        metadata: {
          ...naming,
          labels: { ...template.metadata?.labels, ...labels },
          ownerReferences: [{ apiVersion: "apps/v1", kind, name: owner.metadata!.name!, uid: owner.metadata!.uid!, controller: true }],
        },
        spec: template.spec!,
      },
    });
  }

  private async runPod(pod: V1Pod, extraEnv: Record<string, string>): Promise<LocalPod> {
    const namespace = pod.metadata!.namespace!;
    const name = pod.metadata!.name!;
    const container = pod.spec!.containers[0]!;
    // Per incarnation: a replacement Pod (same name, new uid) starts from fresh files.
    const root = join(this.dir, `${name}-${pod.metadata!.uid!.slice(0, 8)}`);
    mkdirSync(root, { recursive: true });
    const volumes = this.volumesOf(pod.spec!.volumes ?? [], container, root);
    for (const v of volumes) await this.writeVolume(namespace, v);
    const mounts: Array<[string, string]> = (container.volumeMounts ?? []).map((m) => [m.mountPath.replace(/\/$/, ""), join(root, "volumes", m.name)]);
    // A path inside a mounted volume, in an env value or an argument, points at the file written for it.
    const local = (value: string): string => {
      const mount = mounts.find(([mountPath]) => value === mountPath || value.startsWith(`${mountPath}/`));
      return mount ? `${mount[1]}${value.slice(mount[0].length)}` : value;
    };
    const env: Record<string, string> = {};
    for (const e of container.env ?? []) {
      const field = e.valueFrom?.fieldRef?.fieldPath;
      const value = e.value ?? (field === "metadata.name" ? name : field === "metadata.namespace" ? namespace : undefined);
      if (value !== undefined) env[e.name] = local(value);
    }
    const identity = await kubeConfigAs(this.kc, namespace, pod.spec!.serviceAccountName ?? "default");
    writeFileSync(join(root, "kubeconfig"), identity.exportConfig());
    const netns = this.options.networkNamespace?.(pod);
    if (netns) await this.relayApiServer(netns, root);
    const command = [...(netns ? ["ip", "netns", "exec", netns] : []), ...this.options.command(container.image ?? ""), ...(container.args ?? []).map(local)];
    const child = spawn(command[0]!, command.slice(1), {
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH, ...env, ...this.options.env, ...(await this.options.podEnv?.(pod)), ...extraEnv, KUBECONFIG: join(root, "kubeconfig") },
    });
    const gracePeriodS = pod.spec!.terminationGracePeriodSeconds ?? 30;
    const running = { name, namespace, uid: pod.metadata!.uid!, volumes, gracePeriodS, process: new TestProcess(child) };
    this.running.set(`${namespace}/${name}`, running);
    return running;
  }

  private volumesOf(volumes: V1Volume[], container: V1Container, root: string): MountedVolume[] {
    return (container.volumeMounts ?? []).map((mount) => {
      const volume = volumes.find((v) => v.name === mount.name);
      const dir = join(root, "volumes", mount.name);
      mkdirSync(dir, { recursive: true });
      if (volume?.secret) return { dir, secret: { name: volume.secret.secretName!, ...(volume.secret.items ? { items: volume.secret.items } : {}) } };
      if (volume?.configMap) return { dir, configMap: { name: volume.configMap.name!, ...(volume.configMap.items ? { items: volume.configMap.items } : {}) } };
      return { dir };
    });
  }

  /** Writes a Secret or ConfigMap volume's files (only those whose content changed). */
  private async writeVolume(namespace: string, volume: MountedVolume): Promise<void> {
    const core = this.kc.makeApiClient(CoreV1Api);
    const write = (path: string, content: Buffer | string, mode?: number): void => {
      const current = existsSync(path) ? readFileSync(path) : undefined;
      if (!current || !current.equals(Buffer.from(content))) writeFileSync(path, content, mode ? { mode } : {});
    };
    if (volume.secret) {
      const secret = await core.readNamespacedSecret({ namespace, name: volume.secret.name });
      const items = volume.secret.items ?? Object.keys(secret.data ?? {}).map((key) => ({ key, path: key }));
      for (const item of items) if (secret.data?.[item.key] !== undefined) write(join(volume.dir, item.path), Buffer.from(secret.data[item.key]!, "base64"), 0o600);
    } else if (volume.configMap) {
      const cm = await core.readNamespacedConfigMap({ namespace, name: volume.configMap.name });
      const items = volume.configMap.items ?? Object.keys(cm.data ?? {}).map((key) => ({ key, path: key }));
      for (const item of items) if (cm.data?.[item.key] !== undefined) write(join(volume.dir, item.path), cm.data[item.key]!);
    }
  }

  /** Makes the API server's loopback address answer inside `netns` (see the top of the file). */
  private async relayApiServer(netns: string, root: string): Promise<void> {
    const server = new URL(this.kc.getCurrentCluster()!.server);
    const port = Number(server.port || 443);
    const socket = join(root, "api.sock");
    const relay = net.createServer((inbound) => {
      const outbound = net.connect(port, server.hostname);
      inbound.pipe(outbound).pipe(inbound);
      inbound.on("error", () => outbound.destroy());
      outbound.on("error", () => inbound.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      relay.once("error", reject);
      relay.listen(socket, resolve);
    });
    execFileSync("ip", ["-n", netns, "link", "set", "lo", "up"]);
    const child = spawn("ip", ["netns", "exec", netns, process.execPath, "--disable-warning=ExperimentalWarning", RELAY, `${server.hostname}:${port}`, socket], { stdio: ["ignore", "pipe", "pipe"] });
    const relayProcess = new TestProcess(child);
    this.relays.push({ server: relay, process: relayProcess });
    const deadline = Date.now() + 10_000;
    while (!relayProcess.output.includes("listening")) {
      if (!relayProcess.running || Date.now() > deadline) throw new Error(`the API server relay in ${netns} did not start: ${relayProcess.output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Deletes the Pod (if still there) and stops its process. */
  private async stopPod(namespace: string, name: string): Promise<void> {
    await this.kc
      .makeApiClient(CoreV1Api)
      .deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 })
      .catch((e: { code?: number }) => {
        if (e.code !== 404) throw e;
      });
    const pod = this.running.get(`${namespace}/${name}`);
    this.running.delete(`${namespace}/${name}`);
    if (pod) await terminate(pod);
  }

  private async reap(): Promise<void> {
    const core = this.kc.makeApiClient(CoreV1Api);
    for (const [key, pod] of this.running) {
      if (!pod.process.running) continue;
      const live = await core.readNamespacedPod({ namespace: pod.namespace, name: pod.name }).catch((e: { code?: number }) => (e.code === 404 ? undefined : null));
      if (live === undefined || live?.metadata?.deletionTimestamp) {
        this.running.delete(key);
        void terminate(pod);
        continue;
      }
      for (const volume of pod.volumes) await this.writeVolume(pod.namespace, volume).catch(() => undefined);
    }
  }
}

/** SIGTERM, then SIGKILL once the Pod's termination grace period is over, as a node does. */
async function terminate(pod: RunningPod): Promise<void> {
  const deadline = setTimeout(() => void pod.process.kill(), pod.gracePeriodS * 1000);
  deadline.unref();
  await pod.process.stop();
  clearTimeout(deadline);
}
