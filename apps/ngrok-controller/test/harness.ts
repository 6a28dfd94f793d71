// The ngrok controller against the test API server and the fake ngrok cloud, with the
// connector run as real processes by a LocalKubelet (testenv has no nodes): one per Pod of
// the agent Deployment, with that Pod's name, the env and files its template names, and a
// token of the agents' own ServiceAccount.
// Before anything loads the SDK in this test file (the controller's authtoken probe does).
import "@ktube/fake-ngrok/sdk-in-jest";
import type { KubeConfig } from "@kubernetes/client-node";
import { Core } from "@ktube/api";
import { FakeNgrok } from "@ktube/fake-ngrok";
import { registerProviderControllers, type ProviderKit } from "@ktube/provider-kit";
import { createLogger, KubeClient, Manager, type KubeObject } from "@ktube/runtime";
import { createTestNamespace, deleteTestNamespace, eventually, LocalKubelet, testKubeConfig, TestProcess } from "@ktube/testenv";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { CONNECTOR_ENV } from "@ktube/provider-kit";
import { AGENT_ENV, agentNames, MANAGED_BY } from "../src/manifests/connector.ts";
import { ngrokPlugin, type NgrokPluginOptions, type NgrokSession } from "../src/plugin.ts";

export interface Harness {
  kc: KubeConfig;
  client: KubeClient;
  fake: FakeNgrok;
  authtoken: string;
  /** A REST API key of the fake account, in the Secret `ngrok` under `apiKey`. */
  apiKey: string;
  controllerNs: string;
  id: string;
  providerLabels: Record<string, string>;
  kit?: ProviderKit<NgrokSession>;
  startController(options?: Partial<NgrokPluginOptions>): Promise<Manager>;
  /** Runs the real program (src/main.ts) as a child process, as a cluster would (for crash tests). */
  startProcess(extraArgs?: string[]): TestProcess;
  stopController(): Promise<void>;
  /** Stops the in-process controller and every controller process. */
  stopControllers(): Promise<void>;
  /** Makes the Pods of the tunnel's agent Deployment and runs them as local processes (a LocalKubelet). */
  runAgents(namespace: string, tunnel: string, options?: AgentOptions): Promise<Agent[]>;
  /** One more agent Pod (a replacement), made and run. */
  addAgent(namespace: string, tunnel: string, options?: AgentOptions): Promise<Agent>;
  namespace(prefix: string): Promise<string>;
  close(): Promise<void>;
}

export interface AgentOptions {
  /** Where each Service is reached from this machine: `svc.ns.svc.cluster.local:80` -> `127.0.0.1:PORT`. */
  upstreams?: Record<string, string>;
  heartbeatS?: number;
}

export interface Agent {
  pod: string;
  process: TestProcess;
}

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));

