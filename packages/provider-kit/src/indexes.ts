// Cache indexes the kit's lookups go through, so the work per event is proportional to
// what it touches (a Service event finds its bindings, a binding its tunnel), never a
// scan of every object in the cluster.
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import type { Cache } from "@ktube/runtime";
import type { BindingObject, ProviderObject, TunnelObject } from "./plugin.ts";

export const Index = {
  /** TunnelBinding by the `namespace/name` of the Tunnel it names. */
  bindingsByTunnel: "tunnel",
  /** TunnelBinding by the `namespace/name` of each Service its routes target. */
  bindingsByService: "service",
  /** TunnelBinding by each hostname its routes claim. */
  bindingsByHostname: "hostname",
  /** Tunnel by the name of its TunnelProvider. */
  tunnelsByProvider: "provider",
  /** Tunnels admitting bindings by namespace selector, under the single value "selector". */
  tunnelsByNamespaceRule: "namespace-rule",
  /** TunnelProvider by the name of each credential Secret it reads. */
  providersBySecret: "secret",
} as const;

export const tunnelKeyOf = (binding: BindingObject): string =>
  `${binding.spec.tunnelRef.namespace ?? binding.metadata.namespace}/${binding.spec.tunnelRef.name}`;

export const objectKeyOf = (obj: { metadata: { namespace?: string; name?: string } }): string =>
  obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : `${obj.metadata.name}`;

export function registerIndexes(cache: Cache, secretNames: (provider: ProviderObject) => string[]): void {
  cache.informer(TunnelBindingResource);
  cache.informer(TunnelResource);
  cache.informer(TunnelProviderResource);
  cache.informer(Core.Service);
  cache.informer(Core.Namespace);
  cache.addIndex(TunnelBindingResource, Index.bindingsByTunnel, (b) => [tunnelKeyOf(b)]);
  cache.addIndex(TunnelBindingResource, Index.bindingsByService, (b) => [
    ...new Set(b.spec.routes.flatMap((r) => (r.service ? [`${b.metadata.namespace}/${r.service.name}`] : []))),
  ]);
  cache.addIndex(TunnelBindingResource, Index.bindingsByHostname, (b) => [...new Set(b.spec.routes.flatMap((r) => (r.hostname ? [r.hostname] : [])))]);
  cache.addIndex(TunnelResource, Index.tunnelsByProvider, (t: TunnelObject) => [t.spec.providerRef.name]);
  cache.addIndex(TunnelResource, Index.tunnelsByNamespaceRule, (t: TunnelObject) => (t.spec.allowedBindings?.namespaces?.from === "Selector" ? ["selector"] : []));
  cache.addIndex(TunnelProviderResource, Index.providersBySecret, secretNames);
}
