// A cloudflare controller against the test API server and the fake Cloudflare API.
import type { KubeConfig } from "@kubernetes/client-node";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource, type Condition } from "@ktube/api";
import { FakeCloudflare } from "@ktube/fake-cloudflare";
import { registerProviderControllers, type ProviderKit } from "@ktube/provider-kit";
import { createLogger, KubeClient, Manager, PatchType, type KubeObject } from "@ktube/runtime";
import { createTestNamespace, deleteTestNamespace, eventually, testKubeConfig, TestProcess, waitForKtubeCondition } from "@ktube/testenv";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { cloudflaredName, MANAGED_BY } from "../src/manifests/cloudflared.ts";
import { cloudflarePlugin, type CloudflarePluginOptions, type CloudflareSession } from "../src/plugin.ts";

export const TOKEN = "cf-test-token";

export interface Harness {
  kc: KubeConfig;
  client: KubeClient;
  fake: FakeCloudflare;
  account: string;
  controllerNs: string;
  /** A unique suffix for cluster-scoped names in this test file. */
  id: string;
  /**
   * Labels of this file's TunnelProviders. The controller serves only those
   * (--provider-selector), so files sharing the API server do not see each other's.
   */
  providerLabels: Record<string, string>;
  manager?: Manager;
  kit?: ProviderKit<CloudflareSession>;
  startController(options?: Partial<CloudflarePluginOptions> & { providerSelector?: string }): Promise<Manager>;
  stopController(): Promise<void>;
  /** Runs the real program (src/main.ts) as a child process, as a cluster would. */
  startProcess(extraArgs?: string[]): TestProcess;
  namespace(prefix: string, labels?: Record<string, string>): Promise<string>;
  /** The namespaces this test file made (its objects live only there). */
  namespaces: string[];
  close(): Promise<void>;
}

export async function createHarness(): Promise<Harness> {
  const kc = testKubeConfig();
  const client = new KubeClient(kc);
  const fake = new FakeCloudflare();
  const account = fake.addAccount();
  fake.addToken(TOKEN, [account]);
  await fake.start();
  const namespaces: string[] = [];
  const processes: TestProcess[] = [];
  const id = randomBytes(3).toString("hex");
  const controllerNs = await createTestNamespace(kc, "ktube-system");
  namespaces.push(controllerNs);
  await client.create(Core.Secret, { metadata: { name: "cloudflare-api", namespace: controllerNs }, stringData: { token: TOKEN } } as KubeObject);
  const h: Harness = {
    kc,
    client,
    fake,
    account,
    controllerNs,
    id,
    providerLabels: { "ktube.dev/test-harness": id },
    namespaces,
    async startController(options = {}) {
      const { providerSelector = `ktube.dev/test-harness=${id}`, ...pluginOptions } = options;
      const manager = new Manager({
        kubeConfig: kc,
        name: "cloudflare-controller",
        logger: createLogger({ name: "cloudflare-controller", level: process.env.KTUBE_TEST_LOG ?? "silent", format: "text" }),
        probeAddress: false,
        metricsAddress: false,
      });
      h.kit = registerProviderControllers(
        manager,
        cloudflarePlugin({ ownerId: "test", cloudflaredImage: "cloudflare/cloudflared:test", apiUrl: fake.baseUrl, ...pluginOptions }),
        { namespace: controllerNs, managedBy: MANAGED_BY, providerSelector, maxConcurrentReconciles: 4, configDelayMs: 200 },
      );
      await manager.start();
      h.manager = manager;
      return manager;
    },
    startProcess(extraArgs = []) {
      const main = fileURLToPath(new URL("../src/main.ts", import.meta.url));
      const args = [
        "--disable-warning=ExperimentalWarning",
        main,
        `--kubeconfig=${process.env.KUBECONFIG}`,
        `--namespace=${controllerNs}`,
        `--provider-selector=ktube.dev/test-harness=${id}`,
        "--leader-elect=false",
        "--health-probe-bind-address=127.0.0.1:0",
        "--metrics-bind-address=127.0.0.1:0",
        "--owner-id=test",
        "--cloudflared-image=cloudflare/cloudflared:test",
        `--cloudflare-api-url=${fake.baseUrl}`,
        "--config-delay=200ms",
        ...extraArgs,
      ];
      const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOG_LEVEL: process.env.KTUBE_TEST_LOG ?? "info" } });
      const started = new TestProcess(child);
      processes.push(started);
      return started;
    },
    async stopController() {
      await h.manager?.stop();
      h.manager = undefined;
    },
    async namespace(prefix, labels = {}) {
      const ns = await createTestNamespace(kc, prefix, labels);
      namespaces.push(ns);
      return ns;
    },
    async close() {
      await Promise.all(processes.map((p) => p.stop()));
      await h.stopController();
      await fake.stop();
      await Promise.all(namespaces.map((ns) => deleteTestNamespace(kc, ns)));
    },
  };
  return h;
}

