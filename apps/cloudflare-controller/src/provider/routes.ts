// A binding's hostnames on a named tunnel: a proxied CNAME to the tunnel plus an
// ownership TXT per hostname, and a Cloudflare Access application for routes that ask
// for one. Only what carries our ownership mark is changed or deleted; Access is
// touched only by bindings that use it (or used it: the annotation below says so), so
// a token without Access rights serves every plain route.
import type { Route } from "@ktube/api";
import { bindingKey } from "@ktube/routing";
import { ProviderError, type BindingContext, type BindingWork, type ReleaseContext, type RouteOutcome, type RouteOutcomes } from "@ktube/provider-kit";
import type { AccountSession } from "./sessions.ts";
import { deleteAccessApp, ensureAccessApp, ownedAccessDomains } from "./access.ts";
import { deleteDnsRecord, ensureDnsRecord, ownedHostnames, type Owner } from "./dns.ts";

/** Set on a binding before its first Access application is made; removed once it has none. */
export const ACCESS_ANNOTATION = "cloudflare.ktube.dev/access-applications";
const RETRY_NOT_OWNED_MS = 30_000;

export interface RouteOptions {
  ownerId: string;
  /** Sets or removes an annotation on the binding (metadata patch). */
  annotate(ctx: { binding: BindingContext<AccountSession>["binding"] }, key: string, value: string | undefined): Promise<void>;
}

const accessDomain = (route: Route): string => `${route.hostname}${route.path && route.path !== "/" ? route.path.replace(/\/+$/, "") : ""}`;

export async function reconcileBindingRoutes(ctx: BindingContext<AccountSession>, options: RouteOptions): Promise<BindingWork> {
  const { session, binding, verdict, tunnel } = ctx;
  const owner: Owner = { ownerId: options.ownerId, binding: bindingKey(binding) };
  const tunnelId = tunnel.status?.tunnelId;
  const served = verdict.routes.flatMap((r) => (r.resolved?.route.hostname ? [r.resolved.route] : []));
  const outcomes: RouteOutcomes = new Map();
  let retry = false;

  // Hostnames held before but not now (renamed or removed routes) go first.
  const wanted = new Set(served.map((r) => r.hostname!));
  const previously = (binding.status?.routes ?? []).flatMap((r) => (r.url ? [hostOf(r.url)] : [])).filter((h): h is string => Boolean(h) && !wanted.has(h!));
  for (const hostname of new Set(previously)) {
    const zone = await session.zones.zoneFor(session.api, hostname);
    if (zone) await deleteDnsRecord(session, zone, hostname, owner);
  }

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
  const dnsByHost = new Map<string, RouteOutcome>();
  for (const route of served) {
    if (outcomes.has(route.name)) continue;
    const hostname = route.hostname!;
    let dns = dnsByHost.get(hostname);
    if (!dns) {
      dns = await ensureHostname(session, hostname, tunnelId, owner);
      dnsByHost.set(hostname, dns);
    }
    if (!dns.ready) {
      outcomes.set(route.name, dns);
      retry = true;
      continue;
    }
    if (route.access) {
      try {
        const access = await ensureAccessApp(session.api, session.access, options.ownerId, {
          domain: accessDomain(route),
          binding: bindingKey(binding),
          route: route.name,
          emails: route.access.emails ?? [],
          emailDomains: route.access.emailDomains ?? [],
        });
        if (access.kind === "notOwned") {
          outcomes.set(route.name, { ready: false, reason: "AccessApplicationNotOwned", message: access.message });
          retry = true;
          continue;
        }
      } catch (error) {
        if (!(error instanceof ProviderError && error.reason === "AccessNotPermitted")) throw error;
        outcomes.set(route.name, { ready: false, reason: error.reason, message: error.message });
        continue;
      }
    }
    outcomes.set(route.name, { ready: true });
  }
  return { routes: outcomes, ...(retry ? { requeueAfterMs: RETRY_NOT_OWNED_MS } : {}) };
}

/** The hostname's zone and DNS records; not ready, with the reason, when they cannot be ours. */
async function ensureHostname(session: AccountSession, hostname: string, tunnelId: string, owner: Owner): Promise<RouteOutcome> {
  const zone = await session.zones.zoneFor(session.api, hostname);
  if (!zone) return { ready: false, reason: "ZoneNotFound", unresolvedRef: true, message: `no zone of account ${session.accountId} contains ${hostname}` };
  const dns = await ensureDnsRecord(session, zone, hostname, tunnelId, owner);
  return dns.kind === "notOwned" ? { ready: false, reason: dns.reason ?? "DNSRecordNotOwned", message: dns.message } : { ready: true };
}

/** Everything a binding holds in the account: its DNS records (found from Cloudflare, not only status) and its Access applications. */
export async function releaseBindingRoutes(ctx: ReleaseContext<AccountSession>, options: RouteOptions): Promise<void> {
  const { session, binding } = ctx;
  const owner: Owner = { ownerId: options.ownerId, binding: bindingKey(binding) };
  for (const zone of await session.zones.zones(session.api)) {
    for (const hostname of await ownedHostnames(session, zone, owner)) await deleteDnsRecord(session, zone, hostname, owner);
  }
  if (binding.metadata.annotations?.[ACCESS_ANNOTATION] === "true") {
    for (const domain of await ownedAccessDomains(session.api, session.access, options.ownerId, bindingKey(binding))) {
      await deleteAccessApp(session.api, session.access, options.ownerId, domain);
    }
    if (!binding.metadata.deletionTimestamp) await options.annotate({ binding }, ACCESS_ANNOTATION, undefined);
  }
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).hostname || undefined;
  } catch {
    return undefined;
  }
}
