// What the three controllers share: the manager, credentials, options, and the
// cluster view the binding rules are judged on.
import {
  Core,
  finalizerFor,
  setCondition,
  TunnelBindingResource,
  TunnelProviderResource,
  TunnelResource,
  type Condition,
  type ConditionInput,
  type Tunnel,
  type TunnelBinding,
  type TunnelProvider,
} from "@ktube/api";
import { refersTo, type NamespaceLike, type ProviderCapabilities, type ServiceLike, type TunnelView } from "@ktube/routing";
import type { KubeObject, Manager, ResourceType } from "@ktube/runtime";
import type { Accounts } from "./provider/accounts.ts";

export interface CloudflareOptions {
  /** Marks DNS records and Access apps as this installation's (like external-dns's --txt-owner-id). */
  ownerId: string;
  cloudflaredImage: string;
  /** Only TunnelProviders matching this label selector are served. */
  providerSelector?: string;
  maxConcurrentReconciles: number;
  /** How long a burst of binding changes is gathered before a tunnel's config is rebuilt. */
  configDelayMs: number;
}

export interface Context {
  manager: Manager;
  accounts: Accounts;
  options: CloudflareOptions;
}

export const PROVIDER_TYPE = "cloudflare";
export const FINALIZER = finalizerFor(PROVIDER_TYPE);

export const CLOUDFLARE: ProviderCapabilities = {
  provider: "Cloudflare",
  protocols: ["HTTP", "HTTPS", "TCP"],
  hostnameRequired: ["HTTP", "HTTPS", "TCP"],
  unsupportedFields: ["listenPort", "tls", "proxyProtocol", "udp"],
  addressTargets: false,
  // A TCP route takes its whole hostname, as a route for path "/" does.
  claimKey: (route) => (route.hostname ? `${route.hostname}${route.protocol === "TCP" ? "/" : (route.path ?? "/")}` : undefined),
};

export const providerSelector = (ctx: Context) => (ctx.options.providerSelector ? { labelSelector: ctx.options.providerSelector } : {});

export function getProvider(ctx: Context, name: string): TunnelProvider | undefined {
  return ctx.manager.cache.get<TunnelProvider & KubeObject>(TunnelProviderResource, undefined, name, providerSelector(ctx));
}

/** The provider of a tunnel if this controller serves it; `undefined` when it is not ours to touch. */
export function servedProvider(ctx: Context, tunnel: Tunnel): TunnelProvider | undefined {
  const provider = getProvider(ctx, tunnel.spec.providerRef.name);
  return provider?.spec.type === PROVIDER_TYPE ? provider : undefined;
}

export function allBindings(ctx: Context): TunnelBinding[] {
  return ctx.manager.cache.list<TunnelBinding & KubeObject>(TunnelBindingResource);
}

export function allTunnels(ctx: Context): Tunnel[] {
  return ctx.manager.cache.list<Tunnel & KubeObject>(TunnelResource);
}

export function tunnelView(ctx: Context, tunnel: Tunnel): TunnelView {
  const cache = ctx.manager.cache;
  return {
    tunnel,
    bindings: allBindings(ctx).filter((b) => refersTo(b, tunnel)),
    services: (ns, name) => cache.get<ServiceLike & KubeObject>(Core.Service, ns, name),
    namespaces: (name) => cache.get<NamespaceLike & KubeObject>(Core.Namespace, undefined, name),
  };
}

export function tunnelOf(ctx: Context, binding: TunnelBinding): Tunnel | undefined {
  const ref = binding.spec.tunnelRef;
  return ctx.manager.cache.get<Tunnel & KubeObject>(TunnelResource, ref.namespace ?? binding.metadata.namespace, ref.name);
}

/**
 * Sets conditions on a copy of `conditions` and records an Event for each one whose
 * status or reason changed: Warning when it turned False, Normal otherwise.
 */
export async function applyConditions(
  ctx: Context,
  object: KubeObject,
  conditions: Condition[] | undefined,
  updates: ConditionInput[],
  generation: number | undefined,
): Promise<Condition[]> {
  let next = conditions ?? [];
  for (const update of updates) {
    const before = next.find((c) => c.type === update.type);
    next = setCondition(next, update, generation);
    if (before?.status !== update.status || before?.reason !== update.reason) {
      const type = update.status === "False" ? "Warning" : "Normal";
      if (type === "Warning" || update.type === "Ready") {
        await ctx.manager.events.record(object, type, update.reason, "Reconcile", update.message || `${update.type} is ${update.status}`);
      }
    }
  }
  return next;
}

export const FIELD_MANAGER = "ktube-cloudflare-controller";

/** Server-side apply of an object this controller owns. */
export async function applyOwned(ctx: Context, type: ResourceType, object: KubeObject): Promise<void> {
  await ctx.manager.client.apply(type, object, FIELD_MANAGER);
}
