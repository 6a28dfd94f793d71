// Shared bits of the runtime's tests.
import type { KubeConfig, V1ConfigMap } from "@kubernetes/client-node";
import { createLogger, Manager, type ManagerOptions, type ResourceType } from "../src/index.ts";

export const ConfigMap: ResourceType<V1ConfigMap> = { apiVersion: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true };
export const TunnelBinding: ResourceType = { apiVersion: "ktube.dev/v1alpha1", kind: "TunnelBinding", plural: "tunnelbindings", namespaced: true };

/** Logs only when KTUBE_TEST_LOG is set (to a level), so failures can be debugged. */
export const testLogger = (name: string) => createLogger({ name, level: process.env.KTUBE_TEST_LOG ?? "silent", format: "text" });

export function newManager(kubeConfig: KubeConfig, name: string, options: Partial<ManagerOptions> = {}): Manager {
  return new Manager({ kubeConfig, name, logger: testLogger(name), probeAddress: false, metricsAddress: false, ...options });
}

export const configMap = (namespace: string, name: string, data: Record<string, string> = {}) => ({
  metadata: { name, namespace },
  data,
});
