// The Microsoft Dev Tunnels plugin: a Tunnel is one dev tunnel (deterministic id, KTube's
// labels, anonymous connect access when public), each accepted route one of its ports, and
// one host Deployment (KTube's TunnelRelayTunnelHost) carries the traffic. Dev Tunnels is a
// preview service without an SLA, for development and testing: the provider says so.
import { Core, durationMs, TunnelProviderResource, TunnelResource, type ConditionInput, type SecretKeyRef } from "@ktube/api";
import {
  CONNECTOR_OWNED_KINDS,
  connectorRole,
  connectorRoleBinding,
  connectorServiceAccount,
  ConnectorPods,
  ProviderError,
  ProviderRateLimited,
  outcomesByBinding,
  recordedReservation,
  routeTableConfigMap,
  statusConfigMap,
  type ProviderKit,
  type ProviderPlugin,
  type RouteOutcome,
  type RouteOutcomes,
  type TunnelContext,
} from "@ktube/provider-kit";
import type { ProviderCapabilities } from "@ktube/routing";
import type { Controller, KubeObject } from "@ktube/runtime";
import type { TunnelManagementHttpClient } from "@microsoft/dev-tunnels-management";
import { hostDeployment, hostNames, hostTokenSecret } from "./manifests/host.ts";
import { entraToken, rawToken, type TokenSource } from "./provider/credentials.ts";
import { fromSdkError } from "./provider/errors.ts";
import { parseHostReport, type HostReport } from "./provider/host-report.ts";
import { devTunnelId, tunnelUidOf } from "./provider/identity.ts";
import { DEFAULT_SERVICE_URI, deleteDevTunnel, ensureDevTunnel, listOwnedTunnels, managementClient, syncPorts } from "./provider/management.ts";
import { planPorts, tableHash, type PortTable } from "./provider/ports.ts";

export const PREVIEW_NOTE = "Dev Tunnels is a Microsoft preview service without an SLA, for development and testing, not production";

export const DEVTUNNELS_CAPABILITIES: ProviderCapabilities = {
  provider: "Dev Tunnels",
  // Web forwarding is HTTP(S) only; TCP ports have no public URL.
  protocols: ["HTTP", "HTTPS"],
  hostnameRequired: [],
  // The service names each port's URL itself, and a port has no path routing.
  unsupportedFields: ["hostname", "path", "tls", "proxyProtocol", "udp", "access", "originRequest"],
  addressTargets: false,
  wholeHostnameProtocols: [],
  extraClaims: (route) => (route.listenPort !== undefined ? [`port ${route.listenPort}`] : []),
};

export interface DevTunnelsSession {
  client: TunnelManagementHttpClient;
  token: TokenSource;
  serviceUri: string;
}

export interface DevTunnelsPluginOptions {
  /** Marks this installation's dev tunnels (like external-dns's --txt-owner-id). */
  ownerId: string;
  hostImage: string;
  /** The management API (the public service unless a provider names its own; tests point it at a fake). */
  serviceUri?: string;
  /** Microsoft Entra ID's authority (tests point it at a fake). */
  entraAuthority?: string;
  maxPorts?: number;
  /** How often the host token is renewed (it lasts 24 h). */
  tokenRenewMs?: number;
}

const REVERIFY_MS = 60 * 60_000;

type ConfigMap = KubeObject & { data?: Record<string, string> };

