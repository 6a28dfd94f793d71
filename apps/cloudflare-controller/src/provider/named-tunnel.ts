// A named (remote-managed) Cloudflare tunnel for a Tunnel: the cfd_tunnel (created
// with a deterministic name, or adopted), its connector token and cloudflared
// Deployment, and one ingress configuration built from every accepted binding.
import { Core, type ConditionInput } from "@ktube/api";
import { bindingKey } from "@ktube/routing";
import { ProviderError, ProviderRateLimited, type RouteOutcomes, type TunnelContext, type TunnelOutcome } from "@ktube/provider-kit";
import { cloudflaredName, deployment, disruptionBudget, tokenSecret } from "../manifests/cloudflared.ts";
import type { AccountSession } from "./sessions.ts";
import { renderIngressConfig, routeUrl, type IngressConfig } from "./ingress.ts";
import { deleteTunnel, findOrCreateTunnel, getIngressConfig, getTunnel, putIngressConfig, tunnelName, tunnelToken, type CfTunnel } from "./tunnels.ts";

/** A tunnel that is not ready is looked at again after this, doubling while it stays down. */
const NOT_READY_POLL_MS = 30_000;
const NOT_READY_POLL_MAX_MS = 5 * 60_000;
/**
 * cloudflared replicas that are available register with Cloudflare within seconds, and no
 * event says when: a tunnel waiting for that is looked at again this soon, this many
 * times, before the backoff above. (The account's tunnel listing is shared: cheap.)
 */
const CONNECTING_POLL_MS = 3_000;
const CONNECTING_POLLS = 5;
/** The connector token Secret is not watched (that would need cluster-wide Secret reads): re-applied this often while connectors are down. */
const TOKEN_REAPPLY_MS = 10 * 60_000;
/** Cloudflare's copy of the ingress configuration is read again this often, so an edit made elsewhere is reverted. */
const CONFIG_REREAD_MS = 10 * 60_000;

interface DeploymentLike {
  status?: { availableReplicas?: number };
}

/** What is remembered between reconciles, by Tunnel uid and Cloudflare tunnel id. */
export class NamedTunnelMemory {
  /** Cloudflare tunnel id -> the ingress config last PUT (or read), and when it was last read from Cloudflare. */
  readonly config = new Map<string, { json: string; readAt: number }>();
  /** Tunnel uid -> the tunnel id whose token Secret was applied, and when. */
  readonly token = new Map<string, { tunnelId: string; at: number }>();
  /** Tunnel uid -> how many polls in a row found it not ready (the poll backs off). */
  readonly downPolls = new Map<string, number>();
  /** Tunnel uid -> how many polls in a row found its replicas available but not yet connected. */
  readonly connectingPolls = new Map<string, number>();
  /** Tunnel uid -> Cloudflare tunnel id, to prune the maps above. */
  private readonly ids = new Map<string, string>();

  remember(uid: string, tunnelId: string): void {
    this.ids.set(uid, tunnelId);
  }

  forget(uid: string): void {
    const id = this.ids.get(uid);
    this.ids.delete(uid);
    this.token.delete(uid);
    this.downPolls.delete(uid);
    this.connectingPolls.delete(uid);
    if (id) this.config.delete(id);
  }
}

export interface NamedTunnelOptions {
  cloudflaredImage: string;
  memory: NamedTunnelMemory;
  /** Tunnels (other than `uid`) that already use Cloudflare tunnel `id`, as namespace/name. */
  otherUsers(id: string, uid: string): string[];
}

