// The kit's controllers with the test plugin against the test API server.
import type { KubeConfig } from "@kubernetes/client-node";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource, type Condition } from "@ktube/api";
import { createLogger, KubeClient, Manager, type KubeObject } from "@ktube/runtime";
import { createTestNamespace, deleteTestNamespace, eventually, testKubeConfig } from "@ktube/testenv";
import { randomBytes } from "node:crypto";
import { registerProviderControllers, type KitOptions, type ProviderKit } from "../src/index.ts";
import { GOOD_TOKEN, TestService, testPlugin, type TestSession } from "./test-plugin.ts";

export const MANAGED_BY = "ktube-test-controller";

export interface Instance {
  manager: Manager;
  kit: ProviderKit<TestSession>;
  service: TestService;
}

export interface KitHarness {
  kc: KubeConfig;
  client: KubeClient;
  controllerNs: string;
  /** Unique per test file: cluster-scoped names and the providers' label. */
  id: string;
  labels: Record<string, string>;
  start(options?: Partial<KitOptions> & { service?: TestService }): Promise<Instance>;
  namespace(prefix: string, labels?: Record<string, string>): Promise<string>;
  close(): Promise<void>;
}

export async function createKitHarness(): Promise<KitHarness> {
  const kc = testKubeConfig();
  const client = new KubeClient(kc);
  const id = randomBytes(3).toString("hex");
  const namespaces: string[] = [];
  const instances: Instance[] = [];
  const controllerNs = await createTestNamespace(kc, "kit-system");
  namespaces.push(controllerNs);
  await client.create(Core.Secret, { metadata: { name: "token", namespace: controllerNs }, stringData: { token: GOOD_TOKEN } } as KubeObject);
  return {
    kc,
    client,
    controllerNs,
    id,
    labels: { "ktube.dev/kit-test": id },
    async start(options = {}) {
      const { service = new TestService(), ...kitOptions } = options;
      const manager = new Manager({
        kubeConfig: kc,
        name: "test-controller",
        logger: createLogger({ name: "test-controller", level: process.env.KTUBE_TEST_LOG ?? "silent", format: "text" }),
        probeAddress: false,
        metricsAddress: false,
      });
      const kit = registerProviderControllers(manager, testPlugin(service), {
        namespace: controllerNs,
        managedBy: MANAGED_BY,
        providerSelector: `ktube.dev/kit-test=${id}`,
        maxConcurrentReconciles: 4,
        configDelayMs: 100,
        ...kitOptions,
      });
      await manager.start();
      const instance = { manager, kit, service };
      instances.push(instance);
      return instance;
    },
    async namespace(prefix, labels = {}) {
      const ns = await createTestNamespace(kc, prefix, labels);
      namespaces.push(ns);
      return ns;
    },
    async close() {
      await Promise.all(instances.map((i) => i.manager.stop()));
      await Promise.all(namespaces.map((ns) => deleteTestNamespace(kc, ns)));
    },
  };
}

export const provider = (name: string, labels: Record<string, string>, secret = "token") => ({
  apiVersion: "ktube.dev/v1alpha1",
  kind: "TunnelProvider",
  metadata: { name, labels },
  spec: { type: "ngrok", ngrok: { authtokenSecretRef: { name: secret, key: "token" } } },
});

export const tunnel = (namespace: string, name: string, providerName: string, spec: Record<string, unknown> = {}) => ({
  apiVersion: "ktube.dev/v1alpha1",
  kind: "Tunnel",
  metadata: { name, namespace },
  spec: { providerRef: { name: providerName }, ...spec },
});

export const binding = (namespace: string, name: string, tunnelRef: { name: string; namespace?: string }, routes: Array<Record<string, unknown>>) => ({
  apiVersion: "ktube.dev/v1alpha1",
  kind: "TunnelBinding",
  metadata: { name, namespace },
  spec: { tunnelRef, routes },
});

export const route = (name: string, hostname: string, service = "web", extra: Record<string, unknown> = {}) => ({
  name,
  protocol: "HTTP",
  hostname,
  service: { name: service, port: 80 },
  ...extra,
});

export const serviceObject = (namespace: string, name: string, port = 80) => ({
  metadata: { name, namespace },
  spec: { ports: [{ name: "http", port, targetPort: port }] },
});

export type Kind = "TunnelProvider" | "Tunnel" | "TunnelBinding";
const TYPES = { TunnelProvider: TunnelProviderResource, Tunnel: TunnelResource, TunnelBinding: TunnelBindingResource };

export interface Status {
  conditions?: Condition[];
  tunnelId?: string;
  boundRoutes?: number;
  routes?: Array<{ name: string; url?: string; ready: boolean; message?: string }>;
  observedGeneration?: number;
}

export async function read(h: KitHarness, kind: Kind, namespace: string | undefined, name: string): Promise<KubeObject & { status?: Status }> {
  return h.client.get<KubeObject & { status?: Status }>(TYPES[kind], namespace, name);
}

export const condition = (s: Status | undefined, type: string) => s?.conditions?.find((c) => c.type === type);

/** Waits until condition `type` of the object has `status` (and `reason`, when given); returns the object. */
export async function waitFor(
  h: KitHarness,
  kind: Kind,
  namespace: string | undefined,
  name: string,
  type: string,
  state: { status: string; reason?: string },
  timeoutMs = 20_000,
): Promise<KubeObject & { status?: Status }> {
  return eventually(async () => {
    const obj = await read(h, kind, namespace, name);
    const c = condition(obj.status, type);
    if (c?.status !== state.status || (state.reason && c.reason !== state.reason) || c.observedGeneration !== obj.metadata?.generation) {
      throw new Error(`${kind} ${namespace ?? ""}/${name}: ${type} is ${c?.status}/${c?.reason} (${c?.message}), want ${state.status}/${state.reason ?? "*"}`);
    }
    return obj;
  }, timeoutMs, 100);
}

export async function waitGone(h: KitHarness, kind: Kind, namespace: string | undefined, name: string, timeoutMs = 20_000): Promise<void> {
  await eventually(async () => {
    const gone = await read(h, kind, namespace, name).then(
      () => false,
      (e: { status?: number }) => e.status === 404,
    );
    if (!gone) throw new Error(`${kind} ${namespace ?? ""}/${name} still exists`);
  }, timeoutMs, 100);
}
