// The Cloudflare Tunnel plugin: named tunnels on an account (cfd_tunnel, cloudflared,
// DNS, Access) and zero-account quick tunnels, run by @ktube/provider-kit.
import { Core, TunnelBindingResource, TunnelResource, type ConditionInput, type SecretKeyRef } from "@ktube/api";
import { ProviderError, type ProviderKit, type ProviderObject, type ProviderPlugin, type TunnelContext } from "@ktube/provider-kit";
import type { ProviderCapabilities } from "@ktube/routing";
import { PatchType } from "@ktube/runtime";
import { clusterQuickTunnelEndpoint } from "./manifests/quick-tunnel.ts";
import { CloudflareSessions, type AccountSession } from "./provider/sessions.ts";
import { CloudflareError } from "./provider/errors.ts";
import { verifyToken } from "./provider/token.ts";
import { cleanupNamedTunnel, NamedTunnelMemory, reconcileNamedTunnel } from "./provider/named-tunnel.ts";
import { QUICK_TUNNEL_CAPABILITIES, reconcileQuickBinding, type QuickTunnelEndpoint } from "./provider/quick-tunnels.ts";
import { AccessGate, releaseBindingRoutes, reconcileBindingRoutes, type RouteOptions } from "./provider/routes.ts";
import { ZonePlanner } from "./provider/zone-planner.ts";
import { registerAccessSweep } from "./provider/access-sweep.ts";

export const CLOUDFLARE_CAPABILITIES: ProviderCapabilities = {
  provider: "Cloudflare",
  protocols: ["HTTP", "HTTPS", "TCP"],
  hostnameRequired: ["HTTP", "HTTPS", "TCP"],
  unsupportedFields: ["listenPort", "tls", "proxyProtocol", "udp"],
  addressTargets: false,
  // cloudflared routes a TCP hostname as a whole: no path can share it.
  wholeHostnameProtocols: ["TCP"],
};

/** A provider's session: an API token on an account, or quick tunnels (no account). */
export type CloudflareSession = { kind: "account"; account: AccountSession } | { kind: "quick" };

export interface CloudflarePluginOptions {
  /** Marks DNS records and Access applications of this installation (like external-dns's --txt-owner-id). */
  ownerId: string;
  cloudflaredImage: string;
  apiUrl?: string;
  /** Calls per token per 5 minutes (Cloudflare blocks a token for 5 minutes past 1200). */
  callsPer5m?: number;
  /** Where quick tunnel URLs are read (tests stand in for the connectors' /quicktunnel). */
  quickTunnelEndpoint?: QuickTunnelEndpoint;
  /** Binding changes are gathered this long before DNS is planned (default: the kit's config delay). */
  dnsDelayMs?: number;
}

const TUNNELS_BY_CLOUDFLARE_ID = "cloudflare-tunnel-id";
const REVERIFY_MS = 60 * 60_000;

