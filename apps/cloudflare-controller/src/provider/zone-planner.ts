// DNS for every hostname of a TunnelProvider's tunnels, as one desired-state plan per
// zone (external-dns's model). Two kinds of keys in one controller:
//   `provider:<name>`: gathers what every tunnel of the provider routes (from the
//     informer cache, duplicates across tunnels resolved by age), splits it by zone and
//     enqueues the zones whose share changed;
//   `zone:<name>/<zoneId>`: one listing (shared snapshot), the plan, one batch call per
//     chunk, and the outcome per hostname, which bindings read for their status.
// Bindings make no DNS call of their own: a thousand new hostnames in a zone are one
// listing and one batch, and a renamed hostname, a deleted binding or a crash's
// leftover converge from the plan without trusting what a status once said.
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource, type Route } from "@ktube/api";
import { hasFinalizer } from "@ktube/finalizers";
import { bindingKey } from "@ktube/routing";
import { GATHER_MAX_FACTOR, Index, objectKeyOf, ProviderError, ProviderRateLimited, tunnelBlock, type BindingObject, type ProviderKit, type ProviderObject, type RouteOutcome, type TunnelObject } from "@ktube/provider-kit";
import { changed, labelsChanged, type Controller, type KubeObject, type Result } from "@ktube/runtime";
import { createHash } from "node:crypto";
import type { DnsBatchResult } from "./cloudflare-sdk.ts";
import { sendZoneChanges } from "./dns-batch.ts";
import { parseMark } from "./dns.ts";
import { DNS_NAME_CLASH_CODES } from "./errors.ts";
import { bindingFingerprint } from "./ownership.ts";
import type { AccountSession } from "./sessions.ts";
import { isOurMark, planZoneRecords, type HostnameOutcome, type PlanOwner, type WantedHostname } from "./zone-plan.ts";
import { zoneForHostname, type ZoneRef } from "./zones.ts";

/** A zone with hostnames in the way is listed again this often, so removing the obstacle is noticed. */
const BLOCKED_RECHECK_MS = 60_000;
/**
 * Cloudflare refused records the listing showed no obstacle for: the snapshot is stale.
 * The zone is listed and planned again after this, doubling while refusals go on.
 */
const REFUSED_REPLAN_MS = 2_000;
/** A binding's release waits this long for the plans that drop its records, then tries again later. */
const SETTLE_TIMEOUT_MS = 60_000;

/** Which tunnel a hostname points at, and which bindings route it. */
interface Claim extends WantedHostname {
  tunnelKey: string;
  /** Every binding of the provider routing this hostname, on any tunnel (woken when the claim changes). */
  bindings: string[];
}

/** What a zone's last plan found for a hostname, for the tunnel it pointed it at. */
interface Planned {
  tunnelId: string;
  outcome: HostnameOutcome | { ready: false; reason: string; message: string };
}

/** The DNS state of one provider. */
class ProviderDns {
  accountId = "";
  claims = new Map<string, Claim>();
  /** Hostnames in no zone of the account. */
  unzoned = new Set<string>();
  zones = new Map<string, ZoneRef>();
  wantedByZone = new Map<string, WantedHostname[]>();
  /** Fingerprint of each zone's wanted records as last planned without error. */
  applied = new Map<string, string>();
  planned = new Map<string, Map<string, Planned>>();
  /** Plans in a row Cloudflare refused records of, by zone. */
  refusals = new Map<string, number>();
  /** Bindings whose marks this provider may claim from before marks named a provider. */
  unscoped = new Set<string>();
}

export interface ZonePlannerOptions {
  ownerId: string;
  /** Binding changes are gathered this long before the provider's plan is made. */
  delayMs: number;
  /** The provider's account session, or undefined (quick tunnels, credentials not usable). */
  accountOf(provider: ProviderObject): AccountSession | undefined;
  /** May this route's hostname point at the tunnel yet? (A route behind Access waits for its application.) */
  publishable(binding: BindingObject, route: Route): boolean;
}

const PROVIDER_KEY = "provider:";
const ZONE_KEY = "zone:";
const zoneKey = (provider: string, zoneId: string): string => `${ZONE_KEY}${provider}/${zoneId}`;

