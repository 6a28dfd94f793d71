// The ngrok plugin: a Tunnel is a Deployment of KTube's own ngrok agents (the connector),
// its accepted routes a route table those agents bind as pooled endpoints; what only the
// agents know (session state, assigned URLs) comes back through their reports.
import { createHash } from "node:crypto";
import { Core, type ConditionInput, type RouteReservation, type SecretKeyRef } from "@ktube/api";
import {
  CONNECTOR_OWNED_KINDS,
  connectorRole,
  connectorRoleBinding,
  connectorServiceAccount,
  ConnectorPods,
  ProviderError,
  ROUTE_TABLE_KEY,
  routeTableConfigMap,
  statusConfigMap,
  type BindingContext,
  type ProviderKit,
  type ProviderPlugin,
  type ReleaseContext,
  type RouteOutcome,
  type RouteOutcomes,
  type TunnelContext,
} from "@ktube/provider-kit";
import type { ProviderCapabilities } from "@ktube/routing";
import type { KubeObject } from "@ktube/runtime";
import { agentNames, authtokenSecret, CA_KEY, deployment, disruptionBudget } from "./manifests/connector.ts";
import { connectAgent, type AgentOptions, type AgentSession } from "./provider/agent.ts";
import { parseReport, type AgentReport } from "./provider/agent-report.ts";
import { NgrokError } from "./provider/errors.ts";
import { planRouteTable, routeKey, routeUrl, shortHash, type RouteTable } from "./provider/route-table.ts";
import { ensureTcpAddress, releaseTcpAddresses, routeMark, type ReclaimPolicy } from "./provider/reservations.ts";
import { tableHash } from "./connector/supervisor.ts";
import { verifyApiKey, type ApiOptions } from "./provider/api.ts";

export const NGROK_CAPABILITIES: ProviderCapabilities = {
  provider: "ngrok",
  protocols: ["HTTP", "HTTPS", "TCP", "TLS"],
  hostnameRequired: ["TLS"],
  unsupportedFields: ["listenPort", "udp", "access", "originRequest"],
  addressTargets: false,
  // A TLS endpoint takes its hostname whole: no HTTP path can share it.
  wholeHostnameProtocols: ["TLS"],
};

export interface NgrokSession {
  authtoken: string;
  apiKey?: string;
  /** Changes with the credentials: restarts the agents when the authtoken changes. */
  fingerprint: string;
}

export interface NgrokPluginOptions {
  connectorImage: string;
  /** The agent ingress `host:port` (default: ngrok's own). */
  serverAddr?: string;
  /** PEM of the ingress's CA, where it is not publicly trusted (a test ingress). */
  caPem?: string;
  api?: ApiOptions;
  /** How verification connects (tests may stand in; default: the SDK adapter). */
  connect?: (options: AgentOptions) => Promise<AgentSession>;
}

const REVERIFY_MS = 60 * 60_000;

type ConfigMap = KubeObject & { data?: Record<string, string> };

