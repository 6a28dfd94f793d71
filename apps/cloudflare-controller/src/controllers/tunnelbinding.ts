// TunnelBinding (on a cloudflare tunnel): accepted or not and why, DNS records and
// Access applications for its hostnames, and the public URL of each route. The
// tunnel's ingress configuration is the Tunnel controller's job.
import {
  Core,
  TunnelBindingResource,
  TunnelProviderResource,
  TunnelResource,
  type ConditionInput,
  type Route,
  type RouteStatus,
  type TunnelBinding,
  type TunnelBindingStatus,
  type TunnelProvider,
} from "@ktube/api";
import { finalize, hasFinalizer, removeFinalizer } from "@ktube/finalizers";
import { bindingKey, evaluateTunnel, refersTo, unboundVerdict, type BindingVerdict } from "@ktube/routing";
import { generationChanged, type KubeObject, type Request } from "@ktube/runtime";
import { allBindings, applyConditions, CLOUDFLARE, FINALIZER, getProvider, PROVIDER_TYPE, providerSelector, servedProvider, tunnelOf, tunnelView, type Context } from "../context.ts";
import { isProblem, type AccountSession } from "../provider/accounts.ts";
import { deleteAccessApp, ensureAccessApp, ownedAccessDomains } from "../provider/access.ts";
import { deleteDnsRecord, ensureDnsRecord, ownedHostnames, type Owner } from "../provider/dns.ts";
import { routeUrl } from "../provider/ingress.ts";
import { clusterQuickTunnelEndpoint } from "../manifests/quick-tunnel.ts";
import { QUICK_SELECTOR, reconcileQuickBinding, type QuickTunnelEndpoint } from "./quick-tunnels.ts";

type BindingObject = TunnelBinding & KubeObject & { status?: TunnelBindingStatus };

const RETRY_NOT_OWNED_MS = 30_000;

export function setupTunnelBindingController(ctx: Context, quickTunnelEndpoint: QuickTunnelEndpoint = clusterQuickTunnelEndpoint): void {
  const { manager } = ctx;
  const bindingsOf = (match: (b: TunnelBinding) => boolean) => allBindings(ctx).filter(match).map(bindingKey);

  manager
    .controller("tunnelbinding")
    .for(TunnelBindingResource, { predicates: [generationChanged] })
    .owns(Core.Deployment, QUICK_SELECTOR)
    // By reference, not through the cache: a deleted Tunnel must still wake its bindings.
    .watches(TunnelResource, (t) => bindingsOf((b) => refersTo(b, t as never)))
    .watches(Core.Service, (svc) => bindingsOf((b) => b.metadata.namespace === svc.metadata?.namespace && b.spec.routes.some((r) => r.service?.name === svc.metadata?.name)))
    .watches(Core.Namespace, (ns) => bindingsOf((b) => b.metadata.namespace === ns.metadata?.name))
    .watches(
      TunnelProviderResource,
      (p) => bindingsOf((b) => tunnelOf(ctx, b)?.spec.providerRef.name === p.metadata?.name),
      providerSelector(ctx),
    )
    .withOptions({ maxConcurrentReconciles: ctx.options.maxConcurrentReconciles })
    .build(async ({ namespace, name }: Request) => {
      const binding = manager.cache.get<BindingObject>(TunnelBindingResource, namespace, name);
      if (!binding) return;
      const tunnel = tunnelOf(ctx, binding);
      const provider = tunnel ? servedProvider(ctx, tunnel) : undefined;
      const owner: Owner = { ownerId: ctx.options.ownerId, binding: bindingKey(binding) };

      if (!tunnel || !provider) {
        // Ours before (the finalizer says so) but not now: the tunnel is gone or the
        // binding moved to another provider's tunnel. Release what it holds first.
        if (hasFinalizer(binding, FINALIZER)) {
          await releaseEverywhere(ctx, binding, owner);
          await removeFinalizer(manager.client, TunnelBindingResource, binding, FINALIZER);
          if (binding.metadata.deletionTimestamp) return;
        }
        const providerMissing = tunnel && !getProvider(ctx, tunnel.spec.providerRef.name) && tunnel.spec.cloudflare && !ctx.options.providerSelector;
        if (tunnel && !providerMissing) return; // another provider's tunnel: not ours to touch
        // A missing tunnel is every controller's to report; they all write the same condition.
        const ref = binding.spec.tunnelRef;
        const verdict = tunnel
          ? unboundVerdict(binding, "ProviderNotFound", `TunnelProvider ${tunnel.spec.providerRef.name} of Tunnel ${tunnel.metadata.namespace}/${tunnel.metadata.name} not found`)
          : unboundVerdict(binding, "TunnelNotFound", `Tunnel ${ref.namespace ?? binding.metadata.namespace}/${ref.name} not found`);
        if (!binding.metadata.deletionTimestamp) await setStatus(ctx, binding, verdict, new Map(), undefined);
        return;
      }

      if (provider.spec.cloudflare?.quickTunnels) {
        if (hasFinalizer(binding, FINALIZER)) {
          await releaseEverywhere(ctx, binding, owner); // it was on a named tunnel before
          await removeFinalizer(manager.client, TunnelBindingResource, binding, FINALIZER);
        }
        if (binding.metadata.deletionTimestamp) return; // its connectors are owned: the garbage collector takes them
        const quick = await reconcileQuickBinding(ctx, binding, tunnel, quickTunnelEndpoint);
        await setStatus(ctx, binding, quick.verdict, quick.progress, "quick");
        return { requeueAfterMs: quick.requeueAfterMs };
      }

      const session = ctx.accounts.session(provider);
      if (isProblem(session)) {
        const verdict = unboundVerdict(binding, "ProviderNotReady", `TunnelProvider ${provider.metadata.name}: ${session.message}`);
        await setStatus(ctx, binding, verdict, new Map(), undefined);
        return;
      }
      const verdict = evaluateTunnel(tunnelView(ctx, tunnel), CLOUDFLARE).get(bindingKey(binding));
      return finalize(manager.client, TunnelBindingResource, binding, FINALIZER, {
        apply: (current) => reconcileBinding(ctx, current as BindingObject, verdict, session, owner, tunnel.status?.tunnelId, tunnelReady(tunnel)),
        cleanup: (current) => cleanupBinding(current as BindingObject, session, owner),
      });
    });
}

