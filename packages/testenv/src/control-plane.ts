// A real Kubernetes control plane on loopback: etcd, kube-apiserver and
// kube-controller-manager (for garbage collection, namespaces, Deployments...).
import { KubeConfig } from "@kubernetes/client-node";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { ensureBinaries, TestenvSetupError, type BinaryPaths } from "./binaries.ts";
import { createPki, type Pki } from "./certs.ts";
import { freePort, isProcessAlive, logTail, sleep, startProcess, stopProcess, type ManagedProcess } from "./process.ts";

export interface ControlPlaneOptions {
  /** Progress lines (binary builds, start-up); default: none. */
  log?: (line: string) => void;
  /** Keep the work directory (logs, etcd data) after stop. */
  keepWorkDir?: boolean;
  /** More kube-apiserver flags, e.g. `--watch-cache=false` to make watches read etcd directly. */
  apiserverArgs?: string[];
}

const WORK_DIR_PREFIX = "ktube-testenv-";

export class ControlPlane {
  readonly workDir: string;
  readonly kubeconfigPath: string;
  private readonly processes: ManagedProcess[] = [];
  private etcd?: ManagedProcess;
  private apiserver?: ManagedProcess;
  private binaries?: BinaryPaths;
  private pki?: Pki;
  private etcdPorts?: { client: number; peer: number };
  private apiserverPort = 0;
  private readonly log: (line: string) => void;
  private readonly options: ControlPlaneOptions;

  constructor(options: ControlPlaneOptions = {}) {
    this.options = options;
    removeAbandonedWorkDirs();
    this.workDir = mkdtempSync(join(tmpdir(), `${WORK_DIR_PREFIX}${process.pid}-`));
    this.kubeconfigPath = join(this.workDir, "kubeconfig");
    this.log = options.log ?? (() => {});
  }

  /** etcd's client URL (plain HTTP on loopback; it also serves the v3 JSON gateway). */
  get etcdUrl(): string {
    return `http://127.0.0.1:${this.etcdPorts?.client ?? 0}`;
  }

  /** The API server's URL, e.g. https://127.0.0.1:40123. */
  get server(): string {
    return `https://127.0.0.1:${this.apiserverPort}`;
  }

