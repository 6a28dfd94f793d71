// Tunnel: the provider-side tunnel, its connector and its accepted routes, through the
// plugin; status, finalizer and cleanup semantics here, the same for every provider.
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource, type ConditionInput, type TunnelStatus } from "@ktube/api";
import { addFinalizer, hasFinalizer, removeFinalizer } from "@ktube/finalizers";
import { changed, deepEqual, generationChanged, labelsChanged, type ReconcileContext, type Request, type Result } from "@ktube/runtime";
import type { BindingVerdict } from "@ktube/routing";
import { Index, objectKeyOf, tunnelKeyOf } from "./indexes.ts";
import { GATHER_MAX_FACTOR, isAbandoned, tunnelBlock, type ProviderKit } from "./kit.ts";
import type { AcceptedBinding, ProviderObject, TunnelContext, TunnelObject } from "./plugin.ts";
import { verdictFingerprint, type AppliedBinding } from "./published-routes.ts";
import { writeStatus } from "./status.ts";

/** What a Tunnel's own reconcile depends on: spec, deletion, the abandon annotation, finalizers. */
const tunnelChanged = changed((o) => [o.metadata?.generation, o.metadata?.deletionTimestamp, o.metadata?.annotations, o.metadata?.finalizers]);
/** A provider matters to its tunnels through its spec, its labels (selector) and its deletion. */
export const providerChanged = changed((o) => [o.metadata?.generation, o.metadata?.labels, o.metadata?.deletionTimestamp]);
const portsChanged = changed((o) => (o as { spec?: { ports?: unknown } }).spec?.ports);

export function registerTunnelController<S extends object>(kit: ProviderKit<S>): void {
  const { manager, plugin, options } = kit;
  const { cache } = manager;
  const delayMs = options.configDelayMs ?? 1000;
  const maxDelayMs = delayMs * GATHER_MAX_FACTOR;
  const tunnelKeys = (tunnels: TunnelObject[]): string[] => tunnels.map(objectKeyOf);

  let builder = manager.controller("tunnel").for(TunnelResource, { predicates: [tunnelChanged] });
  // Connector objects: their status (available replicas) is part of the tunnel's.
  for (const type of plugin.tunnel.owns) builder = builder.owns(type, kit.ownership.selector);
  kit.controllers.tunnel = builder
    .watches(TunnelBindingResource, (b) => [tunnelKeyOf(b)], { delayMs, maxDelayMs, predicates: [generationChanged] })
    .watches(
      Core.Service,
      (svc) => cache.byIndex(TunnelBindingResource, Index.bindingsByService, `${svc.metadata?.namespace}/${svc.metadata?.name}`).map(tunnelKeyOf),
      { delayMs, maxDelayMs, predicates: [portsChanged] },
    )
    .watches(Core.Namespace, () => tunnelKeys(cache.byIndex(TunnelResource, Index.tunnelsByNamespaceRule, "selector")), { predicates: [labelsChanged] })
    .watches(TunnelProviderResource, (p) => tunnelKeys(kit.tunnelsOfProvider(p.metadata!.name!)), { predicates: [providerChanged] })
    .watches(
      Core.Secret,
      (secret) => kit.providersOfSecret(secret.metadata!.name!).flatMap((p) => tunnelKeys(kit.tunnelsOfProvider(p.metadata.name!))),
      { namespace: options.namespace },
    )
    .withOptions({ maxConcurrentReconciles: options.maxConcurrentReconciles ?? 4 })
    .build((request, context) => reconcileTunnel(kit, request, context));
}