/** Binding fields the plan reads: routes (generation), deletion, and the provider finalizer. */
const bindingChanged = changed((o) => [o.metadata?.generation, o.metadata?.deletionTimestamp, o.metadata?.finalizers]);
/** Tunnel fields the plan reads: which provider, its Cloudflare tunnel id, deletion. */
const tunnelChanged = changed((o) => [o.metadata?.generation, o.metadata?.deletionTimestamp, (o as TunnelObject).status?.tunnelId]);
const providerChanged = changed((o) => [o.metadata?.generation, o.metadata?.labels, o.metadata?.deletionTimestamp]);
const portsChanged = changed((o) => (o as { spec?: { ports?: unknown } }).spec?.ports);

export class ZonePlanner<S extends object> {
  private readonly kit: ProviderKit<S>;
  private readonly options: ZonePlannerOptions;
  private readonly providers = new Map<string, ProviderDns>();
  private readonly waiters = new Map<string, Array<{ resolve: () => void; reject: (error: unknown) => void }>>();
  private controller?: Controller;

  constructor(kit: ProviderKit<S>, options: ZonePlannerOptions) {
    this.kit = kit;
    this.options = options;
  }

  /** Builds the controller (call from the plugin's setup). */
  register(): void {
    const { kit } = this;
    const { cache } = kit.manager;
    const delayMs = this.options.delayMs;
    const maxDelayMs = delayMs * GATHER_MAX_FACTOR;
    const ofBindings = (bindings: BindingObject[]): string[] => [...new Set(bindings.flatMap((b) => this.providerKeyOfBinding(b)))];
    this.controller = kit.manager
      .controller("dnszone")
      .forKeys({ resyncKeys: () => this.resyncKeys() })
      .watches(TunnelBindingResource, (b) => this.providerKeyOfBinding(b), { delayMs, maxDelayMs, predicates: [bindingChanged] })
      .watches(TunnelResource, (t) => [`${PROVIDER_KEY}${t.spec.providerRef.name}`], { delayMs, maxDelayMs, predicates: [tunnelChanged] })
      .watches(TunnelProviderResource, (p) => [`${PROVIDER_KEY}${p.metadata!.name}`], { predicates: [providerChanged] })
      .watches(Core.Service, (svc) => ofBindings(cache.byIndex(TunnelBindingResource, Index.bindingsByService, `${svc.metadata?.namespace}/${svc.metadata?.name}`)), {
        delayMs,
        maxDelayMs,
        predicates: [portsChanged],
      })
      .watches(Core.Namespace, (ns) => ofBindings(cache.list(TunnelBindingResource, { namespace: ns.metadata!.name! })), { predicates: [labelsChanged] })
      .watches(Core.Secret, (secret) => kit.providersOfSecret(secret.metadata!.name!).map((p) => `${PROVIDER_KEY}${p.metadata.name}`), {
        namespace: kit.options.namespace,
      })
      .withOptions({ maxConcurrentReconciles: kit.options.maxConcurrentReconciles ?? 4 })
      .build(async ({ key }) => this.reconcile(key));
  }

  /**
   * What DNS says about `hostname` for a binding on Cloudflare tunnel `tunnelId`: ready,
   * why not, or Pending until the provider's next plan has covered it.
   */
  outcome(providerName: string, hostname: string, tunnelId: string): RouteOutcome {
    const state = this.providers.get(providerName);
    const host = hostname.toLowerCase();
    if (state?.unzoned.has(host)) return { ready: false, reason: "ZoneNotFound", unresolvedRef: true, message: `no zone of account ${state.accountId} contains ${host}` };
    const claim = state?.claims.get(host);
    if (claim && claim.tunnelId !== tunnelId) {
      return { ready: false, reason: "HostnameInUse", message: `${host} points at Tunnel ${claim.tunnelKey}, where the older binding ${claim.binding} routes it` };
    }
    const zone = claim && state ? zoneForHostname([...state.zones.values()], host) : undefined;
    const planned = zone ? state?.planned.get(zone.id)?.get(host) : undefined;
    if (!planned || planned.tunnelId !== tunnelId) return { ready: false, reason: "Pending", message: `waiting for the DNS record of ${host} to be written` };
    return planned.outcome.ready ? { ready: true } : { ready: false, reason: planned.outcome.reason, message: planned.outcome.message };
  }