/** Cleans up what `binding` holds in every account this controller serves. */
async function releaseEverywhere(ctx: Context, binding: BindingObject, owner: Owner): Promise<void> {
  const providers = ctx.manager.cache.list<TunnelProvider & KubeObject>(TunnelProviderResource, {}, providerSelector(ctx));
  for (const provider of providers.filter((p) => p.spec.type === PROVIDER_TYPE && !p.spec.cloudflare?.quickTunnels)) {
    const session = ctx.accounts.session(provider);
    if (!isProblem(session)) await cleanupBinding(binding, session, owner);
  }
}

const tunnelReady = (tunnel: { status?: { conditions?: Array<{ type: string; status: string }> } }): boolean =>
  tunnel.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

interface RouteProgress {
  ready: boolean;
  /** Why it is not ready, as a condition reason (ZoneNotFound, DNSRecordNotOwned...). */
  reason?: string;
  /** The URL when it is not derived from the hostname (quick tunnels). */
  url?: string;
  message?: string;
}

async function reconcileBinding(
  ctx: Context,
  binding: BindingObject,
  verdict: BindingVerdict | undefined,
  session: AccountSession,
  owner: Owner,
  tunnelId: string | undefined,
  tunnelIsReady: boolean,
): Promise<{ requeueAfterMs?: number } | undefined> {
  const judged = verdict ?? unboundVerdict(binding, "Pending", "waiting for the tunnel to be evaluated");
  const accepted = judged.accepted.status === "True";
  const progress = new Map<string, RouteProgress>();
  let retryMs: number | undefined;

  // Hostnames this binding should hold now; the rest of what it holds goes.
  const served = accepted ? judged.routes.map((r) => r.resolved?.route).filter((r): r is Route => Boolean(r?.hostname)) : [];
  const wanted = new Set(served.map((r) => r.hostname!));
  const previously = (binding.status?.routes ?? []).map((r) => (r.url ? hostOf(r.url) : undefined)).filter((h): h is string => Boolean(h));
  for (const hostname of new Set(previously.filter((h) => !wanted.has(h)))) await removeHostname(session, hostname, owner);
  await removeStaleAccess(session, owner, binding, served.filter((r) => r.access));

  if (accepted && tunnelId) {
    const dnsByHost = new Map<string, RouteProgress>();
    for (const route of served) {
      const hostname = route.hostname!;
      let dns = dnsByHost.get(hostname);
      if (!dns) {
        dns = await ensureHostname(session, hostname, tunnelId, owner);
        dnsByHost.set(hostname, dns);
      }
      if (!dns.ready) {
        progress.set(route.name, dns);
        retryMs = RETRY_NOT_OWNED_MS;
        continue;
      }
      if (route.access) {
        const access = await ensureAccessApp(session.api, session.access, owner.ownerId, {
          domain: accessDomain(route),
          route: `${owner.binding}/${route.name}`,
          emails: route.access.emails ?? [],
          emailDomains: route.access.emailDomains ?? [],
        });
        if (access.kind === "notOwned") {
          progress.set(route.name, { ready: false, reason: "AccessApplicationNotOwned", message: access.message });
          retryMs = RETRY_NOT_OWNED_MS;
          continue;
        }
      }
      progress.set(route.name, { ready: tunnelIsReady, ...(tunnelIsReady ? {} : { reason: "TunnelNotReady", message: "waiting for the tunnel's connectors" }) });
    }
  }
  await setStatus(ctx, binding, judged, progress, tunnelId);
  return retryMs ? { requeueAfterMs: retryMs } : undefined;
}