export async function reconcileNamedTunnel(ctx: TunnelContext<AccountSession>, options: NamedTunnelOptions): Promise<TunnelOutcome> {
  const { session, objects } = ctx;
  const { api } = session;
  const { memory } = options;
  let tunnel = ctx.tunnel;
  const uid = tunnel.metadata.uid!;

  // 1. The Cloudflare tunnel: resumed from status, adopted, or found/created by its deterministic name.
  let tunnelId = tunnel.status?.tunnelId;
  let cf: CfTunnel | undefined;
  if (!tunnelId) {
    const adopt = tunnel.spec.cloudflare?.existingTunnelId;
    if (adopt) {
      const users = options.otherUsers(adopt, uid);
      if (users.length > 0) {
        throw new ProviderError("TunnelInUse", `Cloudflare tunnel ${adopt} is already used by Tunnel ${users.join(", ")}; two Tunnels would overwrite each other's configuration`, { terminal: true });
      }
      cf = await getTunnel(api, adopt);
      if (!cf || cf.deleted_at) throw new ProviderError("TunnelNotFound", `existingTunnelId ${adopt} is not a tunnel of account ${api.accountId}`, { terminal: true });
      tunnel = await ctx.saveStatus({ tunnelId: adopt, adopted: true });
      session.health.forget();
    } else {
      cf = await findOrCreateTunnel(api, tunnelName(tunnel));
      // Written at once: a restart from here on resumes with this tunnel instead of making another.
      tunnel = await ctx.saveStatus({ tunnelId: cf.id, adopted: false });
      session.health.forget();
    }
    tunnelId = cf.id;
  } else {
    // Connections from the account's shared listing; a tunnel missing from it is
    // confirmed with one GET (the listing may predate it) before it counts as gone.
    cf = (await session.health.tunnel(api, tunnelId)) ?? (await getTunnel(api, tunnelId));
    if (!cf) {
      memory.forget(uid);
      if (tunnel.status?.adopted) {
        throw new ProviderError("TunnelNotFound", `the adopted Cloudflare tunnel ${tunnelId} no longer exists; KTube does not recreate tunnels it did not create`, { terminal: true });
      }
      // Deleted behind our back: the next reconcile makes a new one.
      await ctx.saveStatus({ tunnelId: undefined });
      throw new ProviderError("TunnelNotFound", `Cloudflare tunnel ${tunnelId} no longer exists; it will be recreated`);
    }
  }
  memory.remember(uid, tunnelId);

  // 2. Connector: token Secret, cloudflared Deployment (+ PDB), all ownership-checked.
  const live = objects.get(Core.Deployment, cloudflaredName(tunnel)) as DeploymentLike | undefined;
  const available = live?.status?.availableReplicas ?? 0;
  const applied = memory.token.get(uid);
  if (applied?.tunnelId !== tunnelId || (available === 0 && Date.now() - applied.at > TOKEN_REAPPLY_MS)) {
    await objects.ensure(Core.Secret, tokenSecret(tunnel, await tunnelToken(api, tunnelId)));
    memory.token.set(uid, { tunnelId, at: Date.now() });
  }
  await objects.ensure(Core.Deployment, deployment(tunnel, options.cloudflaredImage));
  const pdb = disruptionBudget(tunnel);
  if (pdb) await objects.ensure(Core.PodDisruptionBudget, pdb);
  else await objects.delete(Core.PodDisruptionBudget, cloudflaredName(tunnel));

  // 3. The ingress configuration: PUT only when it differs from Cloudflare's copy.
  const config = renderIngressConfig(ctx.accepted.flatMap((a) => a.routes));
  let configApplied: ConditionInput = { type: "ConfigApplied", status: "True", reason: "ConfigApplied", message: "Cloudflare has this tunnel's ingress configuration" };
  const wanted = JSON.stringify(config);
  const known = memory.config.get(tunnelId);
  if (!known || Date.now() - known.readAt > CONFIG_REREAD_MS) {
    memory.config.set(tunnelId, { json: JSON.stringify(normalise(await getIngressConfig(api, tunnelId))), readAt: Date.now() });
  }
  if (memory.config.get(tunnelId)!.json !== wanted) {
    try {
      await putIngressConfig(api, tunnelId, config);
      memory.config.set(tunnelId, { json: wanted, readAt: memory.config.get(tunnelId)!.readAt });
    } catch (error) {
      if (!(error instanceof ProviderError && error.reason === "ConfigRejected")) {
        // The PUT may or may not have landed: read it again next time. A rate-limited PUT
        // never left (or was refused), and re-reading would only spend more of the budget.
        if (!(error instanceof ProviderRateLimited)) memory.config.delete(tunnelId);
        throw error;
      }
      configApplied = { type: "ConfigApplied", status: "False", reason: "ConfigRejected", message: error.message };
    }
  }

  // 4. Readiness and each route's outcome.
  const connections = cf.connections?.length ?? 0;
  const replicas = tunnel.spec.cloudflare?.replicas ?? 2;
  const connectors: ConditionInput =
    connections > 0 && available > 0
      ? { type: "ConnectorsReady", status: "True", reason: "Connected", message: `cloudflared is connected to Cloudflare (${replicas} replicas wanted)` }
      : {
          type: "ConnectorsReady",
          status: "False",
          reason: available === 0 ? "ConnectorsUnavailable" : "NotConnected",
          message: available === 0 ? "no cloudflared replica is available" : "cloudflared runs but has no connection to Cloudflare",
        };
  const ready: ConditionInput =
    configApplied.status === "False"
      ? { type: "Ready", status: "False", reason: configApplied.reason, message: configApplied.message }
      : connectors.status === "True"
        ? { type: "Ready", status: "True", reason: "TunnelReady", message: `Cloudflare tunnel ${tunnelId} is connected and configured` }
        : { type: "Ready", status: "False", reason: connectors.reason, message: connectors.message };
  const routes = new Map<string, RouteOutcomes>();
  for (const { binding, routes: resolved } of ctx.accepted) {
    const outcomes: RouteOutcomes = new Map();
    for (const { route } of resolved) {
      if (configApplied.status === "False") outcomes.set(route.name, { ready: false, reason: "ConfigRejected", message: configApplied.message });
      else if (ready.status !== "True") outcomes.set(route.name, { ready: false, reason: "TunnelNotReady", message: `waiting for the tunnel's connectors: ${connectors.message}` });
      else {
        const url = routeUrl(route);
        outcomes.set(route.name, { ready: true, ...(url ? { url } : {}) });
      }
    }
    routes.set(bindingKey(binding), outcomes);
  }
  // A tunnel that stays down is polled less and less often (its connectors' events still wake it at once),
  // except for a few quick looks while available replicas are still registering.
  const downPolls = ready.status === "True" ? 0 : (memory.downPolls.get(uid) ?? 0) + 1;
  memory.downPolls.set(uid, downPolls);
  const connectingPolls = connectors.reason === "NotConnected" ? (memory.connectingPolls.get(uid) ?? 0) + 1 : 0;
  memory.connectingPolls.set(uid, connectingPolls);
  const notReadyPollMs =
    connectingPolls > 0 && connectingPolls <= CONNECTING_POLLS ? CONNECTING_POLL_MS : Math.min(NOT_READY_POLL_MS * 2 ** (downPolls - 1), NOT_READY_POLL_MAX_MS);
  return {
    status: { tunnelId, adopted: Boolean(tunnel.status?.adopted) },
    conditions: [configApplied, connectors, ready],
    routes,
    ...(downPolls > 0 ? { requeueAfterMs: notReadyPollMs } : {}),
  };
}

export async function cleanupNamedTunnel(ctx: TunnelContext<AccountSession>, memory: NamedTunnelMemory): Promise<void> {
  const { tunnel } = ctx;
  // Stop the connectors first, so Cloudflare sees no live connections when the tunnel goes.
  await ctx.objects.delete(Core.Deployment, cloudflaredName(tunnel));
  memory.forget(tunnel.metadata.uid!);
  const tunnelId = tunnel.status?.tunnelId;
  if (!tunnelId || tunnel.status?.adopted) return; // adopted: never deleted by KTube
  await deleteTunnel(ctx.session.api, tunnelId);
  ctx.session.health.forget();
}

/** Cloudflare's answer for a tunnel that never had a configuration, in our terms. */
function normalise(config: IngressConfig | undefined): IngressConfig | undefined {
  return config && Array.isArray(config.ingress) ? { ingress: config.ingress } : undefined;
}