export function devtunnelsPlugin(options: DevTunnelsPluginOptions): ProviderPlugin<DevTunnelsSession> {
  let kit: ProviderKit<DevTunnelsSession> | undefined;
  let pods: ConnectorPods | undefined;
  let sweep: Controller | undefined;
  /** When each Tunnel's host token was last written (by Tunnel uid). */
  const tokenWritten = new Map<string, number>();
  /** Each Tunnel's last port plan (by uid): route key -> port, until the bindings' status records them. */
  const portOf = new Map<string, Map<string, number>>();
  const renewMs = options.tokenRenewMs ?? 12 * 3600_000;

  return {
    type: "devtunnels",
    displayName: "Dev Tunnels",
    setup(k) {
      kit = k;
      pods = new ConnectorPods(k, "devtunnels-host");
      pods.register();
      sweep = registerSweep(k, options.ownerId);
    },
    capabilities: () => DEVTUNNELS_CAPABILITIES,
    credentialRefs(provider): Record<string, SecretKeyRef> {
      const spec = provider.spec.devtunnels;
      if (spec?.entra) return { clientSecret: spec.entra.clientSecretRef };
      return spec?.tokenSecretRef ? { token: spec.tokenSecretRef } : {};
    },
    connect(provider, credentials) {
      const spec = provider.spec.devtunnels;
      const token = spec?.entra
        ? entraToken({ tenantId: spec.entra.tenantId, clientId: spec.entra.clientId, clientSecret: credentials.clientSecret ?? "" }, options.entraAuthority)
        : credentials.token
          ? rawToken(credentials.token)
          : undefined;
      if (!token) throw new ProviderError("InvalidSpec", "spec.devtunnels needs entra or tokenSecretRef", { terminal: true });
      const serviceUri = options.serviceUri ?? spec?.serviceUri ?? DEFAULT_SERVICE_URI;
      return { token, serviceUri, client: managementClient(token, serviceUri) };
    },
    async verify(session, provider) {
      try {
        await session.token();
        await session.client.listUserLimits();
      } catch (error) {
        const e = fromSdkError(error, "the Dev Tunnels service refused the credentials");
        if (e instanceof ProviderRateLimited) throw e;
        return { ready: { type: "Ready", status: "False", reason: e.reason, message: e.message }, recheckAfterMs: 5 * 60_000 };
      }
      // Each successful check (at start, then hourly) sweeps the account for orphans once.
      sweep?.enqueue(provider.metadata.name!);
      return { ready: { type: "Ready", status: "True", reason: "CredentialsVerified", message: `credentials accepted by the Dev Tunnels service. ${PREVIEW_NOTE}.` }, recheckAfterMs: REVERIFY_MS };
    },
    tunnel: {
      owns: CONNECTOR_OWNED_KINDS,
      async reconcile(ctx) {
        return reconcileDevTunnel(ctx, options, pods!, { tokenWritten, portOf, renewMs, record: (o, type, reason, note) => void kit!.manager.events.record(o, type, reason, "Reconcile", note) });
      },
      async cleanup(ctx) {
        const { tunnelId, region } = ctx.tunnel.status ?? {};
        await ctx.objects.delete(Core.Deployment, hostNames(ctx.tunnel).name);
        if (tunnelId && region) await deleteDevTunnel(ctx.session.client, tunnelId, region);
      },
    },
    // The kit calls this once the Tunnel is gone from the cache (after cleanup).
    forgetTunnel: (uid) => {
      tokenWritten.delete(uid);
      portOf.delete(uid);
    },
  };
}

interface Memory {
  tokenWritten: Map<string, number>;
  portOf: Map<string, Map<string, number>>;
  renewMs: number;
  record(object: KubeObject, type: "Normal" | "Warning", reason: string, note: string): void;
}

async function reconcileDevTunnel(ctx: TunnelContext<DevTunnelsSession>, options: DevTunnelsPluginOptions, pods: ConnectorPods, memory: Memory) {
  const { tunnel, objects, session } = ctx;
  const spec = tunnel.spec.devtunnels ?? {};
  const uid = tunnel.metadata.uid!;
  const { tunnel: dev, created } = await ensureDevTunnel(session.client, {
    tunnelId: tunnel.status?.tunnelId ?? devTunnelId(options.ownerId, uid),
    ...((tunnel.status?.region ?? spec.region) ? { region: tunnel.status?.region ?? spec.region } : {}),
    ownerId: options.ownerId,
    tunnelUid: uid,
    description: "KTube tunnel (managed by KTube; do not edit)",
    access: spec.access ?? "Public",
    ...(spec.expiration ? { expirationS: Math.round(durationMs(spec.expiration) / 1000) } : {}),
  });
  if (created && tunnel.status?.tunnelId) {
    memory.record(tunnel, "Warning", "TunnelRecreated", `the Dev Tunnels service had deleted dev tunnel ${dev.tunnelId} (expired or removed); re-created it with the same id in ${dev.clusterId}, so its URLs are unchanged`);
  }
  // Ids to status at once: a restart finds the tunnel instead of making another.
  if (tunnel.status?.tunnelId !== dev.tunnelId || tunnel.status?.region !== dev.clusterId) {
    await ctx.saveStatus({ tunnelId: dev.tunnelId!, region: dev.clusterId! });
  }

  const recorded = (key: string): number | undefined => memory.portOf.get(uid)?.get(key) ?? recordedReservation(ctx.accepted, key, "port");
  const { ports: plan, refused } = planPorts(ctx.accepted, recorded, options.maxPorts);
  // The plan is the memory: routes that went are forgotten with it.
  memory.portOf.set(uid, new Map(plan.map((p) => [p.key, p.port])));
  const live = await syncPorts(session.client, dev, plan);

  const names = hostNames(tunnel);
  const table: PortTable = { tunnel: uid, tunnelId: dev.tunnelId!, region: dev.clusterId!, ports: plan };
  await objects.ensure(Core.ServiceAccount, connectorServiceAccount(names));
  await objects.ensure(Core.Role, connectorRole(names));
  await objects.ensure(Core.RoleBinding, connectorRoleBinding(names));
  const statusMap = objects.get<ConfigMap>(Core.ConfigMap, names.statusName);
  if (!statusMap) await objects.ensure(Core.ConfigMap, statusConfigMap(names));
  await objects.ensure(Core.ConfigMap, routeTableConfigMap(names, JSON.stringify(table)));
  // Secrets are written, never read: the host token when there is none yet or it is due for renewal.
  const written = memory.tokenWritten.get(uid);
  const hostToken = dev.accessTokens?.host;
  // A re-created dev tunnel has new tokens: the old one stops working at once.
  if (hostToken && (created || written === undefined || Date.now() - written > memory.renewMs || !objects.get(Core.Deployment, names.name))) {
    await objects.ensure(Core.Secret, hostTokenSecret(tunnel, hostToken));
    memory.tokenWritten.set(uid, Date.now());
  }
  await objects.ensure(Core.Deployment, hostDeployment(tunnel, { image: options.hostImage, serviceUri: session.serviceUri }));

  const reports = pods.reports(names, statusMap, parseHostReport);
  const hash = tableHash(table);
  const connected = [...reports.values()].find((r) => r.state === "connected");
  const routes = routeOutcomes(plan, live, refused, connected && connected.table === hash ? connected : undefined);
  const conditions: ConditionInput[] = [readyCondition(reports, dev.tunnelId!), { type: "HostConnected", ...hostCondition(reports) }];
  const requeueAfterMs = Math.max(60_000, memory.renewMs - (Date.now() - (memory.tokenWritten.get(uid) ?? Date.now())));
  return {
    status: { tunnelId: dev.tunnelId!, region: dev.clusterId!, ...(dev.expiration ? { expiresAt: new Date(dev.expiration).toISOString() } : {}) },
    conditions,
    routes,
    requeueAfterMs,
  };
}

