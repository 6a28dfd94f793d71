// The binding rules' verdicts for each tunnel, computed once per change instead of
// once per binding reconcile (which made waking a tunnel's N bindings O(N²)). An entry
// is dropped, synchronously with the cache update, whenever something it was judged on
// changes: a binding naming the tunnel, the tunnel, a Service a binding targets, a
// namespace's labels (for selector tunnels), the tunnel's provider.
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import { bindingKey, evaluateTunnel, type BindingVerdict, type ProviderCapabilities, type TunnelView } from "@ktube/routing";
import { deepEqual, generationChanged, labelsChanged, type Cache, type KubeObject, type UpdatePredicate } from "@ktube/runtime";
import { Index, objectKeyOf, tunnelKeyOf } from "./indexes.ts";
import type { BindingObject, TunnelObject } from "./plugin.ts";

export class TunnelVerdicts {
  private readonly cache: Cache;
  private readonly memo = new Map<string, Map<string, BindingVerdict>>();
  /** Judgements made, for tests and benchmarks. */
  evaluations = 0;

  constructor(cache: Cache) {
    this.cache = cache;
    const drop = (...keys: string[]): void => keys.forEach((k) => this.memo.delete(k));
    const onBinding = (b: KubeObject): void => drop(tunnelKeyOf(b as BindingObject));
    // Status writes (ours, every reconcile) change nothing a verdict reads: filtering
    // them out is what keeps a wave of binding reconciles from re-judging the tunnel each time.
    const onlyWhen = (predicate: UpdatePredicate, handle: (obj: KubeObject) => void) => (o: KubeObject, n: KubeObject) => {
      if (predicate(o, n)) (handle(o), handle(n));
    };
    cache.informer(TunnelBindingResource).addHandler({
      add: onBinding,
      delete: onBinding,
      update: (o, n) => (generationChanged(o, n) ? (onBinding(o), onBinding(n)) : this.refresh(n as BindingObject)),
    });
    const onTunnel = (t: KubeObject): void => drop(objectKeyOf(t as TunnelObject));
    cache.informer(TunnelResource).addHandler({ add: onTunnel, delete: onTunnel, update: onlyWhen(generationChanged, onTunnel) });
    const onService = (svc: KubeObject): void =>
      drop(...cache.byIndex(TunnelBindingResource, Index.bindingsByService, `${svc.metadata?.namespace}/${svc.metadata?.name}`).map(tunnelKeyOf));
    const portsChanged: UpdatePredicate = (o, n) => !deepEqual((o as { spec?: { ports?: unknown } }).spec?.ports, (n as { spec?: { ports?: unknown } }).spec?.ports);
    cache.informer(Core.Service).addHandler({ add: onService, delete: onService, update: onlyWhen(portsChanged, onService) });
    const onNamespace = (ns: KubeObject): void => {
      drop(...cache.byIndex(TunnelResource, Index.tunnelsByNamespaceRule, "selector").map(objectKeyOf));
      drop(...cache.list(TunnelBindingResource, { namespace: ns.metadata!.name! }).map(tunnelKeyOf));
    };
    cache.informer(Core.Namespace).addHandler({ add: onNamespace, delete: onNamespace, update: onlyWhen(labelsChanged, onNamespace) });
    const onProvider = (p: KubeObject): void => drop(...cache.byIndex(TunnelResource, Index.tunnelsByProvider, p.metadata!.name!).map(objectKeyOf));
    cache.informer(TunnelProviderResource).addHandler({ add: onProvider, delete: onProvider, update: onlyWhen(generationChanged, onProvider) });
  }

  /** The verdicts of every binding naming `tunnel`, by binding key. */
  of(tunnel: TunnelObject, capabilities: ProviderCapabilities): Map<string, BindingVerdict> {
    const key = objectKeyOf(tunnel);
    let verdicts = this.memo.get(key);
    if (!verdicts) {
      this.evaluations++;
      verdicts = evaluateTunnel(this.view(tunnel), capabilities);
      this.memo.set(key, verdicts);
    }
    return verdicts;
  }

  /**
   * A write that leaves the generation alone (status, finalizers) changes nothing a
   * verdict judged, but the verdict would go on holding the object as it was judged: an
   * older second copy of every binding beside the cache's. The cache's object, of the
   * same generation and so the same spec, takes its place.
   */
  private refresh(binding: BindingObject): void {
    const verdicts = this.memo.get(tunnelKeyOf(binding));
    const key = bindingKey(binding);
    const verdict = verdicts?.get(key);
    if (verdict) verdicts!.set(key, { ...verdict, binding });
  }

  private view(tunnel: TunnelObject): TunnelView {
    const { cache } = this;
    return {
      tunnel,
      bindings: cache.byIndex(TunnelBindingResource, Index.bindingsByTunnel, objectKeyOf(tunnel)),
      services: (namespace, name) => cache.get(Core.Service, namespace, name),
      namespaces: (name) => cache.get(Core.Namespace, undefined, name),
    };
  }
}
