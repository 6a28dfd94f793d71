// Tunnel (of a cloudflare provider): the cfd_tunnel, its connector token, the
// cloudflared Deployment, and the tunnel's ingress configuration built from every
// accepted binding.
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource, type ConditionInput, type Tunnel, type TunnelStatus } from "@ktube/api";
import { finalize, hasFinalizer } from "@ktube/finalizers";
import { evaluateTunnel, refersTo } from "@ktube/routing";
import { generationChanged, ignoreNotFound, type KubeObject, type Request } from "@ktube/runtime";
import {
  allBindings,
  allTunnels,
  applyConditions,
  applyOwned,
  CLOUDFLARE,
  FINALIZER,
  getProvider,
  providerSelector,
  servedProvider,
  tunnelView,
  type Context,
} from "../context.ts";
import { cloudflaredName, deployment, disruptionBudget, MANAGED_BY, specHashOf, tokenSecret } from "../manifests/cloudflared.ts";
import { isProblem, type AccountSession } from "../provider/accounts.ts";
import { renderIngressConfig, type IngressConfig } from "../provider/ingress.ts";
import { QUICK_TUNNELS } from "./quick-tunnels.ts";
import { deleteTunnel, findOrCreateTunnel, getIngressConfig, getTunnel, putIngressConfig, tunnelName, tunnelToken, type CfTunnel } from "../provider/tunnels.ts";

type TunnelObject = Tunnel & KubeObject & { status?: TunnelStatus };
interface DeploymentObject extends KubeObject {
  status?: { availableReplicas?: number };
}

const NOT_READY_POLL_MS = 30_000;
/** How long Cloudflare's answer about a tunnel's connections is reused. */
const OBSERVED_TTL_MS = 25_000;
const TOKEN_REAPPLY_MS = 10 * 60_000;
const managed = { labelSelector: `app.kubernetes.io/managed-by=${MANAGED_BY}` };

export function setupTunnelController(ctx: Context): void {
  const { manager } = ctx;
  /** The ingress config last PUT (or read) per Cloudflare tunnel id. */
  const appliedConfig = new Map<string, string>();
  /** Tunnel uid -> the tunnel id whose token Secret was applied, and when. */
  const appliedToken = new Map<string, { tunnelId: string; at: number }>();
  /** Cloudflare tunnel id -> the tunnel as last read, and when. */
  const observed = new Map<string, { tunnel: CfTunnel; at: number }>();

  const tunnelsOfBinding = (b: KubeObject) => allTunnels(ctx).filter((t) => refersTo(b as never, t)).map((t) => `${t.metadata.namespace}/${t.metadata.name}`);

  manager
    .controller("tunnel")
    .for(TunnelResource, { predicates: [generationChanged] })
    .owns(Core.Deployment, managed)
    .owns(Core.PodDisruptionBudget, managed)
    .watches(TunnelBindingResource, tunnelsOfBinding, { delayMs: ctx.options.configDelayMs, predicates: [generationChanged] })
    .watches(
      Core.Service,
      (svc) =>
        allBindings(ctx)
          .filter((b) => b.metadata.namespace === svc.metadata?.namespace && b.spec.routes.some((r) => r.service?.name === svc.metadata?.name))
          .flatMap((b) => tunnelsOfBinding(b as KubeObject)),
      { delayMs: ctx.options.configDelayMs },
    )
    .watches(Core.Namespace, () => allTunnels(ctx).filter((t) => t.spec.allowedBindings?.namespaces?.from === "Selector").map((t) => `${t.metadata.namespace}/${t.metadata.name}`))
    .watches(
      TunnelProviderResource,
      (p) => allTunnels(ctx).filter((t) => t.spec.providerRef.name === p.metadata?.name).map((t) => `${t.metadata.namespace}/${t.metadata.name}`),
      providerSelector(ctx),
    )
    .withOptions({ maxConcurrentReconciles: ctx.options.maxConcurrentReconciles })
    .build(async ({ namespace, name }: Request) => {
      const tunnel = manager.cache.get<TunnelObject>(TunnelResource, namespace, name);
      if (!tunnel) return;
      const provider = servedProvider(ctx, tunnel);
      if (!provider) return reportMissingProvider(ctx, tunnel);
      if (provider.spec.cloudflare?.quickTunnels) {
        const verdicts = evaluateTunnel(tunnelView(ctx, tunnel), QUICK_TUNNELS);
        const boundRoutes = [...verdicts.values()].filter((v) => v.accepted.status === "True").reduce((n, v) => n + v.routes.filter((r) => r.resolved).length, 0);
        return setStatus(ctx, tunnel, { boundRoutes }, [
          { type: "Ready", status: "True", reason: "QuickTunnels", message: "each route gets its own cloudflared connector and a random trycloudflare.com URL (development only)" },
        ]);
      }
      const otherBlock = (["ngrok", "devtunnels", "edge"] as const).find((b) => tunnel.spec[b]);
      if (otherBlock) {
        return setStatus(ctx, tunnel, {}, [{ type: "Ready", status: "False", reason: "InvalidSpec", message: `TunnelProvider ${provider.metadata.name} is of type cloudflare, but the tunnel has a spec.${otherBlock} block` }]);
      }
      const session = ctx.accounts.session(provider);
      if (isProblem(session)) {
        const blocked = tunnel.metadata.deletionTimestamp && hasFinalizer(tunnel, FINALIZER);
        return setStatus(ctx, tunnel, {}, [
          {
            type: "Ready",
            status: "False",
            reason: "ProviderNotReady",
            message: `TunnelProvider ${provider.metadata.name}: ${session.message}${blocked ? `; the Cloudflare tunnel cannot be deleted until it is fixed (or remove the finalizer ${FINALIZER} to abandon it)` : ""}`,
          },
        ]);
      }
      return finalize(manager.client, TunnelResource, tunnel, FINALIZER, {
        apply: (current) => reconcileTunnel(ctx, current as TunnelObject, session, { appliedConfig, appliedToken, observed }),
        cleanup: (current) => cleanupTunnel(ctx, current as TunnelObject, session, appliedConfig),
      });
    });
}

