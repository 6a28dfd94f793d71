// TunnelBinding: accepted or not and why (the shared binding rules), what the tunnel
// applied for it, the plugin's per-binding provider work, and releasing what it holds
// at a provider that no longer serves it. One finalizer per provider it holds
// something at, so sharded instances and moves between providers never strip or skip
// each other's cleanup.
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource, type ConditionInput, type RouteStatus, type TunnelBindingStatus } from "@ktube/api";
import { addFinalizer, hasFinalizer, removeFinalizer } from "@ktube/finalizers";
import { bindingKey, unboundVerdict, type BindingVerdict } from "@ktube/routing";
import { changed, generationChanged, labelsChanged, type ReconcileContext, type Request, type Result } from "@ktube/runtime";
import { Index, objectKeyOf } from "./indexes.ts";
import { isAbandoned, tunnelBlock, type ProviderKit } from "./kit.ts";
import type { BindingObject, ProviderObject, RouteOutcome, RouteOutcomes, TunnelObject } from "./plugin.ts";
import { PROVIDER_LABEL } from "./owned-objects.ts";
import { verdictFingerprint, type AppliedBinding } from "./published-routes.ts";
import { providerChanged } from "./tunnel-controller.ts";
import { writeStatus } from "./status.ts";

/** What a binding's reconcile depends on besides its spec: deletion, the abandon annotation, finalizers. */
const bindingChanged = changed((o) => [o.metadata?.generation, o.metadata?.deletionTimestamp, o.metadata?.annotations, o.metadata?.finalizers]);
const portsChanged = changed((o) => (o as { spec?: { ports?: unknown } }).spec?.ports);

export function registerBindingController<S extends object>(kit: ProviderKit<S>): void {
  const { manager, plugin, options } = kit;
  const { cache } = manager;
  const keys = (bindings: BindingObject[]): string[] => bindings.map(objectKeyOf);
  const bindingsOfTunnel = (tunnelKey: string): BindingObject[] => cache.byIndex(TunnelBindingResource, Index.bindingsByTunnel, tunnelKey);
  const bindingsOfProvider = (name: string): string[] => kit.tunnelsOfProvider(name).flatMap((t) => keys(bindingsOfTunnel(objectKeyOf(t))));

  let builder = manager.controller("tunnelbinding").for(TunnelBindingResource, { predicates: [bindingChanged] });
  for (const type of plugin.binding?.owns ?? []) builder = builder.owns(type, kit.ownership.selector);
  kit.controllers.binding = builder
    // Created, deleted, or its spec changed (allowedBindings): the verdict may change.
    // Readiness reaches bindings through what the tunnel publishes, not its status.
    .watches(TunnelResource, (t) => keys(bindingsOfTunnel(`${t.metadata?.namespace}/${t.metadata?.name}`)), { predicates: [generationChanged] })
    .watches(Core.Service, (svc) => keys(cache.byIndex(TunnelBindingResource, Index.bindingsByService, `${svc.metadata?.namespace}/${svc.metadata?.name}`)), {
      predicates: [portsChanged],
    })
    .watches(Core.Namespace, (ns) => keys(cache.list(TunnelBindingResource, { namespace: ns.metadata!.name! })), { predicates: [labelsChanged] })
    .watches(TunnelProviderResource, (p) => bindingsOfProvider(p.metadata!.name!), { predicates: [providerChanged] })
    .watches(Core.Secret, (secret) => kit.providersOfSecret(secret.metadata!.name!).flatMap((p) => bindingsOfProvider(p.metadata.name!)), {
      namespace: options.namespace,
    })
    .withOptions({ maxConcurrentReconciles: options.maxConcurrentReconciles ?? 4 })
    .build((request, context) => reconcileBinding(kit, request, context));
}