export function cloudflarePlugin(options: CloudflarePluginOptions): ProviderPlugin<CloudflareSession> {
  let sessions: CloudflareSessions | undefined;
  let kit: ProviderKit<CloudflareSession> | undefined;
  let planner: ZonePlanner<CloudflareSession> | undefined;
  const gate = new AccessGate();
  const memory = new NamedTunnelMemory();
  /** Account sessions by how many providers use them (two providers may share an account and token). */
  const inUse = new Map<AccountSession, number>();
  const account = (s: CloudflareSession): AccountSession => {
    if (s.kind !== "account") throw new ProviderError("InvalidSpec", "this provider uses quick tunnels and has no account", { terminal: true });
    return s.account;
  };
  const named = (ctx: TunnelContext<CloudflareSession>): TunnelContext<AccountSession> => ({ ...ctx, session: account(ctx.session) });
  const routeOptions: RouteOptions = {
    ownerId: options.ownerId,
    gate,
    dns: {
      outcome: (provider, hostname, tunnelId) => planner!.outcome(provider, hostname, tunnelId),
      replan: (provider) => planner!.replan(provider),
      release: (provider, binding) => planner!.release(provider, binding),
    },
    async annotate({ binding }, key, value) {
      await kit!.manager.client.patch(TunnelBindingResource, binding.metadata.namespace, binding.metadata.name!, { metadata: { annotations: { [key]: value ?? null } } }, PatchType.merge);
    },
  };

  return {
    type: "cloudflare",
    displayName: "Cloudflare",
    setup(k) {
      kit = k;
      sessions = new CloudflareSessions({
        metrics: k.manager.metrics,
        ...(options.apiUrl ? { baseURL: options.apiUrl } : {}),
        ...(options.callsPer5m ? { budget: { callsPerWindow: options.callsPer5m } } : {}),
      });
      k.manager.cache.addIndex(TunnelResource, TUNNELS_BY_CLOUDFLARE_ID, (t) =>
        [...new Set([t.status?.tunnelId, t.spec.cloudflare?.existingTunnelId].filter((id): id is string => Boolean(id)))],
      );
      planner = new ZonePlanner(k, {
        ownerId: options.ownerId,
        delayMs: options.dnsDelayMs ?? k.options.configDelayMs ?? 1000,
        accountOf: (provider) => accountOf(k, provider),
        publishable: (binding, route) => gate.publishable(binding, route),
      });
      planner.register();
      registerAccessSweep(k, { ownerId: options.ownerId, accountOf: (provider) => accountOf(k, provider) });
    },
    capabilities: (provider) => (provider.spec.cloudflare?.quickTunnels ? QUICK_TUNNEL_CAPABILITIES : CLOUDFLARE_CAPABILITIES),
    credentialRefs: (provider): Record<string, SecretKeyRef> => {
      const spec = provider.spec.cloudflare;
      return !spec || spec.quickTunnels || !spec.apiTokenSecretRef ? {} : { token: spec.apiTokenSecretRef };
    },
    connect(provider, credentials) {
      const spec = provider.spec.cloudflare;
      if (spec?.quickTunnels) return { kind: "quick" };
      if (!spec?.accountId || !credentials.token) throw new ProviderError("InvalidSpec", "spec.cloudflare needs accountId and apiTokenSecretRef", { terminal: true });
      const account = sessions!.session(spec.accountId, credentials.token);
      inUse.set(account, (inUse.get(account) ?? 0) + 1);
      return { kind: "account", account };
    },
    disconnect(session) {
      if (session.kind !== "account") return;
      const users = (inUse.get(session.account) ?? 1) - 1;
      if (users > 0) inUse.set(session.account, users);
      else inUse.delete(session.account);
      // Sessions (and token budgets) no provider uses any more are dropped.
      sessions!.retain(inUse.keys());
    },
    async verify(session) {
      if (session.kind === "quick") {
        return { ready: { type: "Ready", status: "True", reason: "QuickTunnels", message: "quick tunnels need no account (development only: random URLs, no uptime guarantee)" } };
      }
      return { ready: await tokenCondition(session.account), recheckAfterMs: REVERIFY_MS };
    },
    tunnel: {
      owns: [Core.Deployment, Core.PodDisruptionBudget],
      async reconcile(ctx) {
        if (ctx.session.kind === "quick") {
          // Each binding route gets its own connector: the tunnel itself has nothing to apply.
          const routes = new Map(ctx.accepted.map(({ binding, routes: rs }) => [`${binding.metadata.namespace}/${binding.metadata.name}`, new Map(rs.map((r) => [r.route.name, { ready: true }]))]));
          return {
            conditions: [{ type: "Ready", status: "True", reason: "QuickTunnels", message: "each route gets its own cloudflared connector and a random trycloudflare.com URL (development only)" }],
            routes,
          };
        }
        return reconcileNamedTunnel(named(ctx), {
          cloudflaredImage: options.cloudflaredImage,
          memory,
          otherUsers: (id, uid) =>
            kit!.manager.cache
              .byIndex(TunnelResource, TUNNELS_BY_CLOUDFLARE_ID, id)
              .filter((t) => t.metadata.uid !== uid && !t.metadata.deletionTimestamp)
              .map((t) => `${t.metadata.namespace}/${t.metadata.name}`),
        });
      },
      async cleanup(ctx) {
        if (ctx.session.kind === "quick") return;
        await cleanupNamedTunnel(named(ctx), memory);
      },
    },
    binding: {
      owns: [Core.Deployment, Core.Service],
      // Quick tunnels hold nothing at Cloudflare: their connectors are Kubernetes objects the binding owns.
      holdsProviderState: (provider) => !provider.spec.cloudflare?.quickTunnels,
      async reconcile(ctx) {
        if (ctx.session.kind === "quick") {
          return reconcileQuickBinding(ctx, options.cloudflaredImage, options.quickTunnelEndpoint ?? clusterQuickTunnelEndpoint);
        }
        // A provider switched from quick tunnels to an account: the binding's quick connectors go.
        await ctx.objects.prune(Core.Deployment);
        await ctx.objects.prune(Core.Service);
        return reconcileBindingRoutes({ ...ctx, session: ctx.session.account }, routeOptions);
      },
      async release(ctx) {
        if (ctx.session.kind === "quick") return;
        await releaseBindingRoutes({ ...ctx, session: ctx.session.account }, routeOptions);
      },
    },
    forgetTunnel: (uid) => memory.forget(uid),
  };
}

/** A provider's account session; undefined for quick tunnels or credentials that do not work. */
function accountOf(kit: ProviderKit<CloudflareSession>, provider: ProviderObject): AccountSession | undefined {
  const { session } = kit.sessions.of(provider);
  return session?.kind === "account" ? session.account : undefined;
}

/** The provider's Ready condition from Cloudflare's answer about its token. */
async function tokenCondition(session: AccountSession): Promise<ConditionInput> {
  const { api } = session;
  try {
    const result = await verifyToken(api);
    if (result.status !== "active") return { type: "Ready", status: "False", reason: "TokenNotActive", message: `the API token is ${result.status}` };
    return { type: "Ready", status: "True", reason: "CredentialsVerified", message: `token verified for account ${api.accountId}` };
  } catch (error) {
    if (error instanceof CloudflareError && error.reason === "AuthenticationFailed") {
      return { type: "Ready", status: "False", reason: "TokenRejected", message: `Cloudflare rejected the API token: ${error.message}` };
    }
    throw error;
  }
}
