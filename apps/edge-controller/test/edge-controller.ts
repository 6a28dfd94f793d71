// The edge controller as the controller and data-path tests run it: in process against the
// test API server, serving one TunnelProvider (labelled for this test run) whose SSH Secret
// and pinned Envoy release are the test VPS's.
import { Core, TunnelProviderResource } from "@ktube/api";
import { registerProviderControllers } from "@ktube/provider-kit";
import { createLogger, KubeClient, Manager, type KubeObject } from "@ktube/runtime";
import { waitForKtubeCondition } from "@ktube/testenv";
import type { KubeConfig } from "@kubernetes/client-node";
import { edgePlugin, type EdgePluginOptions } from "../src/plugin.ts";
import type { EdgeVps, Offer } from "./provider/edge-vps.ts";

export const MANAGED_BY = "ktube-edge-controller";

export interface EdgeControllerOptions {
  kc: KubeConfig;
  edge: EdgeVps;
  /** The controller's namespace (the SSH Secret goes there). */
  namespace: string;
  provider: string;
  /** Labels the provider so that only this run's controller serves it. */
  id: string;
  plugin: EdgePluginOptions;
}

/**
 * The SSH Secret (the VPS's client key and pinned host key) in `namespace` and a TunnelProvider
 * labelled `id` that installs `envoy` (default: the VPS's offer of Envoy).
 */
export async function createEdgeProvider(kc: KubeConfig, options: { edge: EdgeVps; namespace: string; provider: string; id: string; secret?: string; envoy?: Offer }): Promise<void> {
  const { edge, namespace, provider, id, secret = "vps-ssh", envoy = edge.envoy } = options;
  const client = new KubeClient(kc);
  await client.create(Core.Secret, {
    metadata: { name: secret, namespace },
    stringData: { privateKey: edge.vps.clientPrivateKey, knownHosts: `${edge.vps.hostPublicKey}\n` },
  } as KubeObject);
  await client.create(TunnelProviderResource, {
    apiVersion: "ktube.dev/v1alpha1",
    kind: "TunnelProvider",
    metadata: { name: provider, labels: { "ktube.dev/test-harness": id } },
    spec: { type: "edge", edge: { sshSecretRef: { name: secret }, envoy: { version: "1.36.2", url: envoy.url, sha256: envoy.sha256 } } },
  } as KubeObject);
}

/** Creates the provider (createEdgeProvider), starts the controller, and waits for the provider to be Ready. */
export async function startEdgeController(options: EdgeControllerOptions): Promise<Manager> {
  const { kc, edge, namespace, provider, id } = options;
  await createEdgeProvider(kc, { edge, namespace, provider, id });
  const manager = new Manager({
    kubeConfig: kc,
    name: "edge-controller",
    logger: createLogger({ name: "edge-controller", level: process.env.KTUBE_TEST_LOG ?? "silent", format: "text" }),
    probeAddress: false,
    metricsAddress: false,
  });
  registerProviderControllers(manager, edgePlugin(options.plugin), {
    namespace,
    managedBy: MANAGED_BY,
    providerSelector: `ktube.dev/test-harness=${id}`,
    maxConcurrentReconciles: 2,
    configDelayMs: 200,
  });
  await manager.start();
  await waitForKtubeCondition(kc, "TunnelProvider", undefined, provider, "Ready", { status: "True", reason: "CredentialsLoaded" });
  return manager;
}