export async function createHarness(): Promise<Harness> {
  const kc = testKubeConfig();
  const client = new KubeClient(kc);
  const fake = new FakeNgrok();
  const authtoken = fake.addAuthtoken();
  const apiKey = fake.addApiKey();
  await fake.start();
  const id = randomBytes(3).toString("hex");
  const namespaces: string[] = [];
  let manager: Manager | undefined;
  const controllerNs = await createTestNamespace(kc, "ktube-system");
  namespaces.push(controllerNs);
  await client.create(Core.Secret, { metadata: { name: "ngrok", namespace: controllerNs }, stringData: { authtoken, apiKey } } as KubeObject);

  const kubelet = new LocalKubelet(kc, { command: () => [process.execPath, "--disable-warning=ExperimentalWarning", MAIN] });
  const agentEnv = (options: AgentOptions = {}): Record<string, string> => ({
    LOG_LEVEL: process.env.KTUBE_TEST_LOG ?? "info",
    [CONNECTOR_ENV.probeAddress]: "127.0.0.1:0",
    ...(options.upstreams ? { [CONNECTOR_ENV.upstreamOverrides]: JSON.stringify(options.upstreams) } : {}),
    ...(options.heartbeatS ? { [AGENT_ENV.heartbeatS]: String(options.heartbeatS) } : {}),
  });
  const processes: TestProcess[] = [];
  const caFile = join(mkdtempSync(join(tmpdir(), "ktube-ngrok-ca-")), "ca.pem");
  writeFileSync(caFile, fake.caPem);
  const deploymentOf = (tunnel: string): string => agentNames({ metadata: { name: tunnel } } as never).name;

  const h: Harness = {
    kc,
    client,
    fake,
    authtoken,
    apiKey,
    controllerNs,
    id,
    providerLabels: { "ktube.dev/test-harness": id },
    async startController(options = {}) {
      manager = new Manager({
        kubeConfig: kc,
        name: "ngrok-controller",
        logger: createLogger({ name: "ngrok-controller", level: process.env.KTUBE_TEST_LOG ?? "silent", format: "text" }),
        probeAddress: false,
        metricsAddress: false,
      });
      h.kit = registerProviderControllers(
        manager,
        ngrokPlugin({ connectorImage: "ktube/ngrok-controller:test", serverAddr: fake.serverAddr, caPem: fake.caPem, api: { baseUrl: fake.apiUrl }, ...options }),
        { namespace: controllerNs, managedBy: MANAGED_BY, providerSelector: `ktube.dev/test-harness=${id}`, maxConcurrentReconciles: 4, configDelayMs: 200 },
      );
      await manager.start();
      return manager;
    },
    startProcess(extraArgs = []) {
      const args = [
        "--disable-warning=ExperimentalWarning",
        MAIN,
        `--kubeconfig=${process.env.KUBECONFIG}`,
        `--namespace=${controllerNs}`,
        `--provider-selector=ktube.dev/test-harness=${id}`,
        "--leader-elect=false",
        "--health-probe-bind-address=127.0.0.1:0",
        "--metrics-bind-address=127.0.0.1:0",
        "--connector-image=ktube/ngrok-controller:test",
        `--ngrok-server-addr=${fake.serverAddr}`,
        `--ngrok-ca-file=${caFile}`,
        `--ngrok-api-url=${fake.apiUrl}`,
        ...extraArgs,
      ];
      const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOG_LEVEL: process.env.KTUBE_TEST_LOG ?? "info" } });
      const started = new TestProcess(child);
      processes.push(started);
      return started;
    },
    async stopControllers() {
      await Promise.all(processes.map((p) => p.stop()));
      await h.stopController();
    },
    async stopController() {
      await manager?.stop();
      manager = undefined;
    },
    async runAgents(namespace, tunnel, options) {
      await eventually(() => client.get(Core.Deployment, namespace, deploymentOf(tunnel)), 30_000);
      return (await kubelet.runDeployment(namespace, deploymentOf(tunnel), agentEnv(options))).map((p) => ({ pod: p.name, process: p.process }));
    },
    async addAgent(namespace, tunnel, options) {
      const p = await kubelet.addPod(namespace, deploymentOf(tunnel), agentEnv(options));
      return { pod: p.name, process: p.process };
    },
    async namespace(prefix) {
      const ns = await createTestNamespace(kc, prefix);
      namespaces.push(ns);
      return ns;
    },
    async close() {
      await Promise.all(processes.map((p) => p.stop()));
      await kubelet.close();
      await h.stopController();
      await fake.stop();
      await Promise.all(namespaces.map((ns) => deleteTestNamespace(kc, ns)));
    },
  };
  return h;
}

/** A backend Service's stand-in on loopback: answers with its name and the path it got. */
export async function startBackend(name: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => res.writeHead(200, { "content-type": "text/plain" }).end(`${name} ${req.url}`));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

export const ngrokProvider = (h: Harness, name: string, spec: Record<string, unknown> = {}) => ({
  apiVersion: "ktube.dev/v1alpha1",
  kind: "TunnelProvider",
  metadata: { name, labels: h.providerLabels },
  spec: { type: "ngrok", ngrok: { authtokenSecretRef: { name: "ngrok", key: "authtoken" }, ...spec } },
});

export const tunnel = (namespace: string, name: string, providerName: string, ngrok: Record<string, unknown> = {}) => ({
  apiVersion: "ktube.dev/v1alpha1",
  kind: "Tunnel",
  metadata: { name, namespace },
  spec: { providerRef: { name: providerName }, ngrok },
});

export const binding = (namespace: string, name: string, tunnelName: string, routes: Array<Record<string, unknown>>) => ({
  apiVersion: "ktube.dev/v1alpha1",
  kind: "TunnelBinding",
  metadata: { name, namespace },
  spec: { tunnelRef: { name: tunnelName }, routes },
});

export const service = (namespace: string, name: string, port: number) => ({ metadata: { name, namespace }, spec: { ports: [{ name: "http", port, targetPort: port }] } });
