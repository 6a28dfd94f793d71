// Where each kind lives in the REST API, typed with its objects' type: the shape
// @ktube/runtime's ResourceType<T> takes, so `cache.get(TunnelResource, ns, name)` is a
// Tunnel with no explicit generic. (This package does not depend on the runtime; the
// two interfaces match structurally, phantom field included.)
import type { V1ConfigMap, V1Deployment, V1StatefulSet, V1Namespace, V1Pod, V1PodDisruptionBudget, V1Role, V1RoleBinding, V1Secret, V1Service, V1ServiceAccount } from "@kubernetes/client-node";
import { API_VERSION } from "./common.ts";
import type { Tunnel } from "./tunnel.ts";
import type { TunnelBinding } from "./tunnel-binding.ts";
import type { TunnelProvider } from "./tunnel-provider.ts";

export interface ResourceDescriptor<T = unknown> {
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
  /** Phantom: the object type of this kind; never set. */
  readonly __object?: T;
}

export const TunnelProviderResource: ResourceDescriptor<TunnelProvider> = { apiVersion: API_VERSION, kind: "TunnelProvider", plural: "tunnelproviders", namespaced: false };
export const TunnelResource: ResourceDescriptor<Tunnel> = { apiVersion: API_VERSION, kind: "Tunnel", plural: "tunnels", namespaced: true };
export const TunnelBindingResource: ResourceDescriptor<TunnelBinding> = { apiVersion: API_VERSION, kind: "TunnelBinding", plural: "tunnelbindings", namespaced: true };

const Namespace: ResourceDescriptor<V1Namespace> = { apiVersion: "v1", kind: "Namespace", plural: "namespaces", namespaced: false };
const Service: ResourceDescriptor<V1Service> = { apiVersion: "v1", kind: "Service", plural: "services", namespaced: true };
const Secret: ResourceDescriptor<V1Secret> = { apiVersion: "v1", kind: "Secret", plural: "secrets", namespaced: true };
const ConfigMap: ResourceDescriptor<V1ConfigMap> = { apiVersion: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true };
const Deployment: ResourceDescriptor<V1Deployment> = { apiVersion: "apps/v1", kind: "Deployment", plural: "deployments", namespaced: true };
const StatefulSet: ResourceDescriptor<V1StatefulSet> = { apiVersion: "apps/v1", kind: "StatefulSet", plural: "statefulsets", namespaced: true };
const PodDisruptionBudget: ResourceDescriptor<V1PodDisruptionBudget> = { apiVersion: "policy/v1", kind: "PodDisruptionBudget", plural: "poddisruptionbudgets", namespaced: true };
const Pod: ResourceDescriptor<V1Pod> = { apiVersion: "v1", kind: "Pod", plural: "pods", namespaced: true };
const ServiceAccount: ResourceDescriptor<V1ServiceAccount> = { apiVersion: "v1", kind: "ServiceAccount", plural: "serviceaccounts", namespaced: true };
const Role: ResourceDescriptor<V1Role> = { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", plural: "roles", namespaced: true };
const RoleBinding: ResourceDescriptor<V1RoleBinding> = { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", plural: "rolebindings", namespaced: true };

/** Built-in kinds the controllers read or write. */
export const Core = { Namespace, Service, Secret, ConfigMap, Deployment, StatefulSet, PodDisruptionBudget, Pod, ServiceAccount, Role, RoleBinding };

/** The finalizer each controller puts on the objects it has made provider-side changes for. */
export const finalizerFor = (provider: string): string => `${provider}.ktube.dev/cleanup`;