export function ngrokPlugin(options: NgrokPluginOptions): ProviderPlugin<NgrokSession> {
  let kit: ProviderKit<NgrokSession> | undefined;
  const connect = options.connect ?? connectAgent;
  const api = options.api ?? {};
  /** Reserved addresses by route key, as soon as they exist (status catches up later). */
  const reservations = new Map<string, { reservation: RouteReservation; generation: number }>();

  let pods: ConnectorPods | undefined;

  return {
    type: "ngrok",
    displayName: "ngrok",
    setup(k) {
      kit = k;
      // A replica's pod going away moves its unpooled endpoints elsewhere and drops its report.
      pods = new ConnectorPods(k, "ngrok-agent");
      pods.register();
    },
    capabilities: () => NGROK_CAPABILITIES,
    credentialRefs(provider): Record<string, SecretKeyRef> {
      const spec = provider.spec.ngrok;
      if (!spec) return {};
      return { authtoken: spec.authtokenSecretRef, ...(spec.apiKeySecretRef ? { apiKey: spec.apiKeySecretRef } : {}) };
    },
    connect(provider, credentials) {
      if (!provider.spec.ngrok || !credentials.authtoken) throw new ProviderError("InvalidSpec", "spec.ngrok.authtokenSecretRef is required", { terminal: true });
      const fingerprint = createHash("sha256").update(credentials.authtoken).digest("hex").slice(0, 16);
      return { authtoken: credentials.authtoken.trim(), ...(credentials.apiKey ? { apiKey: credentials.apiKey.trim() } : {}), fingerprint };
    },
    async verify(session, provider) {
      const agent = await verifyAuthtoken(connect, session, options);
      if (agent.status !== "True" || !session.apiKey) return { ready: agent, recheckAfterMs: agent.status === "True" ? REVERIFY_MS : 60_000 };
      const api = await verifyApiKey(session.apiKey, options.api);
      if (api) return { ready: api, recheckAfterMs: 5 * 60_000 };
      return {
        ready: { type: "Ready", status: "True", reason: "CredentialsVerified", message: `authtoken and API key verified${provider.spec.ngrok?.region ? ` (region ${provider.spec.ngrok.region})` : ""}` },
        recheckAfterMs: REVERIFY_MS,
      };
    },
    tunnel: {
      owns: CONNECTOR_OWNED_KINDS,
      async reconcile(ctx) {
        const reservedAddress = ctx.session.apiKey
          ? (key: string) => reservations.get(key)?.reservation.address ?? recordedReservation(ctx, key)?.address
          : null;
        return reconcileAgents(ctx, options, pods!, reservedAddress);
      },
      async cleanup(ctx) {
        // Endpoints are ephemeral: they end with the agents. Deleting the Deployment now
        // takes them offline at once instead of when the garbage collector gets to it.
        await ctx.objects.delete(Core.Deployment, agentNames(ctx.tunnel).name);
      },
    },
    binding: {
      // Only reservations are held outside Kubernetes, and only with an API key.
      holdsProviderState: (provider) => Boolean(provider.spec.ngrok?.apiKeySecretRef),
      async reconcile(ctx) {
        return { routes: await reserveTcpRoutes(ctx, api, reservations, (key) => kit!.controllers.tunnel?.enqueue(key)) };
      },
      async release(ctx) {
        await releaseReservations(ctx, api, new Set());
        for (const key of [...reservations.keys()]) if (key.startsWith(`${ctx.binding.metadata.namespace}/${ctx.binding.metadata.name}/`)) reservations.delete(key);
      },
    },
  };
}

/** The reservation a binding's status recorded for a route (after a restart, before the binding's reconcile ran). */
function recordedReservation(ctx: TunnelContext<NgrokSession>, key: string): RouteReservation | undefined {
  const [namespace, name, route] = key.split("/");
  const accepted = ctx.accepted.find((a) => a.binding.metadata.namespace === namespace && a.binding.metadata.name === name);
  return accepted?.binding.status?.routes?.find((r) => r.name === route)?.reservation;
}

/** TCP routes of a binding on a provider with an API key: each gets its reserved address. */
async function reserveTcpRoutes(
  ctx: BindingContext<NgrokSession>,
  api: NgrokPluginOptions["api"] & object,
  memory: Map<string, { reservation: RouteReservation; generation: number }>,
  wakeTunnel: (key: string) => void,
): Promise<RouteOutcomes> {
  const outcomes: RouteOutcomes = new Map();
  const { binding, provider, session, tunnel } = ctx;
  const tcp = ctx.verdict.routes.filter((r) => r.resolved?.route.protocol === "TCP" && !r.resolved.route.hostname);
  for (const r of ctx.verdict.routes) if (r.resolved && !tcp.includes(r)) outcomes.set(r.name, { ready: true });
  if (!session.apiKey) {
    for (const r of tcp) outcomes.set(r.name, { ready: true });
    return outcomes;
  }
  const reclaim: ReclaimPolicy = tunnel.spec.ngrok?.tcpAddressReclaimPolicy ?? "Delete";
  // Routes dropped from the binding give their addresses back (per the policy they were made under).
  const recorded = new Map((binding.status?.routes ?? []).filter((s) => s.reservation).map((s) => [s.name, s.reservation!]));
  const stale = [...recorded.keys()].filter((name) => !tcp.some((r) => r.name === name));
  if (stale.length > 0) {
    const keep = new Set(tcp.map((r) => shortHash(routeKey(binding.metadata.namespace!, binding.metadata.name!, r.name))));
    await releaseReservations(ctx, api, keep);
  }
  const generation = binding.metadata.generation ?? 0;
  for (const r of tcp) {
    const key = routeKey(binding.metadata.namespace!, binding.metadata.name!, r.name);
    const mark = routeMark(provider.metadata.uid!, binding.metadata.uid!, key, reclaim);
    // Made or checked by this process for this generation of the binding: trusted as is.
    // Otherwise (a restart, a changed binding) a recorded id is checked once (120 calls a minute).
    const seen = memory.get(key);
    const known = seen?.reservation ?? recorded.get(r.name);
    const verify = !seen || seen.generation !== generation;
    const reservation = await ensureTcpAddress(session.apiKey, api, mark, known, { verify, ...(provider.spec.ngrok?.region ? { region: provider.spec.ngrok.region } : {}) });
    if (seen?.reservation.address !== reservation.address) wakeTunnel(`${tunnel.metadata.namespace}/${tunnel.metadata.name}`);
    memory.set(key, { reservation, generation });
    outcomes.set(r.name, { ready: true, reservation, url: `tcp://${reservation.address}` });
  }
  return outcomes;
}