  async start(): Promise<void> {
    this.binaries = await ensureBinaries(this.log);
    this.pki = await createPki(this.workDir);
    this.etcdPorts = { client: await freePort(), peer: await freePort() };
    this.apiserverPort = await freePort();
    await this.startEtcd();
    await this.startApiserver();
    this.writeKubeconfig();
    await this.startControllerManager();
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath);
    return kc;
  }

  /** Stops the API server only (etcd keeps the data), to test clients across an outage. */
  async stopApiserver(): Promise<void> {
    if (this.apiserver) await stopProcess(this.apiserver);
  }

  /** Starts the API server again on the same port with the same data. */
  async restartApiserver(): Promise<void> {
    await this.stopApiserver();
    await this.startApiserver();
  }

  async stop(): Promise<void> {
    for (const proc of [...this.processes].reverse()) await stopProcess(proc);
    this.processes.length = 0;
    if (!this.options.keepWorkDir) rmSync(this.workDir, { recursive: true, force: true });
  }

  private launch(name: string, binary: string, args: string[]): ManagedProcess {
    const proc = startProcess(name, binary, args, join(this.workDir, `${name}.log`));
    const index = this.processes.findIndex((p) => p.name === name);
    if (index >= 0) this.processes.splice(index, 1);
    this.processes.push(proc);
    return proc;
  }

  private async startEtcd(): Promise<void> {
    const { client, peer } = this.etcdPorts!;
    const dataDir = join(this.workDir, "etcd");
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.etcd = this.launch("etcd", this.binaries!.etcd, [
      `--data-dir=${dataDir}`,
      `--listen-client-urls=http://127.0.0.1:${client}`,
      `--advertise-client-urls=http://127.0.0.1:${client}`,
      `--listen-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-cluster=default=http://127.0.0.1:${peer}`,
      "--unsafe-no-fsync",
      "--log-level=warn",
    ]);
    await this.waitFor(this.etcd, async () => (await httpGet(`http://127.0.0.1:${client}/health`)).status === 200);
  }

  private async startApiserver(): Promise<void> {
    const pki = this.pki!;
    this.apiserver = this.launch("kube-apiserver", this.binaries!["kube-apiserver"], [
      `--etcd-servers=http://127.0.0.1:${this.etcdPorts!.client}`,
      `--secure-port=${this.apiserverPort}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--cert-dir=${join(this.workDir, "apiserver-certs")}`,
      `--tls-cert-file=${pki.servingCert}`,
      `--tls-private-key-file=${pki.servingKey}`,
      `--client-ca-file=${pki.caCert}`,
      `--service-account-issuer=https://kubernetes.default.svc`,
      `--service-account-key-file=${pki.serviceAccountPub}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      "--service-cluster-ip-range=10.96.0.0/16",
      "--authorization-mode=RBAC",
      "--allow-privileged=true",
      "--enable-priority-and-fairness=false",
      "--profiling=false",
      "--v=0",
      ...(this.options.apiserverArgs ?? []),
    ]);
    await this.waitFor(this.apiserver, async () => (await this.apiGet("/readyz")).status === 200, 120_000);
  }

  private async startControllerManager(): Promise<void> {
    const pki = this.pki!;
    const proc = this.launch("kube-controller-manager", this.binaries!["kube-controller-manager"], [
      `--kubeconfig=${this.kubeconfigPath}`,
      `--authentication-kubeconfig=${this.kubeconfigPath}`,
      `--authorization-kubeconfig=${this.kubeconfigPath}`,
      `--secure-port=${await freePort()}`,
      "--bind-address=127.0.0.1",
      "--leader-elect=false",
      // Only what tests need from a cluster without nodes: garbage collection, namespace
      // deletion, service accounts, and the aggregation of labelled ClusterRoles into
      // view/edit/admin (the charts' user roles). Workload controllers (Deployment,
      // ReplicaSet...) are off, so a test can play the data plane by writing a Deployment's
      // status itself.
      "--controllers=garbagecollector,namespace,serviceaccount,serviceaccount-token,clusterrole-aggregation",
      `--service-account-private-key-file=${pki.serviceAccountKey}`,
      `--root-ca-file=${pki.caCert}`,
      "--use-service-account-credentials=false",
      "--concurrent-gc-syncs=5",
      "--v=0",
    ]);
    // The controller manager has no readiness of its own worth waiting for; the
    // default ServiceAccount showing up says its controllers run.
    await this.waitFor(proc, async () => (await this.apiGet("/api/v1/namespaces/default/serviceaccounts/default")).status === 200, 60_000);
  }

  private async waitFor(proc: ManagedProcess, ready: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
        throw new TestenvSetupError(`${proc.name} exited during start-up:\n${logTail(proc.logFile)}`);
      }
      if (await ready().catch(() => false)) return;
      await sleep(200);
    }
    throw new TestenvSetupError(`${proc.name} was not ready within ${timeoutMs / 1000} s:\n${logTail(proc.logFile)}`);
  }

  private apiGet(path: string): Promise<{ status: number; body: string }> {
    const pki = this.pki!;
    return httpGet(`${this.server}${path}`, {
      ca: readFileSync(pki.caCert),
      cert: readFileSync(pki.adminCert),
      key: readFileSync(pki.adminKey),
    });
  }

  private writeKubeconfig(): void {
    const pki = this.pki!;
    const b64 = (file: string) => readFileSync(file).toString("base64");
    const config = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "ktube-testenv", cluster: { server: this.server, "certificate-authority-data": b64(pki.caCert) } }],
      users: [{ name: "admin", user: { "client-certificate-data": b64(pki.adminCert), "client-key-data": b64(pki.adminKey) } }],
      contexts: [{ name: "ktube-testenv", context: { cluster: "ktube-testenv", user: "admin", namespace: "default" } }],
      "current-context": "ktube-testenv",
    };
    writeFileSync(this.kubeconfigPath, stringify(config), { mode: 0o600 });
  }
}

function httpGet(
  url: string,
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const isHttps = url.startsWith("https:");
    const options = { ...tls, timeout: 5000 };
    const handler = (res: IncomingMessage) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    };
    const req = isHttps ? request(url, options, handler) : httpRequest(url, { timeout: 5000 }, handler);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}


/** Work directories of test runs whose process is gone (killed before it could clean up). */
function removeAbandonedWorkDirs(): void {
  for (const name of readdirSync(tmpdir())) {
    const match = new RegExp(`^${WORK_DIR_PREFIX}(\\d+)-`).exec(name);
    if (match && !isProcessAlive(Number(match[1]))) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}
