// A cloudflare controller against the test API server and the fake Cloudflare API.
import type { KubeConfig } from "@kubernetes/client-node";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource, type Condition } from "@ktube/api";
import { FakeCloudflare } from "@ktube/fake-cloudflare";
import { createLogger, KubeClient, Manager, PatchType, type KubeObject } from "@ktube/runtime";
import { createTestNamespace, deleteTestNamespace, eventually, testKubeConfig } from "@ktube/testenv";
import { randomBytes } from "node:crypto";
import { cloudflaredName } from "../src/manifests/cloudflared.ts";
import { setupCloudflareControllers, type SetupOptions } from "../src/setup.ts";

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
  startController(options?: Partial<SetupOptions>): Promise<Manager>;
  stopController(): Promise<void>;
  namespace(prefix: string, labels?: Record<string, string>): Promise<string>;
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
    async startController(options = {}) {
      const manager = new Manager({
        kubeConfig: kc,
        name: "cloudflare-controller",
        logger: createLogger({ name: "cloudflare-controller", level: process.env.KTUBE_TEST_LOG ?? "silent", format: "text" }),
        probeAddress: false,
        metricsAddress: false,
      });
      setupCloudflareControllers(manager, {
        namespace: controllerNs,
        ownerId: "test",
        cloudflaredImage: "cloudflare/cloudflared:test",
        maxConcurrentReconciles: 4,
        configDelayMs: 200,
        cloudflareApiUrl: fake.baseUrl,
        providerSelector: `ktube.dev/test-harness=${id}`,
        ...options,
      });
      await manager.start();
      h.manager = manager;
      return manager;
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
      await h.stopController();
      await fake.stop();
      await Promise.all(namespaces.map((ns) => deleteTestNamespace(kc, ns)));
    },
  };
  return h;
}

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
  return eventually(async () => {
    const s = await status(h, kind, namespace, name);
    const c = condition(s, type);
    if (c?.status !== state.status || (state.reason && c.reason !== state.reason)) {
      throw new Error(`${kind} ${namespace ?? ""}/${name}: ${type} is ${c?.status}/${c?.reason} (${c?.message}), want ${state.status}/${state.reason ?? "*"}`);
    }
    return s;
  }, timeoutMs, 100);
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