async function releaseReservations(ctx: ReleaseContext<NgrokSession> | BindingContext<NgrokSession>, api: NgrokPluginOptions["api"] & object, keep: ReadonlySet<string>): Promise<void> {
  const { session, provider, binding } = ctx;
  if (!session.apiKey) return;
  const retained = await releaseTcpAddresses(session.apiKey, api, shortHash(provider.metadata.uid!), shortHash(binding.metadata.uid!), keep);
  if (retained.length > 0) ctx.logger.info({ retained }, "TCP addresses retained (tcpAddressReclaimPolicy: Retain)");
}

async function verifyAuthtoken(connect: (o: AgentOptions) => Promise<AgentSession>, session: NgrokSession, options: NgrokPluginOptions): Promise<ConditionInput> {
  try {
    const agent = await connect({
      authtoken: session.authtoken,
      metadata: JSON.stringify({ ktube: { controller: "ngrok", purpose: "verify" } }),
      clientVersion: "0.1.0",
      connectTimeoutMs: 20_000,
      // The SDK's close() leaves the connection open until ngrok misses its heartbeats:
      // short ones make this probe give its session slot back within seconds.
      heartbeatIntervalS: 1,
      heartbeatToleranceS: 1,
      ...(options.serverAddr ? { serverAddr: options.serverAddr } : {}),
      ...(options.caPem ? { caPem: options.caPem } : {}),
      onDead: () => undefined,
    });
    await agent.close();
    return { type: "Ready", status: "True", reason: "CredentialsVerified", message: "authtoken verified" };
  } catch (error) {
    const e = error instanceof NgrokError ? error : new NgrokError("transport", String(error));
    // The token is good, the plan is full (the tunnels' own agents hold the sessions).
    if (e.reason === "SessionLimitExceeded") return { type: "Ready", status: "True", reason: "CredentialsVerified", message: `authtoken accepted; ${e.message}` };
    return { type: "Ready", status: "False", reason: e.reason, message: `ngrok refused the agent session: ${e.message}${e.code ? ` (${e.code})` : ""}` };
  }
}

/** The agents' objects, the route table, and what the agents report, as the tunnel's outcome. */
async function reconcileAgents(ctx: TunnelContext<NgrokSession>, options: NgrokPluginOptions, pods: ConnectorPods, reservedAddress: ((key: string) => string | undefined) | null) {
  const { tunnel, objects, session } = ctx;
  const pooling = tunnel.spec.ngrok?.poolingEnabled ?? true;
  const { table, refused } = planRouteTable(tunnel.metadata.uid!, ctx.accepted, { pooling, reservedAddress });

  const names = agentNames(tunnel);
  const statusMap = objects.get<ConfigMap>(Core.ConfigMap, names.statusName);
  const live = pods.live(names);
  const reports = pods.reports(names, statusMap, parseReport);

  // Unpooled endpoints: one replica each; a replica keeps what it serves while it lives.
  const previous = readTable(objects.get<ConfigMap>(Core.ConfigMap, names.name));
  const online = [...reports].filter(([, r]) => r.session.state === "online").map(([pod]) => pod).sort();
  for (const endpoint of table.endpoints) {
    if (endpoint.pooling) continue;
    const before = previous?.endpoints.find((e) => e.id === endpoint.id)?.servedBy;
    const servedBy = before && live.has(before) ? before : online[0];
    if (servedBy) endpoint.servedBy = servedBy;
  }

  await objects.ensure(Core.ServiceAccount, connectorServiceAccount(names));
  await objects.ensure(Core.Role, connectorRole(names));
  await objects.ensure(Core.RoleBinding, connectorRoleBinding(names));
  if (!statusMap) await objects.ensure(Core.ConfigMap, statusConfigMap(names));
  await objects.ensure(Core.ConfigMap, routeTableConfigMap(names, JSON.stringify(table), options.caPem ? { [CA_KEY]: options.caPem } : {}));
  const current = objects.get(Core.Deployment, names.name) as { spec?: { template?: { metadata?: { annotations?: Record<string, string> } } } } | undefined;
  // Secrets are written, never read: written when the agents do not run this token yet.
  if (current?.spec?.template?.metadata?.annotations?.["ktube.dev/credential-hash"] !== session.fingerprint) {
    await objects.ensure(Core.Secret, authtokenSecret(tunnel, session.authtoken));
  }
  await objects.ensure(
    Core.Deployment,
    deployment(tunnel, { image: options.connectorImage, hasCa: Boolean(options.caPem), credentialHash: session.fingerprint, ...(options.serverAddr ? { serverAddr: options.serverAddr } : {}) }),
  );
  const pdb = disruptionBudget(tunnel);
  if (pdb) await objects.ensure(Core.PodDisruptionBudget, pdb);
  else await objects.delete(Core.PodDisruptionBudget, names.name);

  return { conditions: [readyCondition(reports), agentsCondition(reports)], routes: routeOutcomes(table, tableHash(table), reports, refused) };
}