/** The hostname's zone and DNS records; `ready: false` with the reason when they cannot be ours. */
async function ensureHostname(session: AccountSession, hostname: string, tunnelId: string, owner: Owner): Promise<RouteProgress> {
  const zone = await session.zones.zoneFor(session.api, hostname);
  if (!zone) return { ready: false, reason: "ZoneNotFound", message: `no zone of account ${session.accountId} contains ${hostname}` };
  const dns = await ensureDnsRecord(session, zone, hostname, tunnelId, owner);
  return dns.kind === "notOwned" ? { ready: false, reason: "DNSRecordNotOwned", message: dns.message } : { ready: true };
}

async function cleanupBinding(binding: BindingObject, session: AccountSession, owner: Owner): Promise<void> {
  // Everything this binding holds, found from Cloudflare (not only from status, which a
  // crash may have left behind), so nothing is leaked.
  for (const zone of await session.zones.zones(session.api)) {
    for (const hostname of await ownedHostnames(session, zone, owner)) await deleteDnsRecord(session, zone, hostname, owner);
  }
  await removeStaleAccess(session, owner, binding, []);
}

async function removeHostname(session: AccountSession, hostname: string, owner: Owner): Promise<void> {
  const zone = await session.zones.zoneFor(session.api, hostname);
  if (zone) await deleteDnsRecord(session, zone, hostname, owner);
}

async function removeStaleAccess(session: AccountSession, owner: Owner, binding: BindingObject, keep: Route[]): Promise<void> {
  const wanted = new Set(keep.map(accessDomain));
  const held = await ownedAccessDomains(session.api, session.access, owner.ownerId, bindingKey(binding));
  for (const domain of held.filter((d) => !wanted.has(d))) await deleteAccessApp(session.api, session.access, owner.ownerId, domain);
}

const accessDomain = (route: Route): string => `${route.hostname}${route.path && route.path !== "/" ? route.path : ""}`;

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).hostname || undefined;
  } catch {
    return undefined;
  }
}

async function setStatus(ctx: Context, binding: BindingObject, verdict: BindingVerdict, progress: Map<string, RouteProgress>, tunnelId: string | undefined): Promise<void> {
  const accepted = verdict.accepted.status === "True";
  const routes: RouteStatus[] = binding.spec.routes.map((route) => {
    const resolved = verdict.routes.find((r) => r.name === route.name);
    const p = progress.get(route.name);
    const url = accepted && resolved?.resolved && p ? (p.url ?? routeUrl(route)) : undefined;
    const message = !accepted ? verdict.accepted.message : (resolved?.problem?.message ?? p?.message ?? (tunnelId ? undefined : "waiting for the Cloudflare tunnel to exist"));
    return { name: route.name, ready: Boolean(p?.ready && resolved?.resolved), ...(url ? { url } : {}), ...(message ? { message } : {}) };
  });
  // A hostname in none of the account's zones is a reference that does not resolve.
  const noZone = [...progress.values()].filter((p) => p.reason === "ZoneNotFound");
  const resolvedRefs =
    verdict.resolvedRefs.status !== "False" && noZone.length > 0
      ? { status: "False" as const, reason: "ZoneNotFound", message: noZone.map((p) => p.message).join("; ") }
      : verdict.resolvedRefs;
  const notReady = binding.spec.routes.find((r) => !routes.find((s) => s.name === r.name)?.ready);
  const ready: ConditionInput = !notReady
    ? { type: "Ready", status: "True", reason: "RoutesReady", message: `${routes.length} routes served` }
    : {
        type: "Ready",
        status: "False",
        reason: !accepted ? verdict.accepted.reason : resolvedRefs.status === "False" ? resolvedRefs.reason : (progress.get(notReady.name)?.reason ?? "RoutesNotReady"),
        message: routes.find((r) => r.name === notReady.name)?.message ?? "routes are not served yet",
      };
  const generation = binding.metadata.generation;
  const conditions = await applyConditions(
    ctx,
    binding,
    binding.status?.conditions,
    [
      { type: "Accepted", ...verdict.accepted },
      { type: "ResolvedRefs", ...resolvedRefs },
      ready,
    ],
    generation,
  );
  await ctx.manager.status.update(TunnelBindingResource, binding, { observedGeneration: generation, conditions, routes });
}