async function reconcileBinding<S extends object>(kit: ProviderKit<S>, { namespace, name }: Request, context: ReconcileContext): Promise<Result | void> {
  const { manager, plugin, scope } = kit;
  const binding = manager.cache.get(TunnelBindingResource, namespace, name);
  if (!binding) return kit.forgetBinding(`${namespace}/${name}`);
  const deleting = Boolean(binding.metadata.deletionTimestamp);
  const tunnel = kit.tunnelOf(binding);
  const provider = tunnel ? kit.provider(tunnel.spec.providerRef.name) : undefined;
  const served = scope.serves(provider) ? provider : undefined;
  const verdict = tunnel && served && !deleting ? kit.verdicts.of(tunnel, kit.capabilities(served)).get(bindingKey(binding)) : undefined;
  const accepted = verdict?.accepted.status === "True";

  let latest: BindingObject = binding;
  return kit.reportingErrors(TunnelBindingResource, () => latest, async () => {
    // 0. Earlier releases put one class-wide finalizer on bindings: it stands for the
    // provider serving the binding now. Swapped for that provider's own while served
    // (no release, no blip), otherwise released like any held provider. A binding
    // another instance serves is left to that instance.
    const held = kit.heldProviders(binding);
    if (hasFinalizer(binding, kit.tunnelFinalizer) && !(provider && !served)) {
      if (served && accepted && plugin.binding) {
        latest = await addFinalizer(manager.client, TunnelBindingResource, latest, kit.bindingFinalizer(served.metadata.name!));
        latest = (await removeFinalizer(manager.client, TunnelBindingResource, latest, kit.tunnelFinalizer)) ?? latest;
      } else {
        held.push({ finalizer: kit.tunnelFinalizer, ...(served ? { provider: served } : {}) });
      }
    }

    // 1. Release what the binding holds at providers that should no longer serve it.
    const blockedBy: string[] = [];
    for (const holding of held) {
      if (holding.provider && holding.provider.metadata.name === served?.metadata.name && accepted) continue;
      if (holding.provider && !scope.serves(holding.provider)) continue; // another instance's to release
      const problem = await release(kit, latest, holding, context);
      if (problem) blockedBy.push(problem);
      else latest = (await removeFinalizer(manager.client, TunnelBindingResource, latest, holding.finalizer)) ?? latest;
    }
    await pruneStaleObjects(kit, binding, accepted ? served?.metadata.name : undefined);
    if (blockedBy.length > 0) {
      await writeStatus(manager, TunnelBindingResource, latest, [
        {
          type: "Ready",
          status: "False",
          reason: "CleanupBlocked",
          message: `${blockedBy.join("; ")} (to let go of what it holds there on purpose, annotate the TunnelBinding ktube.dev/abandon-on-delete=true)`,
        },
      ]);
      return;
    }
    if (deleting) return;

    // 2. Not ours to judge: a tunnel of another class or instance.
    if (tunnel && provider && !served) return;
    if (!tunnel || !served) {
      // A missing Tunnel or TunnelProvider is every controller's to report; they write the same thing.
      if (tunnel && tunnelBlock(tunnel) !== undefined && tunnelBlock(tunnel) !== plugin.type) return;
      const ref = binding.spec.tunnelRef;
      const missing = tunnel
        ? unboundVerdict(binding, "ProviderNotFound", `TunnelProvider ${tunnel.spec.providerRef.name} of Tunnel ${objectKeyOf(tunnel)} not found`)
        : unboundVerdict(binding, "TunnelNotFound", `Tunnel ${ref.namespace ?? binding.metadata.namespace}/${ref.name} not found`);
      await writeBindingStatus(kit, latest, missing, new Map());
      return;
    }

    // 3. Served here: provider-side work for the binding, then what the tunnel applied.
    const judged = verdict ?? unboundVerdict(binding, "Pending", "waiting for the tunnel's bindings to be judged");
    let work: RouteOutcomes | undefined;
    let requeueAfterMs: number | undefined;
    if (accepted && plugin.binding) {
      const { session, problem } = kit.sessions.of(served);
      if (problem) {
        // The details (Secret names) stay on the TunnelProvider, which the platform team reads.
        const message = `TunnelProvider ${served.metadata.name} is not ready (see its status)`;
        const outcomes: RouteOutcomes = new Map(judged.routes.filter((r) => r.resolved).map((r) => [r.name, { ready: false, reason: "ProviderNotReady", message }]));
        await writeBindingStatus(kit, latest, judged, outcomes);
        return;
      }
      if (plugin.binding.holdsProviderState?.(served) ?? true) {
        latest = await addFinalizer(manager.client, TunnelBindingResource, latest, kit.bindingFinalizer(served.metadata.name!));
      }
      const result = await plugin.binding.reconcile({
        binding: latest,
        tunnel,
        provider: served,
        session,
        verdict: judged,
        objects: kit.ownership.for(latest, { [PROVIDER_LABEL]: served.metadata.name! }),
        signal: context.signal,
        logger: context.logger,
      });
      work = result.routes;
      requeueAfterMs = result.requeueAfterMs;
    }
    const applied = kit.published.get(objectKeyOf(tunnel), bindingKey(binding));
    const current = applied?.fingerprint === verdictFingerprint(judged) ? applied : undefined;
    const outcomes = routeOutcomes(kit, judged, tunnel, current, work);
    const quietMs = kit.pendingQuiet(latest, judged, outcomes);
    if (quietMs > 0) return { requeueAfterMs: Math.min(quietMs, requeueAfterMs ?? quietMs) };
    await writeBindingStatus(kit, latest, judged, outcomes);
    return requeueAfterMs ? { requeueAfterMs } : undefined;
  });
}

/** Releases one held provider; returns why it could not, or undefined once released. */
async function release<S extends object>(kit: ProviderKit<S>, binding: BindingObject, held: { finalizer: string; provider?: ProviderObject }, context: ReconcileContext): Promise<string | undefined> {
  if (isAbandoned(binding) && binding.metadata.deletionTimestamp) return undefined;
  const { provider } = held;
  if (!provider) return isAbandoned(binding) ? undefined : `it holds resources at a TunnelProvider that no longer exists (finalizer ${held.finalizer})`;
  const { session, problem } = kit.sessions.of(provider);
  if (problem) return isAbandoned(binding) ? undefined : `it holds resources at TunnelProvider ${provider.metadata.name}, which is not ready`;
  await kit.plugin.binding?.release({
    binding,
    provider,
    session,
    objects: kit.ownership.for(binding, { [PROVIDER_LABEL]: provider.metadata.name! }),
    signal: context.signal,
    logger: context.logger,
  });
  return undefined;
}

