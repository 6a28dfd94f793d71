// The state the three controllers of one provider share, and how they are registered.
import { finalizerFor, PROVIDER_TYPES, TunnelProviderResource, TunnelResource, type ConditionInput, type Tunnel } from "@ktube/api";
import type { BindingVerdict, ProviderCapabilities } from "@ktube/routing";
import type { Controller, KubeObject, Manager, ResourceType, Result } from "@ktube/runtime";
import { createHash } from "node:crypto";
import { Sessions } from "./credentials.ts";
import { ProviderError, ProviderRateLimited } from "./errors.ts";
import { Index, registerIndexes } from "./indexes.ts";
import { Ownership } from "./owned-objects.ts";
import type { BindingObject, ProviderObject, ProviderPlugin, RouteOutcomes, TunnelObject } from "./plugin.ts";
import { PublishedRoutes } from "./published-routes.ts";
import { ProviderScope } from "./scope.ts";
import { writeStatus } from "./status.ts";
import { TunnelVerdicts } from "./verdicts.ts";

/** Set to "true" on a Tunnel or TunnelBinding to let go of its provider-side resources instead of cleaning them up. */
export const ABANDON_ANNOTATION = "ktube.dev/abandon-on-delete";

export interface KitOptions {
  /** The controller's namespace: the only one whose Secrets it reads (provider credentials). */
  namespace: string;
  /** Serve only TunnelProviders matching this label selector (kubectl syntax). */
  providerSelector?: string;
  /** Value of the app.kubernetes.io/managed-by label on what it creates, and its field manager. */
  managedBy: string;
  maxConcurrentReconciles?: number;
  /** Binding and Service changes are gathered this long before their tunnel is reconciled (one apply per burst). */
  configDelayMs?: number;
}

/**
 * While changes keep coming, a gathered reconcile waits at most this many times the
 * config delay: long enough that a burst of a thousand new bindings (about ten seconds
 * to create) becomes one apply, short enough that steady churn still lands in 20 s.
 */
export const GATHER_MAX_FACTOR = 20;

const PROVIDER_FINALIZER_PREFIX = "provider-";
/** See ProviderKit.pendingQuiet. */
export const PENDING_QUIET_MS = 15_000;

export class ProviderKit<S extends object> {
  readonly manager: Manager;
  readonly plugin: ProviderPlugin<S>;
  readonly options: KitOptions;
  readonly scope: ProviderScope;
  readonly sessions: Sessions<S>;
  readonly ownership: Ownership;
  readonly verdicts: TunnelVerdicts;
  readonly published = new PublishedRoutes();
  /** The finalizer on Tunnels this controller made provider-side changes for. */
  readonly tunnelFinalizer: string;
  readonly controllers: { provider?: Controller; tunnel?: Controller; binding?: Controller } = {};
  /** Tunnel key -> uid, to tell the plugin which tunnel to forget once it is gone. */
  private readonly tunnelUids = new Map<string, string>();
  /** Binding key -> the generation that has only been waiting since `since` (see pendingQuiet). */
  private readonly pending = new Map<string, { generation?: number; since: number }>();

  constructor(manager: Manager, plugin: ProviderPlugin<S>, options: KitOptions) {
    this.manager = manager;
    this.plugin = plugin;
    this.options = options;
    this.scope = new ProviderScope(plugin.type, options.providerSelector);
    this.tunnelFinalizer = finalizerFor(plugin.type);
    this.sessions = new Sessions(manager.cache, options.namespace, plugin);
    registerIndexes(manager.cache, (p) => this.sessions.secretNames(p));
    this.ownership = new Ownership(manager.client, manager.cache, options.managedBy);
    for (const type of [...plugin.tunnel.owns, ...(plugin.binding?.owns ?? [])]) this.ownership.watch(type);
    this.verdicts = new TunnelVerdicts(manager.cache);
  }

  /** A TunnelProvider by name, whoever serves it (the cache holds every provider). */
  provider(name: string): ProviderObject | undefined {
    return this.manager.cache.get(TunnelProviderResource, undefined, name);
  }

  tunnelOf(binding: BindingObject): TunnelObject | undefined {
    const ref = binding.spec.tunnelRef;
    return this.manager.cache.get(TunnelResource, ref.namespace ?? binding.metadata.namespace, ref.name);
  }

  tunnelsOfProvider(name: string): TunnelObject[] {
    return this.manager.cache.byIndex(TunnelResource, Index.tunnelsByProvider, name);
  }

  providersOfSecret(name: string): ProviderObject[] {
    return this.manager.cache.byIndex(TunnelProviderResource, Index.providersBySecret, name);
  }

  capabilities(provider: ProviderObject): ProviderCapabilities {
    return this.plugin.capabilities(provider);
  }

