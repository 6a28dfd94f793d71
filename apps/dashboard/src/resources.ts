// The kinds the dashboard shows, and where they live in the REST API.
import { TunnelBindingResource, TunnelProviderResource, TunnelResource, type ResourceDescriptor, type Tunnel, type TunnelBinding, type TunnelProvider } from "@ktube/api";

export type KindName = "providers" | "tunnels" | "bindings";

export interface DashboardKind<T> {
  name: KindName;
  title: string;
  resource: ResourceDescriptor<T>;
}

export const Providers: DashboardKind<TunnelProvider> = { name: "providers", title: "Providers", resource: TunnelProviderResource };
export const Tunnels: DashboardKind<Tunnel> = { name: "tunnels", title: "Tunnels", resource: TunnelResource };
export const Bindings: DashboardKind<TunnelBinding> = { name: "bindings", title: "Bindings", resource: TunnelBindingResource };

export const KINDS = { providers: Providers, tunnels: Tunnels, bindings: Bindings } as const;

/** events.k8s.io/v1: KTube's recorder writes these (core/v1 events need separate RBAC). */
export const EventsResource: ResourceDescriptor<KubeEvent> = { apiVersion: "events.k8s.io/v1", kind: "Event", plural: "events", namespaced: true };

export interface KubeEvent {
  metadata?: { name?: string; namespace?: string; uid?: string; creationTimestamp?: string };
  type?: string;
  reason?: string;
  note?: string;
  eventTime?: string | null;
  deprecatedLastTimestamp?: string | null;
  deprecatedCount?: number;
  series?: { count?: number; lastObservedTime?: string };
  regarding?: { uid?: string; name?: string; kind?: string };
}

export function resourcePath(type: ResourceDescriptor<unknown>, namespace?: string, name?: string): string {
  const base = type.apiVersion.includes("/") ? `/apis/${type.apiVersion}` : `/api/${type.apiVersion}`;
  const ns = type.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  return `${base}${ns}/${type.plural}${name ? `/${encodeURIComponent(name)}` : ""}`;
}