async function reportMissingProvider(ctx: Context, tunnel: TunnelObject): Promise<void> {
  // Not ours unless it says so: a tunnel with a cloudflare block and no provider at all.
  if (!tunnel.spec.cloudflare || ctx.options.providerSelector || getProvider(ctx, tunnel.spec.providerRef.name)) return;
  await setStatus(ctx, tunnel, {}, [
    { type: "Ready", status: "False", reason: "ProviderNotFound", message: `TunnelProvider ${tunnel.spec.providerRef.name} not found` },
  ]);
}

interface TunnelMemory {
  appliedConfig: Map<string, string>;
  appliedToken: Map<string, { tunnelId: string; at: number }>;
  observed: Map<string, { tunnel: CfTunnel; at: number }>;
}

async function reconcileTunnel(ctx: Context, tunnel: TunnelObject, session: AccountSession, memory: TunnelMemory): Promise<{ requeueAfterMs?: number } | undefined> {
  const { appliedConfig, appliedToken, observed } = memory;
  const { manager } = ctx;
  const { api } = session;
  const adopted = tunnel.spec.cloudflare?.existingTunnelId;
  let tunnelId = tunnel.status?.tunnelId;
  let cf: CfTunnel | undefined;
  if (!tunnelId) {
    if (adopted) {
      cf = await getTunnel(api, adopted);
      if (!cf || cf.deleted_at) {
        return setStatus(ctx, tunnel, {}, [{ type: "Ready", status: "False", reason: "TunnelNotFound", message: `existingTunnelId ${adopted} is not a tunnel of account ${api.accountId}` }]);
      }
    } else {
      cf = await findOrCreateTunnel(api, tunnelName(tunnel));
    }
    tunnelId = cf.id;
    // Written at once: a restart from here on resumes with this tunnel instead of making another.
    tunnel = (await manager.status.update(TunnelResource, tunnel, { ...tunnel.status, tunnelId })) ?? tunnel;
  } else {
    // Cloudflare's view of the connections, read again only when it may have changed
    // something we report: binding churn alone does not cost a call per reconcile.
    // A tunnel without connections is read every time: that is what we wait for.
    const seen = observed.get(tunnelId);
    const fresh = seen && (seen.tunnel.connections?.length ?? 0) > 0 && Date.now() - seen.at < OBSERVED_TTL_MS;
    cf = fresh ? seen.tunnel : await getTunnel(api, tunnelId);
    if (cf && !cf.deleted_at) observed.set(tunnelId, { tunnel: cf, at: seen?.tunnel === cf ? seen.at : Date.now() });
    if (!cf || cf.deleted_at) {
      // Deleted behind our back: forget it; the next reconcile makes a new one (or reports the adopted one gone).
      appliedConfig.delete(tunnelId);
      await manager.status.update(TunnelResource, tunnel, { ...tunnel.status, tunnelId: undefined });
      throw new Error(`Cloudflare tunnel ${tunnelId} no longer exists; it will be recreated`);
    }
  }

  // Connector token Secret and cloudflared Deployment (+ PDB).
  const ns = tunnel.metadata.namespace!;
  const existingDeployment = manager.cache.get<DeploymentObject>(Core.Deployment, ns, cloudflaredName(tunnel), managed);
  const available = existingDeployment?.status?.availableReplicas ?? 0;
  // The token Secret is not watched (that would need cluster-wide Secret reads): it is
  // written once per tunnel id, and again at most every TOKEN_REAPPLY_MS while the
  // connectors are down, in case someone deleted or edited it.
  const applied = appliedToken.get(tunnel.metadata.uid!);
  if (applied?.tunnelId !== tunnelId || (available === 0 && Date.now() - applied.at > TOKEN_REAPPLY_MS)) {
    await applyOwned(ctx, Core.Secret, tokenSecret(tunnel, await tunnelToken(api, tunnelId)));
    appliedToken.set(tunnel.metadata.uid!, { tunnelId, at: Date.now() });
  }
  const desiredDeployment = deployment(tunnel, ctx.options.cloudflaredImage);
  if (specHashOf(existingDeployment) !== specHashOf(desiredDeployment)) await applyOwned(ctx, Core.Deployment, desiredDeployment);
  const pdb = disruptionBudget(tunnel);
  const existingPdb = manager.cache.get<KubeObject>(Core.PodDisruptionBudget, ns, cloudflaredName(tunnel), managed);
  if (pdb && specHashOf(existingPdb) !== specHashOf(pdb)) await applyOwned(ctx, Core.PodDisruptionBudget, pdb);
  if (!pdb && existingPdb) await manager.client.delete(Core.PodDisruptionBudget, ns, cloudflaredName(tunnel)).catch(ignoreNotFound);

  // The ingress configuration: PUT only when it differs from what Cloudflare has.
  const verdicts = evaluateTunnel(tunnelView(ctx, tunnel), CLOUDFLARE);
  const config = renderIngressConfig(verdicts.values());
  const wanted = JSON.stringify(config);
  if (!appliedConfig.has(tunnelId)) appliedConfig.set(tunnelId, JSON.stringify(normalise(await getIngressConfig(api, tunnelId))));
  if (appliedConfig.get(tunnelId) !== wanted) {
    await putIngressConfig(api, tunnelId, config);
    appliedConfig.set(tunnelId, wanted);
  }

  const boundRoutes = [...verdicts.values()].filter((v) => v.accepted.status === "True").reduce((n, v) => n + v.routes.filter((r) => r.resolved).length, 0);
  const connections = cf?.connections?.length ?? 0;
  const replicas = tunnel.spec.cloudflare?.replicas ?? 2;
  const connectors: ConditionInput =
    connections > 0 && available > 0
      ? { type: "ConnectorsReady", status: "True", reason: "Connected", message: `${available}/${replicas} cloudflared replicas available; ${connections} connections to Cloudflare` }
      : {
          type: "ConnectorsReady",
          status: "False",
          reason: available === 0 ? "ConnectorsUnavailable" : "NotConnected",
          message: `${available}/${replicas} cloudflared replicas available; ${connections} connections to Cloudflare`,
        };
  const ready: ConditionInput =
    connectors.status === "True"
      ? { type: "Ready", status: "True", reason: "TunnelReady", message: `Cloudflare tunnel ${tunnelId} serves ${boundRoutes} routes` }
      : { type: "Ready", status: "False", reason: connectors.reason, message: connectors.message };
  await setStatus(ctx, tunnel, { tunnelId, boundRoutes }, [
    { type: "ConfigApplied", status: "True", reason: "ConfigApplied", message: `${config.ingress.length - 1} ingress rules` },
    connectors,
    ready,
  ]);
  return ready.status === "True" ? undefined : { requeueAfterMs: NOT_READY_POLL_MS };
}