async function reconcileTunnel<S extends object>(kit: ProviderKit<S>, { namespace, name, key }: Request, context: ReconcileContext): Promise<Result | void> {
  const { manager, plugin, scope } = kit;
  const tunnel = manager.cache.get(TunnelResource, namespace, name);
  if (!tunnel) return kit.forgetTunnel(key);
  const provider = kit.provider(tunnel.spec.providerRef.name);
  if (provider && !scope.serves(provider)) return; // another class's, or another instance's
  const ours = hasFinalizer(tunnel, kit.tunnelFinalizer);
  if (!provider) {
    // Ours only if it says so: our finalizer, or our provider block.
    if (!ours && tunnelBlock(tunnel) !== plugin.type) return;
    return blocked(kit, tunnel, "ProviderNotFound", `TunnelProvider ${tunnel.spec.providerRef.name} not found`);
  }
  kit.rememberTunnel(key, tunnel.metadata.uid!);
  const block = tunnelBlock(tunnel);
  if (block && block !== plugin.type && !tunnel.metadata.deletionTimestamp) {
    return unready(kit, tunnel, {
      type: "Ready",
      status: "False",
      reason: "InvalidSpec",
      message: `TunnelProvider ${provider.metadata.name} is of type ${plugin.type}, but the tunnel has a spec.${block} block`,
    });
  }
  const { session, problem } = kit.sessions.of(provider);
  if (problem) return blocked(kit, tunnel, "ProviderNotReady", `TunnelProvider ${provider.metadata.name} is not ready: ${problem.message}`);

  let latest: TunnelObject = tunnel;
  const ctx = (verdicts: ReadonlyMap<string, BindingVerdict>): TunnelContext<S> =>
    tunnelContext(latest, provider, session, verdicts, kit, context, (updated) => (latest = updated));
  return kit.reportingErrors(TunnelResource, () => latest, async () => {
    if (tunnel.metadata.deletionTimestamp) {
      if (!ours) return;
      if (!isAbandoned(tunnel)) await plugin.tunnel.cleanup(ctx(kit.verdicts.of(tunnel, kit.capabilities(provider))));
      await removeFinalizer(manager.client, TunnelResource, tunnel, kit.tunnelFinalizer);
      kit.wakeBindings(kit.published.drop(key));
      return;
    }
    // On before the first provider-side change, so nothing is made that deletion would not clean up.
    latest = await addFinalizer(manager.client, TunnelResource, tunnel, kit.tunnelFinalizer);
    // Judged once: what the plugin applies is exactly what is published (a binding that
    // changes meanwhile is judged again by the reconcile its change causes).
    const verdicts = kit.verdicts.of(latest, kit.capabilities(provider));
    const outcome = await plugin.tunnel.reconcile(ctx(verdicts));
    const boundRoutes = [...verdicts.values()].filter((v) => v.accepted.status === "True").reduce((n, v) => n + v.routes.filter((r) => r.resolved).length, 0);
    latest = await writeStatus(manager, TunnelResource, latest, outcome.conditions, { ...outcome.status, boundRoutes });
    // Publish what was applied for each binding; wake those whose outcome changed.
    const entries = new Map<string, AppliedBinding>();
    for (const [bindingKey, verdict] of verdicts) {
      entries.set(bindingKey, { fingerprint: verdictFingerprint(verdict), routes: outcome.routes.get(bindingKey) ?? new Map() });
    }
    kit.wakeBindings(kit.published.publish(key, entries));
    return outcome.requeueAfterMs ? { requeueAfterMs: outcome.requeueAfterMs } : undefined;
  });
}

function tunnelContext<S extends object>(
  tunnel: TunnelObject,
  provider: ProviderObject,
  session: S,
  verdicts: ReadonlyMap<string, BindingVerdict>,
  kit: ProviderKit<S>,
  context: ReconcileContext,
  onSaved: (updated: TunnelObject) => void,
): TunnelContext<S> {
  const accepted: AcceptedBinding[] = [...verdicts.values()]
    .filter((v) => v.accepted.status === "True")
    .map((v) => ({ binding: v.binding as AcceptedBinding["binding"], routes: v.routes.flatMap((r) => (r.resolved ? [r.resolved] : [])) }));
  let current = tunnel;
  return {
    tunnel,
    provider,
    session,
    verdicts,
    accepted,
    objects: kit.ownership.for(tunnel),
    async saveStatus(fields: Partial<TunnelStatus>) {
      const next = { ...current.status, ...fields };
      if (deepEqual(current.status ?? {}, next)) return current;
      current = (await kit.manager.status.update(TunnelResource, current, next)) ?? current;
      onSaved(current);
      return current;
    },
    signal: context.signal,
    logger: context.logger,
  };
}

/** A Tunnel that cannot be reconciled: reported, and when it is being deleted, kept until cleanup can run. */
async function blocked<S extends object>(kit: ProviderKit<S>, tunnel: TunnelObject, reason: string, message: string): Promise<void> {
  if (tunnel.metadata.deletionTimestamp) {
    if (!hasFinalizer(tunnel, kit.tunnelFinalizer)) return;
    if (isAbandoned(tunnel)) {
      await removeFinalizer(kit.manager.client, TunnelResource, tunnel, kit.tunnelFinalizer);
      return;
    }
    await writeStatus(kit.manager, TunnelResource, tunnel, [
      {
        type: "Ready",
        status: "False",
        reason: "CleanupBlocked",
        message: `${message}; the provider-side tunnel cannot be deleted until this is fixed (to let go of it on purpose, annotate the Tunnel ktube.dev/abandon-on-delete=true)`,
      },
    ]);
    return;
  }
  await unready(kit, tunnel, { type: "Ready", status: "False", reason, message });
}

async function unready<S extends object>(kit: ProviderKit<S>, tunnel: TunnelObject, ready: ConditionInput): Promise<void> {
  await writeStatus(kit.manager, TunnelResource, tunnel, [ready]);
  // Nothing is applied on a tunnel in this state: its bindings report it.
  const key = objectKeyOf(tunnel);
  const entries = new Map<string, AppliedBinding>();
  for (const b of kit.manager.cache.byIndex(TunnelBindingResource, Index.bindingsByTunnel, key)) {
    entries.set(`${b.metadata.namespace}/${b.metadata.name}`, { fingerprint: "", routes: new Map() });
  }
  kit.wakeBindings(kit.published.publish(key, entries));
}