  /**
   * Resolves once no DNS record of this provider is marked as `binding`'s: the binding
   * is left out of the next plan (it is being deleted, or no longer served here), and
   * only the zones holding its marks are planned again (found in the snapshots, not by
   * listing every zone per deletion).
   */
  async release(provider: ProviderObject, binding: string): Promise<void> {
    const name = provider.metadata.name!;
    const account = this.options.accountOf(provider);
    if (!account) return;
    await this.settle(`${PROVIDER_KEY}${name}`);
    const state = this.providers.get(name);
    if (!state) return;
    const owner = this.owner(name, state);
    const holding = (): ZoneRef[] =>
      [...state.zones.values()].filter((zone) => {
        const snapshot = account.records.cached(zone.id);
        if (!snapshot) return true; // not listed yet: it may hold some
        return [...snapshot.marksOf(bindingFingerprint(binding)), ...snapshot.marksOf(binding)].some((r) => isOurMark(parseMark(r)!, owner));
      });
    const zones = holding();
    await Promise.all(zones.map((zone) => this.settle(zoneKey(name, zone.id))));
    const left = holding();
    if (left.length > 0) throw new ProviderError("DNSCleanupPending", `DNS records of this binding remain in zone ${left.map((z) => z.name).join(", ")}; retrying`);
  }

  /** Plans the provider again soon (something the plan reads outside Kubernetes changed). */
  replan(providerName: string): void {
    this.controller?.enqueue(`${PROVIDER_KEY}${providerName}`);
  }

