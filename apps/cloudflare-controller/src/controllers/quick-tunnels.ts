// Bindings on a quick-tunnel provider (`quickTunnels: true`): no account, no DNS; one
// cloudflared connector per route, whose random trycloudflare.com URL goes to status.
import { Core, type TunnelBinding } from "@ktube/api";
import { bindingKey, evaluateTunnel, unboundVerdict, type ProviderCapabilities } from "@ktube/routing";
import { ignoreNotFound, type KubeObject } from "@ktube/runtime";
import { applyOwned, tunnelView, type Context } from "../context.ts";
import { specHashOf } from "../manifests/cloudflared.ts";
import { QUICK_TUNNEL_LABEL, quickTunnelDeployment, quickTunnelName, quickTunnelService } from "../manifests/quick-tunnel.ts";

export const QUICK_TUNNELS: ProviderCapabilities = {
  provider: "Cloudflare quick tunnels",
  protocols: ["HTTP", "HTTPS"],
  hostnameRequired: [],
  // The URL is random and covers the whole origin: nothing to choose, nothing to protect.
  unsupportedFields: ["hostname", "path", "access", "listenPort", "tls", "proxyProtocol", "udp"],
  addressTargets: false,
  claimKey: () => undefined,
};

export interface RouteOutcome {
  ready: boolean;
  url?: string;
  message?: string;
}

export const QUICK_SELECTOR = { labelSelector: QUICK_TUNNEL_LABEL };
const POLL_NOT_READY_MS = 10_000;
const POLL_READY_MS = 60_000;

interface DeploymentObject extends KubeObject {
  status?: { availableReplicas?: number };
}

/** Reads a connector's URL from its /quicktunnel endpoint. */
export type QuickTunnelEndpoint = (namespace: string, name: string) => string;

export async function reconcileQuickBinding(
  ctx: Context,
  binding: TunnelBinding & KubeObject,
  tunnel: Parameters<typeof tunnelView>[1],
  endpoint: QuickTunnelEndpoint,
): Promise<{ verdict: ReturnType<typeof unboundVerdict>; progress: Map<string, RouteOutcome>; requeueAfterMs: number }> {
  const { manager } = ctx;
  const verdict = evaluateTunnel(tunnelView(ctx, tunnel), QUICK_TUNNELS).get(bindingKey(binding)) ?? unboundVerdict(binding, "Pending", "waiting for the tunnel");
  const ns = binding.metadata.namespace!;
  const wanted = new Set<string>();
  const progress = new Map<string, RouteOutcome>();
  let allReady = true;
  if (verdict.accepted.status === "True") {
    for (const { resolved } of verdict.routes) {
      if (!resolved) continue;
      const name = quickTunnelName(binding, resolved.route.name);
      wanted.add(name);
      const scheme = resolved.route.protocol === "HTTPS" ? "https" : "http";
      const deployment = quickTunnelDeployment(binding, resolved.route.name, `${scheme}://${resolved.host}:${resolved.port}`, ctx.options.cloudflaredImage);
      const service = quickTunnelService(binding, resolved.route.name);
      const current = manager.cache.get<DeploymentObject>(Core.Deployment, ns, name, QUICK_SELECTOR);
      if (specHashOf(current) !== specHashOf(deployment)) await applyOwned(ctx, Core.Deployment, deployment);
      if (specHashOf(manager.cache.get(Core.Service, ns, name)) !== specHashOf(service)) await applyOwned(ctx, Core.Service, service);
      const outcome = (current?.status?.availableReplicas ?? 0) > 0 ? await readUrl(endpoint(ns, name)) : { ready: false, message: "waiting for the quick tunnel connector" };
      allReady &&= outcome.ready;
      progress.set(resolved.route.name, outcome);
    }
  }
  // Connectors of routes that are gone (or of a binding no longer accepted) go too.
  const owned = manager.cache
    .list<KubeObject>(Core.Deployment, { namespace: ns }, QUICK_SELECTOR)
    .filter((d) => d.metadata?.labels?.[QUICK_TUNNEL_LABEL] === binding.metadata.name && d.metadata?.ownerReferences?.some((o) => o.uid === binding.metadata.uid));
  for (const d of owned.filter((d) => !wanted.has(d.metadata!.name!))) {
    await manager.client.delete(Core.Deployment, ns, d.metadata!.name!).catch(ignoreNotFound);
    await manager.client.delete(Core.Service, ns, d.metadata!.name!).catch(ignoreNotFound);
  }
  return { verdict, progress, requeueAfterMs: allReady ? POLL_READY_MS : POLL_NOT_READY_MS };
}

async function readUrl(url: string): Promise<RouteOutcome> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
    const body = (await res.json()) as { hostname?: string };
    if (!res.ok || !body.hostname) return { ready: false, message: "the quick tunnel connector has no URL yet" };
    return { ready: true, url: `https://${body.hostname}/` };
  } catch (error) {
    return { ready: false, message: `cannot read the quick tunnel URL: ${(error as Error).message}` };
  }
}