/** The controller program running as a child process (for crash tests: killed with real signals). */
export { TestProcess as ControllerProcess } from "@ktube/testenv";

export const provider = (h: Harness, name: string, spec: Record<string, unknown>) => ({
  apiVersion: "ktube.dev/v1alpha1",
  kind: "TunnelProvider",
  metadata: { name, labels: h.providerLabels },
  spec: { type: "cloudflare", ...spec },
});

export const cloudflareProvider = (h: Harness, name: string, secret = "cloudflare-api") =>
  provider(h, name, { cloudflare: { accountId: h.account, apiTokenSecretRef: { name: secret, key: "token" } } });

export const tunnel = (namespace: string, name: string, providerName: string, spec: Record<string, unknown> = {}) => ({
  apiVersion: "ktube.dev/v1alpha1",
  kind: "Tunnel",
  metadata: { name, namespace },
  spec: { providerRef: { name: providerName }, cloudflare: { replicas: 2 }, ...spec },
});

export const binding = (namespace: string, name: string, tunnelRef: { name: string; namespace?: string }, routes: Array<Record<string, unknown>>) => ({
  apiVersion: "ktube.dev/v1alpha1",
  kind: "TunnelBinding",
  metadata: { name, namespace },
  spec: { tunnelRef, routes },
});

export const service = (namespace: string, name: string, ports: Array<{ name?: string; port: number }>) => ({
  metadata: { name, namespace },
  spec: { ports: ports.map((p) => ({ ...p, targetPort: p.port })) },
});

export interface Status {
  conditions?: Condition[];
  tunnelId?: string;
  boundRoutes?: number;
  routes?: Array<{ name: string; url?: string; ready: boolean; message?: string }>;
  observedGeneration?: number;
}

export async function status(h: Harness, kind: "TunnelProvider" | "Tunnel" | "TunnelBinding", namespace: string | undefined, name: string): Promise<Status> {
  const type = { TunnelProvider: TunnelProviderResource, Tunnel: TunnelResource, TunnelBinding: TunnelBindingResource }[kind];
  return ((await h.client.get<KubeObject & { status?: Status }>(type, namespace, name)).status ?? {}) as Status;
}

export const condition = (s: Status, type: string) => s.conditions?.find((c) => c.type === type);

/** Waits until `type` is `state` on the object; returns its status. */
export async function waitForCondition(
  h: Harness,
  kind: "TunnelProvider" | "Tunnel" | "TunnelBinding",
  namespace: string | undefined,
  name: string,
  type: string,
  state: { status: string; reason?: string },
  timeoutMs = 20_000,
): Promise<Status> {
  return (await waitForKtubeCondition(h.kc, kind, namespace, name, type, state, timeoutMs)) as Status;
}

/**
 * Plays the data plane that cannot run here: Cloudflare sees `connections` connectors
 * and the cloudflared Deployment reports them available.
 */
export async function connectTunnel(h: Harness, namespace: string, name: string, connections = 2): Promise<void> {
  const s = await eventually(async () => {
    const st = await status(h, "Tunnel", namespace, name);
    if (!st.tunnelId) throw new Error("no tunnel id yet");
    return st;
  }, 20_000);
  h.fake.setConnections(s.tunnelId!, connections);
  const deploymentName = cloudflaredName({ metadata: { name } } as never);
  await eventually(() => h.client.get(Core.Deployment, namespace, deploymentName), 20_000);
  await h.client.patch(Core.Deployment, namespace, deploymentName, { status: { replicas: connections, availableReplicas: connections, readyReplicas: connections } }, PatchType.merge, { subresource: "status" });
}