  /**
   * The finalizer a binding carries while it holds something at `providerName`. One per
   * provider, so each instance of a sharded controller adds and removes only its own,
   * and a binding moving between providers is released at the old one.
   */
  bindingFinalizer(providerName: string): string {
    let name = `${PROVIDER_FINALIZER_PREFIX}${providerName}`;
    if (name.length > 63) {
      const hash = createHash("sha256").update(providerName).digest("hex").slice(0, 10);
      name = `${PROVIDER_FINALIZER_PREFIX}${providerName.slice(0, 40).replace(/[-.]+$/, "")}-${hash}`;
    }
    return `${this.plugin.type}.ktube.dev/${name}`;
  }

  /** The providers a binding holds something at, from its finalizers; `name` undefined for one that no longer exists. */
  heldProviders(binding: KubeObject): Array<{ finalizer: string; provider?: ProviderObject }> {
    const prefix = `${this.plugin.type}.ktube.dev/${PROVIDER_FINALIZER_PREFIX}`;
    const held = (binding.metadata?.finalizers ?? []).filter((f) => f.startsWith(prefix));
    if (held.length === 0) return [];
    const providers = this.manager.cache.list(TunnelProviderResource).filter((p) => p.spec.type === this.plugin.type);
    return held.map((finalizer) => {
      const provider = providers.find((p) => this.bindingFinalizer(p.metadata.name!) === finalizer);
      return provider ? { finalizer, provider } : { finalizer };
    });
  }

  /**
   * How much longer to hold back the status of a binding generation whose routes are
   * only waiting on this controller's own work (reason Pending: the tunnel applying it,
   * DNS being written). Whatever finishes that work wakes the binding, so a new binding
   * usually gets one status write, Ready, instead of a "waiting" write first; one that
   * still waits after PENDING_QUIET_MS says so. 0: write now.
   */
  pendingQuiet(binding: BindingObject, verdict: BindingVerdict, outcomes: RouteOutcomes): number {
    const key = `${binding.metadata.namespace}/${binding.metadata.name}`;
    const waiting = verdict.accepted.status === "True" && [...outcomes.values()].some((o) => !o.ready) && [...outcomes.values()].every((o) => o.ready || o.reason === "Pending");
    if (!waiting) {
      this.pending.delete(key);
      return 0;
    }
    const generation = binding.metadata.generation;
    let since = Date.now();
    const known = this.pending.get(key);
    if (known && known.generation === generation) since = known.since;
    else this.pending.set(key, { generation, since });
    return Math.max(0, since + PENDING_QUIET_MS - Date.now());
  }

  /** A binding is gone. */
  forgetBinding(key: string): void {
    this.pending.delete(key);
  }

  rememberTunnel(key: string, uid: string): void {
    this.tunnelUids.set(key, uid);
  }

  /** A Tunnel is gone: forget what was kept for it and wake its bindings. */
  forgetTunnel(key: string): void {
    const uid = this.tunnelUids.get(key);
    this.tunnelUids.delete(key);
    if (uid) this.plugin.forgetTunnel?.(uid);
    this.wakeBindings(this.published.drop(key));
  }

  wakeBindings(keys: Iterable<string>): void {
    for (const key of keys) this.controllers.binding?.enqueue(key);
  }

  /**
   * Runs a reconcile step, turning typed provider failures into what a user sees: a
   * rate limit requeues after Retry-After and changes nothing; any other ProviderError
   * sets Ready=False with its reason and message (plus an Event) on `object`, then is
   * retried with backoff, or not at all when terminal (a change or the resync retries).
   */
  async reportingErrors(type: ResourceType, latest: () => KubeObject & { status?: object }, run: () => Promise<Result | void>): Promise<Result | void> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof ProviderRateLimited) return { requeueAfterMs: error.retryAfterMs ?? 60_000 };
      if (!(error instanceof ProviderError)) throw error;
      const ready: ConditionInput = { type: "Ready", status: "False", reason: error.reason, message: error.message };
      await writeStatus(this.manager, type, latest(), [ready]).catch((statusError: unknown) =>
        this.manager.logger.warn({ err: String(statusError), reason: error.reason }, "could not report a provider error in status"),
      );
      if (error.terminal) return undefined;
      if (error.retryAfterMs) return { requeueAfterMs: error.retryAfterMs };
      throw error;
    }
  }
}

export const isAbandoned = (obj: KubeObject): boolean => obj.metadata?.annotations?.[ABANDON_ANNOTATION] === "true";

/** The provider block a Tunnel sets, if any (at most one, by CEL): named like the provider types. */
export const tunnelBlock = (tunnel: Tunnel): string | undefined => PROVIDER_TYPES.find((b) => tunnel.spec[b] !== undefined);
