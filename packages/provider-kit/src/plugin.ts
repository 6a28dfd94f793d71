// What a provider app supplies: the ProviderPlugin. The kit runs the TunnelProvider,
// Tunnel and TunnelBinding controllers and calls the plugin for what only the provider
// knows: whether credentials work, the provider-side tunnel and its connector, how
// accepted routes are applied, and what a binding holds provider-side.
import type { ConditionInput, ProviderType, RouteReservation, SecretKeyRef, Tunnel, TunnelBinding, TunnelProvider, TunnelStatus } from "@ktube/api";
import type { BindingVerdict, ProviderCapabilities, ResolvedRoute } from "@ktube/routing";
import type { KubeObject, Logger, ResourceType } from "@ktube/runtime";
import type { ProviderKit } from "./kit.ts";
import type { OwnedObjects } from "./owned-objects.ts";

export type ProviderObject = TunnelProvider & KubeObject;

/** A key of a Secret in the controller's namespace, required unless `optional`. */
export type CredentialRef = SecretKeyRef & { optional?: boolean };
export type TunnelObject = Tunnel & KubeObject;
export type BindingObject = TunnelBinding & KubeObject;

/** The outcome of one route, as the binding's status shows it. */
export interface RouteOutcome {
  ready: boolean;
  /** The public URL or address, when the provider decides it (ngrok, quick tunnels) or it differs from the hostname's. */
  url?: string;
  /** A condition reason when not ready (TunnelNotReady, DNSRecordNotOwned...). */
  reason?: string;
  message?: string;
  /** The route names something that does not resolve (a hostname in no zone...): ResolvedRefs=False. */
  unresolvedRef?: boolean;
  /** What the route holds at the provider (a reserved address), written to status even before it is ready. */
  reservation?: RouteReservation;
}

/** Route outcomes of one binding, by route name. */
export type RouteOutcomes = Map<string, RouteOutcome>;

/** An accepted binding and its routes that resolved to a target. */
export interface AcceptedBinding {
  binding: BindingObject;
  routes: ResolvedRoute[];
}

export interface TunnelContext<S> {
  tunnel: TunnelObject;
  provider: ProviderObject;
  session: S;
  /** Every binding that names this tunnel, judged by the shared binding rules. */
  verdicts: ReadonlyMap<string, BindingVerdict>;
  /** The accepted ones, oldest first, with their resolved routes. */
  accepted: AcceptedBinding[];
  /** Ownership-checked create/update/delete of the Kubernetes objects this tunnel owns. */
  objects: OwnedObjects;
  /**
   * Writes provider ids to status at once (resumable reconciles: a restart after this
   * finds the id instead of making a second provider-side tunnel). Returns the updated tunnel.
   */
  saveStatus(fields: Partial<TunnelStatus>): Promise<TunnelObject>;
  signal: AbortSignal;
  logger: Logger;
}

export interface TunnelOutcome {
  /** Provider fields of the status (tunnelId, adopted...); the kit adds observedGeneration and boundRoutes. */
  status?: Partial<TunnelStatus>;
  /** Must include `Ready`; provider-specific ones too (ConnectorsReady, ConfigApplied...). */
  conditions: ConditionInput[];
  /**
   * What the tunnel did with each accepted route, by binding key (namespace/name). A
   * route without an outcome here is reported as not yet applied.
   */
  routes: Map<string, RouteOutcomes>;
  requeueAfterMs?: number;
}

export interface BindingContext<S> {
  binding: BindingObject;
  tunnel: TunnelObject;
  provider: ProviderObject;
  session: S;
  verdict: BindingVerdict;
  objects: OwnedObjects;
  signal: AbortSignal;
  logger: Logger;
}

export interface BindingWork {
  routes: RouteOutcomes;
  requeueAfterMs?: number;
}

/** Releasing what a binding holds at a provider it is no longer served by (or on deletion). */
export interface ReleaseContext<S> {
  binding: BindingObject;
  provider: ProviderObject;
  session: S;
  objects: OwnedObjects;
  signal: AbortSignal;
  logger: Logger;
}

export interface Verification {
  /** The TunnelProvider's Ready condition. */
  ready: ConditionInput;
  /** Ask the provider again after this long (the kit keeps the answer per session until then). */
  recheckAfterMs?: number;
}

export interface ProviderPlugin<S extends object = object> {
  /** The provider class (TunnelProvider spec.type) this controller serves. */
  type: ProviderType;
  /** For messages: "Cloudflare", "ngrok"... */
  displayName: string;
  /** What this provider's tunnels can carry (may depend on the provider's spec, e.g. Cloudflare quick tunnels). */
  capabilities(provider: ProviderObject): ProviderCapabilities;
  /**
   * The Secret keys holding this provider's credentials, by role, all in the
   * controller's namespace. Empty when the provider needs none. A key marked `optional`
   * may be absent from its Secret (the role is then missing from `connect`'s credentials).
   */
  credentialRefs(provider: ProviderObject): Record<string, CredentialRef>;
  /** A session for these credentials. The kit keeps it while provider spec and credentials are unchanged. */
  connect(provider: ProviderObject, credentials: Record<string, string>): S;
  /** A session the kit no longer uses (its provider changed credentials or was deleted): release what it holds. */
  disconnect?(session: S): void;
  /** Asks the provider whether the session's credentials work. */
  verify(session: S, provider: ProviderObject, signal: AbortSignal): Promise<Verification>;
  tunnel: {
    /** Kinds of the Kubernetes objects a Tunnel owns (watched by managed-by label; a change wakes the Tunnel). */
    owns: ResourceType[];
    /** Ensures the provider-side tunnel, its connector and the accepted routes. */
    reconcile(ctx: TunnelContext<S>): Promise<TunnelOutcome>;
    /** Deletes what reconcile made provider-side. Must tolerate what never happened. */
    cleanup(ctx: TunnelContext<S>): Promise<void>;
  };
  /** Provider-side work per binding (Cloudflare DNS and Access, quick-tunnel connectors). */
  binding?: {
    /** Kinds of the Kubernetes objects a binding owns. */
    owns?: ResourceType[];
    /**
     * Does a binding served by `provider` hold anything outside Kubernetes? Only then it
     * gets a finalizer (default: yes). Objects it owns in Kubernetes are removed by the
     * kit whenever the binding leaves the provider, and by the garbage collector with it.
     */
    holdsProviderState?(provider: ProviderObject): boolean;
    reconcile(ctx: BindingContext<S>): Promise<BindingWork>;
    /** Undoes everything reconcile did for this binding at this provider. */
    release(ctx: ReleaseContext<S>): Promise<void>;
  };
  /** Forgets in-memory state of a Tunnel that no longer exists. */
  forgetTunnel?(uid: string): void;
  /**
   * Called once before the controllers are built: register cache indexes or watches
   * the plugin reads, or controllers of its own (a DNS zone reconciler...).
   */
  setup?(kit: ProviderKit<S>): void;
}
