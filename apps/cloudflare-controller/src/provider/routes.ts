// A binding's hostnames on a named tunnel: DNS comes from the provider's zone plans
// (zone-planner.ts), which this only reads; a Cloudflare Access application for routes
// that ask for one. Access is touched only by bindings that use it (or used it: the
// annotation below says so), so a token without Access rights serves every plain route.
import type { Route } from "@ktube/api";
import { bindingKey } from "@ktube/routing";
import { ProviderError, type BindingContext, type BindingObject, type BindingWork, type ProviderObject, type ReleaseContext, type RouteOutcome, type RouteOutcomes } from "@ktube/provider-kit";
import type { AccountSession } from "./sessions.ts";
import { deleteAccessApp, ensureAccessApp, ownedAccessDomains } from "./access.ts";

/** Set on a binding before its first Access application is made; removed once it has none. */
export const ACCESS_ANNOTATION = "cloudflare.ktube.dev/access-applications";
const RETRY_NOT_OWNED_MS = 30_000;

/** What a binding reads from, and asks of, its provider's DNS plans. */
export interface BindingDns {
  outcome(providerName: string, hostname: string, tunnelId: string): RouteOutcome;
  /** Something the plans read changed (an Access application came or went). */
  replan(providerName: string): void;
  /** Resolves once no record of the provider is marked as the binding's. */
  release(provider: ProviderObject, binding: string): Promise<void>;
}

export interface RouteOptions {
  ownerId: string;
  dns: BindingDns;
  gate: AccessGate;
  /** Sets or removes an annotation on the binding (metadata patch). */
  annotate(ctx: { binding: BindingContext<AccountSession>["binding"] }, key: string, value: string | undefined): Promise<void>;
}

/**
 * Which routes behind Access may point at the tunnel in DNS: only once their Access
 * application is in place, so a hostname is never public without its login. After a
 * restart, before a binding is reconciled again, its status says (a route served
 * before had its application).
 */
export class AccessGate {
  private readonly ready = new Map<string, boolean>();

  publishable(binding: BindingObject, route: Route): boolean {
    if (!route.access) return true;
    return this.ready.get(gateKey(binding, route)) ?? binding.status?.routes?.find((r) => r.name === route.name)?.ready === true;
  }

  /** Records what Access said; returns whether that changes what may be published. */
  set(binding: BindingObject, route: Route, ready: boolean): boolean {
    const before = this.publishable(binding, route);
    this.ready.set(gateKey(binding, route), ready);
    return before !== ready;
  }

  forget(binding: BindingObject): void {
    const prefix = `${bindingKey(binding)}\u0000`;
    for (const key of this.ready.keys()) if (key.startsWith(prefix)) this.ready.delete(key);
  }
}

const gateKey = (binding: BindingObject, route: Route): string => `${bindingKey(binding)}\u0000${route.name}\u0000${accessDomain(route)}`;

const accessDomain = (route: Route): string => `${route.hostname}${route.path && route.path !== "/" ? route.path.replace(/\/+$/, "") : ""}`;

export async function reconcileBindingRoutes(ctx: BindingContext<AccountSession>, options: RouteOptions): Promise<BindingWork> {
  const { session, binding, verdict, tunnel } = ctx;
  const tunnelId = tunnel.status?.tunnelId;
  const served = verdict.routes.flatMap((r) => (r.resolved?.route.hostname ? [r.resolved.route] : []));
  const outcomes: RouteOutcomes = new Map();
  let retry = false;

  const accessRoutes = served.filter((r) => r.access);
  if (accessRoutes.length > 0 && binding.metadata.annotations?.[ACCESS_ANNOTATION] !== "true") {
    // Recorded before the first Access application exists, so its cleanup is never skipped.
    await options.annotate(ctx, ACCESS_ANNOTATION, "true");
  }
  if (binding.metadata.annotations?.[ACCESS_ANNOTATION] === "true" || accessRoutes.length > 0) {
    const keep = new Set(accessRoutes.map(accessDomain));
    try {
      for (const domain of await ownedAccessDomains(session.api, session.access, options.ownerId, bindingKey(binding))) {
        if (!keep.has(domain)) await deleteAccessApp(session.api, session.access, options.ownerId, domain);
      }
      if (accessRoutes.length === 0) await options.annotate(ctx, ACCESS_ANNOTATION, undefined);
    } catch (error) {
      if (!(error instanceof ProviderError && error.reason === "AccessNotPermitted")) throw error;
      for (const r of accessRoutes) outcomes.set(r.name, { ready: false, reason: error.reason, message: error.message });
    }
  }

  if (!tunnelId) {
    for (const r of served) outcomes.set(r.name, { ready: false, reason: "Pending", message: "waiting for the Cloudflare tunnel to exist" });
    return { routes: outcomes };
  }
  const provider = ctx.provider.metadata.name!;
  let replan = false;
  for (const route of served) {
    // The zone planner wakes this binding when the outcome changes.
    const dns = options.dns.outcome(provider, route.hostname!, tunnelId);
    if (route.access && dns.reason !== "ZoneNotFound") {
      // Before DNS: the application goes in front first.
      const access = outcomes.get(route.name) ?? (await accessOutcome(ctx, options, route));
      if (!access.ready) retry ||= access.reason === "AccessApplicationNotOwned";
      replan = options.gate.set(binding, route, access.ready) || replan;
      if (!access.ready) {
        outcomes.set(route.name, access);
        continue;
      }
    }
    outcomes.set(route.name, dns);
  }
  if (replan) options.dns.replan(provider);
  return { routes: outcomes, ...(retry ? { requeueAfterMs: RETRY_NOT_OWNED_MS } : {}) };
}

/** Ensures the route's Access application; not ready, with the reason, when it cannot be KTube's. */
async function accessOutcome(ctx: BindingContext<AccountSession>, options: RouteOptions, route: Route): Promise<RouteOutcome> {
  const { session, binding } = ctx;
  try {
    const access = await ensureAccessApp(session.api, session.access, options.ownerId, {
      domain: accessDomain(route),
      binding: bindingKey(binding),
      route: route.name,
      emails: route.access!.emails ?? [],
      emailDomains: route.access!.emailDomains ?? [],
    });
    return access.kind === "notOwned" ? { ready: false, reason: "AccessApplicationNotOwned", message: access.message } : { ready: true };
  } catch (error) {
    if (!(error instanceof ProviderError && error.reason === "AccessNotPermitted")) throw error;
    return { ready: false, reason: error.reason, message: error.message };
  }
}

/** Everything a binding holds in the account: its DNS records (through the plans) and its Access applications. */
export async function releaseBindingRoutes(ctx: ReleaseContext<AccountSession>, options: RouteOptions): Promise<void> {
  const { session, binding } = ctx;
  options.gate.forget(binding);
  await options.dns.release(ctx.provider, bindingKey(binding));
  if (binding.metadata.annotations?.[ACCESS_ANNOTATION] === "true") {
    for (const domain of await ownedAccessDomains(session.api, session.access, options.ownerId, bindingKey(binding))) {
      await deleteAccessApp(session.api, session.access, options.ownerId, domain);
    }
    if (!binding.metadata.deletionTimestamp) await options.annotate({ binding }, ACCESS_ANNOTATION, undefined);
  }
}