  /**
   * Runs `key` (now) and resolves when a run that started after this call has finished;
   * rejects with that run's error, or after SETTLE_TIMEOUT_MS (the caller retries later).
   */
  private settle(key: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new ProviderError("DNSCleanupPending", "DNS is still being planned; retrying")), SETTLE_TIMEOUT_MS);
      const list = this.waiters.get(key) ?? [];
      list.push({ resolve: () => (clearTimeout(timer), resolve()), reject: (error) => (clearTimeout(timer), reject(error)) });
      this.waiters.set(key, list);
      this.controller!.enqueue(key);
    });
  }

  private async reconcile(key: string): Promise<Result | void> {
    const waiting = this.waiters.get(key) ?? [];
    this.waiters.delete(key);
    try {
      if (key.startsWith(PROVIDER_KEY)) await this.planProvider(key.slice(PROVIDER_KEY.length));
      else {
        const [provider, zoneId] = key.slice(ZONE_KEY.length).split("/", 2) as [string, string];
        const requeueAfterMs = await this.planZone(provider, zoneId);
        if (requeueAfterMs) return finish(waiting, { requeueAfterMs });
      }
      return finish(waiting, undefined);
    } catch (error) {
      for (const w of waiting) w.reject(error);
      if (error instanceof ProviderRateLimited) return { requeueAfterMs: error.retryAfterMs ?? 60_000 };
      throw error;
    }
  }

  /** The provider's claims, split by zone; zones whose share changed are planned. */
  private async planProvider(name: string): Promise<void> {
    const provider = this.kit.provider(name);
    // A provider being deleted is still planned: its tunnels' deletions remove their records.
    const account = provider && this.kit.scope.serves(provider) ? this.options.accountOf(provider) : undefined;
    const state = this.providers.get(name) ?? new ProviderDns();
    if (!provider || !account) {
      if (this.providers.delete(name)) this.kit.wakeBindings([...state.claims.values()].flatMap((c) => c.bindings));
      return;
    }
    this.providers.set(name, state);
    const { claims, unscoped } = this.claimsOf(provider);
    const zones = await account.zones.zones(account.api);
    const wantedByZone = new Map<string, WantedHostname[]>();
    const unzoned = new Set<string>();
    for (const claim of claims.values()) {
      const zone = zoneForHostname(zones, claim.hostname);
      if (!zone) unzoned.add(claim.hostname);
      else {
        const wanted = wantedByZone.get(zone.id) ?? [];
        wanted.push({ hostname: claim.hostname, tunnelId: claim.tunnelId, binding: claim.binding });
        wantedByZone.set(zone.id, wanted);
      }
    }
    // Bindings whose hostname moved to another tunnel, lost or found its zone.
    const wake = new Set<string>();
    for (const [host, claim] of claims) {
      const before = state.claims.get(host);
      if (before?.tunnelId !== claim.tunnelId || state.unzoned.has(host) !== unzoned.has(host)) claim.bindings.forEach((b) => wake.add(b));
    }
    Object.assign(state, { accountId: account.accountId, claims, unzoned, unscoped, wantedByZone, zones: new Map(zones.map((z) => [z.id, z])) });
    for (const zoneId of state.planned.keys()) if (!state.zones.has(zoneId)) (state.planned.delete(zoneId), state.applied.delete(zoneId));
    for (const zone of zones) {
      if (state.applied.get(zone.id) !== fingerprint(wantedByZone.get(zone.id) ?? [])) this.controller!.enqueue(zoneKey(name, zone.id));
    }
    this.kit.wakeBindings(wake);
  }

  /** Plans and applies one zone. Returns when to plan it again, if hostnames are blocked. */
  private async planZone(name: string, zoneId: string): Promise<number | undefined> {
    const state = this.providers.get(name);
    const zone = state?.zones.get(zoneId);
    const provider = this.kit.provider(name);
    const account = provider ? this.options.accountOf(provider) : undefined;
    if (!state || !zone || !account) return undefined;
    const wanted = state.wantedByZone.get(zoneId) ?? [];
    const before = state.planned.get(zoneId);
    const blockedBefore = [...(before?.values() ?? [])].some((p) => !p.outcome.ready);
    const planned = new Map<string, Planned>();
    try {
      const snapshot = await account.records.snapshot(account.api, zone, blockedBefore ? BLOCKED_RECHECK_MS : undefined);
      const plan = planZoneRecords(wanted, snapshot, this.owner(name, state));
      const applied = (result: DnsBatchResult): void =>
        account.records.applyWrite(zoneId, (s) => {
          for (const r of result.deletes) s.remove(r.id);
          for (const r of [...result.patches, ...result.posts]) s.put(r);
        });
      let refused;
      try {
        refused = await sendZoneChanges(account.api, zoneId, plan.changes, { applied });
      } catch (error) {
        // The write may or may not have happened: the next plan starts from a fresh listing.
        if (!(error instanceof ProviderRateLimited)) account.records.forget(zoneId);
        throw error;
      }
      for (const want of wanted) {
        const error = refused.get(want.hostname);
        const outcome: Planned["outcome"] = !error
          ? plan.outcomes.get(want.hostname)!
          : { ready: false, reason: error.code !== undefined && DNS_NAME_CLASH_CODES.has(error.code) ? "DNSRecordConflict" : error.reason, message: error.message };
        planned.set(want.hostname, { tunnelId: want.tunnelId, outcome });
      }
      state.applied.set(zoneId, fingerprint(wanted));
      if (refused.size > 0) {
        account.records.forget(zoneId);
        const refusals = (state.refusals.get(zoneId) ?? 0) + 1;
        state.refusals.set(zoneId, refusals);
        this.publish(state, zoneId, before, planned);
        return Math.min(REFUSED_REPLAN_MS * 2 ** (refusals - 1), BLOCKED_RECHECK_MS);
      }
      state.refusals.delete(zoneId);
    } catch (error) {
      // Every hostname of the zone says why (a token without DNS rights, Cloudflare down...).
      if (!(error instanceof ProviderError) || error instanceof ProviderRateLimited) throw error;
      for (const want of wanted) planned.set(want.hostname, { tunnelId: want.tunnelId, outcome: { ready: false, reason: error.reason, message: error.message } });
      this.publish(state, zoneId, before, planned);
      throw error;
    }
    this.publish(state, zoneId, before, planned);
    return [...planned.values()].some((p) => !p.outcome.ready) ? BLOCKED_RECHECK_MS : undefined;
  }

  /** Keeps a zone's outcomes and wakes the bindings of hostnames whose outcome changed. */
  private publish(state: ProviderDns, zoneId: string, before: Map<string, Planned> | undefined, planned: Map<string, Planned>): void {
    state.planned.set(zoneId, planned);
    const wake = new Set<string>();
    for (const [host, p] of planned) {
      if (JSON.stringify(before?.get(host)) !== JSON.stringify(p)) state.claims.get(host)?.bindings.forEach((b) => wake.add(b));
    }
    this.kit.wakeBindings(wake);
  }

  /**
   * Every hostname the provider's tunnels route, pointed at the tunnel of its oldest
   * binding. Only bindings carrying the provider's finalizer count: a record is never
   * made for a binding whose deletion would not wait for its removal.
   */
  private claimsOf(provider: ProviderObject): { claims: Map<string, Claim>; unscoped: Set<string> } {
    const { kit } = this;
    const name = provider.metadata.name!;
    const finalizer = kit.bindingFinalizer(name);
    const capabilities = kit.capabilities(provider);
    const candidates: Array<{ claim: Claim; created: string }> = [];
    const unscoped = new Set<string>();
    for (const tunnel of kit.tunnelsOfProvider(name)) {
      for (const b of kit.manager.cache.byIndex(TunnelBindingResource, Index.bindingsByTunnel, objectKeyOf(tunnel))) {
        unscoped.add(bindingKey(b)).add(bindingFingerprint(bindingKey(b)));
      }
      const tunnelId = tunnel.status?.tunnelId;
      const block = tunnelBlock(tunnel);
      if (!tunnelId || tunnel.metadata.deletionTimestamp || (block && block !== kit.plugin.type)) continue;
      for (const verdict of kit.verdicts.of(tunnel, capabilities).values()) {
        // The verdict keeps the object it judged; finalizers and deletion are read from the cache's.
        const b = verdict.accepted.status === "True" ? kit.manager.cache.get(TunnelBindingResource, verdict.binding.metadata.namespace, verdict.binding.metadata.name!) : undefined;
        if (!b || b.metadata.deletionTimestamp || !hasFinalizer(b, finalizer)) continue;
        for (const route of verdict.routes) {
          const hostname = route.resolved?.route.hostname?.toLowerCase();
          if (!hostname || !this.options.publishable(b, route.resolved!.route)) continue;
          const key = bindingKey(b);
          candidates.push({ claim: { hostname, tunnelId, tunnelKey: objectKeyOf(tunnel), binding: key, bindings: [key] }, created: String(b.metadata.creationTimestamp ?? "") });
        }
      }
    }
    // Oldest first (creationTimestamp, then namespace/name), as every conflict is decided.
    candidates.sort((a, b) => (a.created === b.created ? a.claim.binding.localeCompare(b.claim.binding) : a.created.localeCompare(b.created)));
    const claims = new Map<string, Claim>();
    for (const { claim: candidate } of candidates) {
      const claim = claims.get(candidate.hostname);
      if (!claim) claims.set(candidate.hostname, candidate);
      else if (!claim.bindings.includes(candidate.binding)) claim.bindings.push(candidate.binding);
    }
    return { claims, unscoped };
  }

  private owner(name: string, state: ProviderDns): PlanOwner {
    return { ownerId: this.options.ownerId, provider: name, claimsUnscoped: (binding) => state.unscoped.has(binding) };
  }

  private providerKeyOfBinding(b: KubeObject): string[] {
    const tunnel = this.kit.tunnelOf(b as BindingObject);
    return tunnel ? [`${PROVIDER_KEY}${tunnel.spec.providerRef.name}`] : [];
  }

  /** Every served provider, and every zone planned before (its records are checked for drift). */
  private resyncKeys(): string[] {
    const keys: string[] = [];
    for (const p of this.kit.manager.cache.list(TunnelProviderResource)) {
      if (p.spec.type !== this.kit.plugin.type || !this.kit.scope.serves(p)) continue;
      keys.push(`${PROVIDER_KEY}${p.metadata.name}`);
      for (const zoneId of this.providers.get(p.metadata.name!)?.zones.keys() ?? []) keys.push(zoneKey(p.metadata.name!, zoneId));
    }
    return keys;
  }
}

function finish(waiting: Array<{ resolve: () => void }>, result: Result | undefined): Result | undefined {
  for (const w of waiting) w.resolve();
  return result;
}

const fingerprint = (wanted: WantedHostname[]): string =>
  createHash("sha256")
    .update(JSON.stringify([...wanted].sort((a, b) => a.hostname.localeCompare(b.hostname))))
    .digest("hex");

