// Where each kind lives in the REST API (the shape @ktube/runtime's ResourceType takes).
import { API_VERSION } from "./common.ts";

export interface ResourceDescriptor {
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

export const TunnelProviderResource: ResourceDescriptor = { apiVersion: API_VERSION, kind: "TunnelProvider", plural: "tunnelproviders", namespaced: false };
export const TunnelResource: ResourceDescriptor = { apiVersion: API_VERSION, kind: "Tunnel", plural: "tunnels", namespaced: true };
export const TunnelBindingResource: ResourceDescriptor = { apiVersion: API_VERSION, kind: "TunnelBinding", plural: "tunnelbindings", namespaced: true };

export const Core = {
  Namespace: { apiVersion: "v1", kind: "Namespace", plural: "namespaces", namespaced: false },
  Service: { apiVersion: "v1", kind: "Service", plural: "services", namespaced: true },
  Secret: { apiVersion: "v1", kind: "Secret", plural: "secrets", namespaced: true },
  ConfigMap: { apiVersion: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true },
  Deployment: { apiVersion: "apps/v1", kind: "Deployment", plural: "deployments", namespaced: true },
  PodDisruptionBudget: { apiVersion: "policy/v1", kind: "PodDisruptionBudget", plural: "poddisruptionbudgets", namespaced: true },
} satisfies Record<string, ResourceDescriptor>;

/** The finalizer each controller puts on the objects it has made provider-side changes for. */
export const finalizerFor = (provider: string): string => `${provider}.ktube.dev/cleanup`;