async function cleanupTunnel(ctx: Context, tunnel: TunnelObject, session: AccountSession, appliedConfig: Map<string, string>): Promise<void> {
  const tunnelId = tunnel.status?.tunnelId;
  // Stop the connectors first, so Cloudflare sees no live connections when the tunnel goes.
  await ctx.manager.client.delete(Core.Deployment, tunnel.metadata.namespace, cloudflaredName(tunnel)).catch(ignoreNotFound);
  if (!tunnelId) return;
  appliedConfig.delete(tunnelId);
  if (tunnel.spec.cloudflare?.existingTunnelId) return; // adopted: never deleted by KTube
  await deleteTunnel(session.api, tunnelId);
}



/** Cloudflare's answer for a tunnel that never had a configuration, in our terms. */
function normalise(config: IngressConfig | undefined): IngressConfig | undefined {
  return config && Array.isArray(config.ingress) ? { ingress: config.ingress } : undefined;
}

async function setStatus(ctx: Context, tunnel: TunnelObject, fields: Partial<TunnelStatus>, conditions: ConditionInput[]): Promise<undefined> {
  const generation = tunnel.metadata.generation;
  const status = tunnel.status ?? {};
  const next = {
    ...status,
    ...fields,
    observedGeneration: generation,
    conditions: await applyConditions(ctx, tunnel, status.conditions, conditions, generation),
  };
  await ctx.manager.status.update(TunnelResource, tunnel, next);
  return undefined;
}