function hostCondition(reports: Map<string, HostReport>): Omit<ConditionInput, "type"> {
  const connected = [...reports.values()].filter((r) => r.state === "connected").length;
  if (connected > 0) return { status: "True", reason: "HostConnected", message: "the host is connected to the Dev Tunnels relay" };
  const conflict = [...reports.values()].find((r) => r.state === "conflict");
  if (conflict) return { status: "False", reason: "HostConflict", message: conflict.message ?? "another host connected to this dev tunnel; this one stepped aside" };
  const failed = [...reports.values()].find((r) => r.reason);
  if (failed) return { status: "False", reason: failed.reason!, message: failed.message ?? failed.reason! };
  return { status: "False", reason: "HostStarting", message: "waiting for the host to connect to the relay" };
}

function readyCondition(reports: Map<string, HostReport>, tunnelId: string): ConditionInput {
  const host = hostCondition(reports);
  if (host.status === "True") return { type: "Ready", status: "True", reason: "HostConnected", message: `dev tunnel ${tunnelId} is hosted. ${PREVIEW_NOTE}.` };
  return { type: "Ready", status: "False", reason: host.reason, message: host.message };
}

/** Each route's outcome: its port's public URL once the host serves the current table. */
function routeOutcomes(
  plan: PortTable["ports"],
  live: Map<number, { portForwardingUris?: string[] }>,
  refused: Array<{ key: string; outcome: RouteOutcome }>,
  host: HostReport | undefined,
): Map<string, RouteOutcomes> {
  const outcomes: Array<[string, RouteOutcome]> = refused.map(({ key, outcome }) => [key, outcome]);
  const set = (key: string, outcome: RouteOutcome): void => void outcomes.push([key, outcome]);
  for (const p of plan) {
    const reservation = { id: "port", address: String(p.port) };
    const url = live.get(p.port)?.portForwardingUris?.[0];
    if (!url) set(p.key, { ready: false, reason: "Pending", message: `waiting for port ${p.port} to get its URL`, reservation });
    else if (!host || !host.ports.includes(p.port)) set(p.key, { ready: false, reason: "HostNotReady", message: `waiting for the host to forward port ${p.port}`, reservation });
    else set(p.key, { ready: true, url, reservation });
  }
  return outcomesByBinding(outcomes);
}

/** A low-frequency sweep: this installation's dev tunnels whose Tunnel no longer exists are deleted (quota is 10). */
function registerSweep(kit: ProviderKit<DevTunnelsSession>, ownerId: string): Controller {
  const { cache } = kit.manager;
  return kit.manager
    .controller("devtunnelsweep")
    .forKeys({ resyncKeys: () => cache.list(TunnelProviderResource).filter((p) => p.spec.type === "devtunnels" && kit.scope.serves(p)).map((p) => p.metadata.name!) })
    .withOptions({ maxConcurrentReconciles: 1 })
    .build(async ({ key }, context) => {
      const provider = kit.provider(key);
      const { session } = provider ? kit.sessions.of(provider) : { session: undefined };
      if (!session) return;
      const known = new Set(cache.list(TunnelResource).map((t) => t.metadata.uid!));
      try {
        for (const dev of await listOwnedTunnels(session.client, ownerId)) {
          const uid = tunnelUidOf(dev.labels);
          if (!uid || known.has(uid)) continue;
          await deleteDevTunnel(session.client, dev.tunnelId!, dev.clusterId!);
          context.logger.info({ provider: key, tunnelId: dev.tunnelId }, "deleted a dev tunnel whose Tunnel no longer exists");
        }
      } catch (error) {
        if (error instanceof ProviderRateLimited) return { requeueAfterMs: error.retryAfterMs ?? 60_000 };
        if (error instanceof ProviderError) context.logger.warn({ provider: key, reason: error.reason, err: error.message }, "could not sweep dev tunnels");
        else throw error;
      }
      return undefined;
    });
}
