// The ngrok controller against the test API server and the fake ngrok cloud, with the
// connector run as real processes: the harness plays the kubelet (testenv has none) by
// starting one connector per Pod the Deployment's ReplicaSet made, with that Pod's name,
// the env and files its template names, and a token of the agents' own ServiceAccount.
// Before anything loads the SDK in this test file (the controller's authtoken probe does).
import "@ktube/fake-ngrok/sdk-in-jest";
import type { KubeConfig } from "@kubernetes/client-node";
import { Core } from "@ktube/api";
import { FakeNgrok } from "@ktube/fake-ngrok";
import { registerProviderControllers, type ProviderKit } from "@ktube/provider-kit";
import { createLogger, KubeClient, Manager, type KubeObject } from "@ktube/runtime";
import { createTestNamespace, deleteTestNamespace, eventually, kubeConfigAs, testKubeConfig, TestProcess } from "@ktube/testenv";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { V1Deployment, V1Pod, V1Secret } from "@kubernetes/client-node";
import { agentName, AUTHTOKEN_KEY, CA_KEY, CONNECTOR_ENV, MANAGED_BY } from "../src/manifests/connector.ts";
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
  stopController(): Promise<void>;
  /** Starts a connector for every Pod of the tunnel's agent Deployment (waits for them). */
  runAgents(namespace: string, tunnel: string, options?: { upstreams?: Record<string, string>; heartbeatS?: number }): Promise<Agent[]>;
  /** Makes one more Pod of the agent Deployment, as its ReplicaSet would; returns its name. */
  createPod(namespace: string, tunnel: string): Promise<string>;
  /** Starts the connector for one Pod name. */
  runAgent(namespace: string, tunnel: string, pod: string, options?: { upstreams?: Record<string, string>; heartbeatS?: number }): Promise<Agent>;
  namespace(prefix: string): Promise<string>;
  close(): Promise<void>;
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
  const agents: Agent[] = [];
  let manager: Manager | undefined;
  const controllerNs = await createTestNamespace(kc, "ktube-system");
  namespaces.push(controllerNs);
  await client.create(Core.Secret, { metadata: { name: "ngrok", namespace: controllerNs }, stringData: { authtoken, apiKey } } as KubeObject);
  const dir = mkdtempSync(join(tmpdir(), "ktube-ngrok-"));

  const createPod = async (deployment: V1Deployment & KubeObject): Promise<string> => {
    const template = deployment.spec!.template;
    const pod = await client.create<V1Pod & KubeObject>(Core.Pod, {
      metadata: {
        generateName: `${deployment.metadata!.name}-`,
        namespace: deployment.metadata!.namespace!,
        labels: template.metadata?.labels ?? {},
        ownerReferences: [{ apiVersion: "apps/v1", kind: "Deployment", name: deployment.metadata!.name!, uid: deployment.metadata!.uid!, controller: true }],
      },
      spec: template.spec!,
    } as V1Pod & KubeObject);
    return pod.metadata!.name!;
  };

  const runAgent: Harness["runAgent"] = async (namespace, tunnel, pod, options = {}) => {
    const deployment = await client.get<V1Deployment & KubeObject>(Core.Deployment, namespace, agentName({ metadata: { name: tunnel } } as never));
    const spec = deployment.spec!.template.spec!;
    const container = spec.containers[0]!;
    const env: Record<string, string> = {};
    for (const e of container.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") env[e.name] = pod;
      else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.namespace") env[e.name] = namespace;
    }
    // The mounted files: the authtoken Secret and the CA from the route table ConfigMap.
    const podDir = mkdtempSync(join(dir, `${pod}-`));
    const secret = await client.get<V1Secret & KubeObject>(Core.Secret, namespace, spec.volumes!.find((v) => v.name === "authtoken")!.secret!.secretName!);
    writeFileSync(join(podDir, AUTHTOKEN_KEY), Buffer.from(secret.data![AUTHTOKEN_KEY]!, "base64"));
    env[CONNECTOR_ENV.authtokenFile] = join(podDir, AUTHTOKEN_KEY);
    if (env[CONNECTOR_ENV.caFile]) {
      const cm = await client.get<KubeObject & { data?: Record<string, string> }>(Core.ConfigMap, namespace, agentName({ metadata: { name: tunnel } } as never));
      writeFileSync(join(podDir, CA_KEY), cm.data![CA_KEY]!);
      env[CONNECTOR_ENV.caFile] = join(podDir, CA_KEY);
    }
    // The agents' own identity: whatever their Role does not allow fails here as in a cluster.
    const as = await kubeConfigAs(kc, namespace, spec.serviceAccountName!);
    writeFileSync(join(podDir, "kubeconfig"), as.exportConfig());
    const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", MAIN, ...(container.args ?? [])], {
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        PATH: process.env.PATH,
        KUBECONFIG: join(podDir, "kubeconfig"),
        LOG_LEVEL: process.env.KTUBE_TEST_LOG ?? "info",
        ...env,
        [CONNECTOR_ENV.probeAddress]: "127.0.0.1:0",
        ...(options.upstreams ? { [CONNECTOR_ENV.upstreamOverrides]: JSON.stringify(options.upstreams) } : {}),
        ...(options.heartbeatS ? { [CONNECTOR_ENV.heartbeatS]: String(options.heartbeatS) } : {}),
      },
    });
    const agent = { pod, process: new TestProcess(child) };
    agents.push(agent);
    return agent;
  };

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
    async stopController() {
      await manager?.stop();
      manager = undefined;
    },
    runAgent,
    async runAgents(namespace, tunnel, options) {
      // testenv runs no workload controllers: the harness makes the Pods a ReplicaSet would.
      const deployment = await eventually(() => client.get<V1Deployment & KubeObject>(Core.Deployment, namespace, agentName({ metadata: { name: tunnel } } as never)), 30_000);
      const pods: string[] = [];
      for (let i = 0; i < (deployment.spec?.replicas ?? 1); i++) pods.push(await createPod(deployment));
      return Promise.all(pods.map((pod) => runAgent(namespace, tunnel, pod, options)));
    },
    createPod: (namespace, tunnel) =>
      client.get<V1Deployment & KubeObject>(Core.Deployment, namespace, agentName({ metadata: { name: tunnel } } as never)).then(createPod),
    async namespace(prefix) {
      const ns = await createTestNamespace(kc, prefix);
      namespaces.push(ns);
      return ns;
    },
    async close() {
      await Promise.all(agents.map((a) => a.process.stop()));
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
