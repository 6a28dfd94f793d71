// Bindings on a quick-tunnel provider (`quickTunnels: true`): no account, no DNS; one
// cloudflared connector per route, owned by the binding, whose random
// trycloudflare.com URL goes to status. Development only.
import { Core } from "@ktube/api";
import type { ProviderCapabilities } from "@ktube/routing";
import type { BindingContext, BindingWork, RouteOutcome, RouteOutcomes } from "@ktube/provider-kit";
import { quickTunnelDeployment, quickTunnelName, quickTunnelService } from "../manifests/quick-tunnel.ts";

export const QUICK_TUNNEL_CAPABILITIES: ProviderCapabilities = {
  provider: "Cloudflare quick tunnels",
  protocols: ["HTTP", "HTTPS"],
  hostnameRequired: [],
  // The URL is random and covers the whole origin: nothing to choose, nothing to protect.
  unsupportedFields: ["hostname", "path", "access", "listenPort", "tls", "proxyProtocol", "udp"],
  addressTargets: false,
  wholeHostnameProtocols: [],
};

const POLL_NOT_READY_MS = 10_000;
const POLL_READY_MS = 60_000;
/** Quick tunnel URLs are https on a random label of this domain; anything else in /quicktunnel is refused. */
const QUICK_TUNNEL_DOMAIN = ".trycloudflare.com";

/** Reads a connector's URL from its /quicktunnel endpoint. */
export type QuickTunnelEndpoint = (namespace: string, name: string) => string;

interface DeploymentLike {
  status?: { availableReplicas?: number };
}

export async function reconcileQuickBinding(ctx: BindingContext<object>, image: string, endpoint: QuickTunnelEndpoint): Promise<BindingWork> {
  const { binding, verdict, objects } = ctx;
  const ns = binding.metadata.namespace!;
  const wanted: string[] = [];
  const routes: RouteOutcomes = new Map();
  for (const { resolved } of verdict.routes) {
    if (!resolved) continue;
    const name = quickTunnelName(binding, resolved.route.name);
    wanted.push(name);
    const scheme = resolved.route.protocol === "HTTPS" ? "https" : "http";
    await objects.ensure(Core.Deployment, quickTunnelDeployment(binding, resolved.route.name, `${scheme}://${resolved.host}:${resolved.port}`, image));
    await objects.ensure(Core.Service, quickTunnelService(binding, resolved.route.name));
    const live = objects.get(Core.Deployment, name) as DeploymentLike | undefined;
    routes.set(
      resolved.route.name,
      (live?.status?.availableReplicas ?? 0) > 0 ? await readUrl(endpoint(ns, name)) : { ready: false, reason: "ConnectorNotReady", message: "waiting for the quick tunnel connector" },
    );
  }
  // Connectors of routes that are gone go too.
  await objects.prune(Core.Deployment, wanted);
  await objects.prune(Core.Service, wanted);
  const allReady = [...routes.values()].every((r) => r.ready);
  return { routes, requeueAfterMs: allReady ? POLL_READY_MS : POLL_NOT_READY_MS };
}

/** The URL a connector reports, accepted only under trycloudflare.com (the pod behind it is the tenant's). */
async function readUrl(url: string): Promise<RouteOutcome> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
    const body = (await res.json()) as { hostname?: unknown };
    if (!res.ok || typeof body.hostname !== "string" || !body.hostname) return { ready: false, reason: "ConnectorNotReady", message: "the quick tunnel connector has no URL yet" };
    const hostname = body.hostname.toLowerCase();
    if (!/^[a-z0-9-]+\.trycloudflare\.com$/.test(hostname) || !hostname.endsWith(QUICK_TUNNEL_DOMAIN)) {
      return { ready: false, reason: "InvalidQuickTunnelURL", message: `the quick tunnel connector reported ${JSON.stringify(body.hostname).slice(0, 100)}, which is not a trycloudflare.com hostname` };
    }
    return { ready: true, url: `https://${hostname}/` };
  } catch (error) {
    return { ready: false, reason: "ConnectorNotReady", message: `cannot read the quick tunnel URL: ${(error as Error).message}` };
  }
}