/**
 * Deletes Kubernetes objects the binding owns that were made for a provider that no
 * longer serves it (it moved, lost its claim, or its tunnel or provider went), e.g. a
 * quick-tunnel connector that would otherwise keep a Service public. Objects made for
 * a provider another instance serves are that instance's to remove.
 */
async function pruneStaleObjects<S extends object>(kit: ProviderKit<S>, binding: BindingObject, current: string | undefined): Promise<void> {
  const objects = kit.ownership.for(binding);
  for (const type of kit.plugin.binding?.owns ?? []) {
    for (const obj of objects.list(type)) {
      const madeFor = obj.metadata?.labels?.[PROVIDER_LABEL];
      if (madeFor && madeFor === current) continue;
      const provider = madeFor ? kit.provider(madeFor) : undefined;
      if (provider && !kit.scope.serves(provider)) continue;
      await objects.delete(type, obj.metadata!.name!);
    }
  }
}

/** Each route's outcome: the tunnel's part (applied, connectors) and the binding's own (DNS...). */
function routeOutcomes<S extends object>(kit: ProviderKit<S>, verdict: BindingVerdict, tunnel: TunnelObject, applied: AppliedBinding | undefined, work: RouteOutcomes | undefined): RouteOutcomes {
  const outcomes: RouteOutcomes = new Map();
  if (verdict.accepted.status !== "True") return outcomes;
  const tunnelReady = tunnel.status?.conditions?.find((c) => c.type === "Ready");
  const waiting: RouteOutcome =
    tunnelReady?.status === "False" && tunnelReady.observedGeneration === tunnel.metadata.generation && !applied
      ? { ready: false, reason: "TunnelNotReady", message: `Tunnel ${objectKeyOf(tunnel)} is not ready (${tunnelReady.reason})` }
      : { ready: false, reason: "Pending", message: `waiting for Tunnel ${objectKeyOf(tunnel)} to apply this binding` };
  for (const route of verdict.routes) {
    if (!route.resolved) continue;
    const fromTunnel = applied?.routes.get(route.name) ?? waiting;
    const fromBinding = kit.plugin.binding ? (work?.get(route.name) ?? { ready: false, reason: "Pending", message: "not handled yet" }) : undefined;
    const notReady = [fromBinding, fromTunnel].find((o) => o && !o.ready);
    const url = fromBinding?.url ?? fromTunnel.url;
    const held = fromBinding?.reservation ?? fromTunnel.reservation;
    const reservation = held ? { reservation: held } : {};
    outcomes.set(route.name, notReady ? { ...notReady, ...reservation } : { ready: true, ...(url ? { url } : {}), ...reservation });
  }
  return outcomes;
}

async function writeBindingStatus<S extends object>(kit: ProviderKit<S>, binding: BindingObject, verdict: BindingVerdict, outcomes: RouteOutcomes): Promise<void> {
  const accepted = verdict.accepted.status === "True";
  const routes: RouteStatus[] = binding.spec.routes.map((route) => {
    const judged = verdict.routes.find((r) => r.name === route.name);
    const outcome = outcomes.get(route.name);
    const message = !accepted ? verdict.accepted.message : (judged?.problem?.message ?? outcome?.message);
    // A URL only for a route that is served: status never advertises what does not work.
    return {
      name: route.name,
      ready: Boolean(outcome?.ready),
      ...(outcome?.ready && outcome.url ? { url: outcome.url } : {}),
      ...(outcome?.reservation ? { reservation: outcome.reservation } : {}),
      ...(message ? { message } : {}),
    };
  });
  const unresolved = [...outcomes.values()].filter((o) => !o.ready && o.unresolvedRef);
  const resolvedRefs: ConditionInput =
    verdict.resolvedRefs.status !== "False" && unresolved.length > 0
      ? { type: "ResolvedRefs", status: "False", reason: unresolved[0]!.reason ?? "RefNotResolved", message: unresolved.map((o) => o.message).join("; ") }
      : { type: "ResolvedRefs", ...verdict.resolvedRefs };
  const notReady = routes.find((r) => !r.ready);
  const ready: ConditionInput = !notReady
    ? { type: "Ready", status: "True", reason: "RoutesReady", message: routes.length === 1 ? "1 route served" : `${routes.length} routes served` }
    : {
        type: "Ready",
        status: "False",
        reason: !accepted ? verdict.accepted.reason : resolvedRefs.status === "False" ? resolvedRefs.reason : (outcomes.get(notReady.name)?.reason ?? "RoutesNotReady"),
        message: notReady.message ?? "routes are not served yet",
      };
  const status: Partial<TunnelBindingStatus> = { routes };
  await writeStatus(kit.manager, TunnelBindingResource, binding, [{ type: "Accepted", ...verdict.accepted }, resolvedRefs, ready], status);
}