function readTable(cm: ConfigMap | undefined): RouteTable | undefined {
  try {
    return cm?.data?.[ROUTE_TABLE_KEY] ? (JSON.parse(cm.data[ROUTE_TABLE_KEY]) as RouteTable) : undefined;
  } catch {
    return undefined;
  }
}

/** Ready while at least one agent has its session online; otherwise the agents' own reason. */
function readyCondition(reports: Map<string, AgentReport>): ConditionInput {
  const sessions = [...reports.values()].map((r) => r.session);
  const online = sessions.filter((s) => s.state === "online").length;
  if (online > 0) return { type: "Ready", status: "True", reason: "AgentsOnline", message: online === 1 ? "1 agent session online" : `${online} agent sessions online` };
  const failed = sessions.find((s) => s.reason);
  if (failed) return { type: "Ready", status: "False", reason: failed.reason!, message: `no agent session is online: ${failed.message ?? failed.reason}` };
  return { type: "Ready", status: "False", reason: "AgentsStarting", message: "waiting for the ngrok agents to connect" };
}

/** Whether every agent has its session: one that cannot (a plan's session limit) is named with its reason. */
function agentsCondition(reports: Map<string, AgentReport>): ConditionInput {
  const failing = [...reports].filter(([, r]) => r.session.state !== "online").sort(([a], [b]) => a.localeCompare(b));
  if (reports.size > 0 && failing.length === 0) return { type: "AgentsReady", status: "True", reason: "SessionsOnline", message: "every agent has its ngrok session" };
  if (failing.length === 0) return { type: "AgentsReady", status: "False", reason: "AgentsStarting", message: "no agent has reported yet" };
  const [pod, report] = failing[0]!;
  const reason = report.session.reason ?? "AgentsStarting";
  const hint = reason === "SessionLimitExceeded" ? " (each agent replica is one ngrok session: lower spec.ngrok.replicas or raise the plan's limit)" : "";
  return {
    type: "AgentsReady",
    status: "False",
    reason,
    message: `${failing.length} of ${reports.size} agents have no session; ${pod}: ${report.session.message ?? report.session.state}${hint}`,
  };
}

/** Each accepted route's outcome from the reports about the current table. */
function routeOutcomes(table: RouteTable, hash: string, reports: Map<string, AgentReport>, refused: Array<{ key: string; outcome: RouteOutcome }>): Map<string, RouteOutcomes> {
  const byBinding = new Map<string, RouteOutcomes>();
  const set = (key: string, outcome: RouteOutcome): void => {
    const [namespace, binding, route] = key.split("/");
    const bindingKey = `${namespace}/${binding}`;
    let routes = byBinding.get(bindingKey);
    if (!routes) byBinding.set(bindingKey, (routes = new Map()));
    routes.set(route!, outcome);
  };
  for (const { key, outcome } of refused) set(key, outcome);
  const current = [...reports.values()].filter((r) => r.table === hash);
  for (const endpoint of table.endpoints) {
    const seen = current.map((r) => r.endpoints[endpoint.id]).filter((e) => e !== undefined);
    const up = seen.find((e) => e.online);
    for (const route of endpoint.routes) {
      if (up) {
        const url = routeUrl(endpoint, route, up.url);
        set(route.key, { ready: true, ...(url ? { url } : {}) });
        continue;
      }
      const failed = seen.find((e) => e.reason && e.reason !== "Pending");
      set(
        route.key,
        failed
          ? { ready: false, reason: failed.reason!, message: failed.message ?? failed.reason! }
          : { ready: false, reason: "Pending", message: endpoint.pooling || endpoint.servedBy ? "waiting for the ngrok agents to start the endpoint" : "waiting for an ngrok agent to come online" },
      );
    }
  }
  return byBinding;
}
