// The self-hosted edge plugin: a Tunnel is one VPS, enrolled over SSH (host key pinned),
// running Envoy as an unprivileged service behind KTube's firewall, and a StatefulSet of
// uplinks that dial WireGuard out to it and forward each route's tunnel port to its
// target. Each reconcile writes the uplinks' objects and route table, enrolls the VPS
// (idempotently: only differences are written), renders Envoy's configuration from the
// accepted routes and applies it, reporting ConfigApplied only once Envoy's own admin
// shows the version; a route is Ready once Envoy serves it and an uplink forwards it.
import { Core, durationMs, type ConditionInput, type TunnelProvider } from "@ktube/api";
import {
  ConnectorPods,
  connectorRole,
  connectorRoleBinding,
  connectorServiceAccount,
  outcomesByBinding,
  ProviderError,
  recordedReservation,
  routeTableConfigMap,
  statusConfigMap,
  type CredentialRef, type ProviderKit, type ProviderPlugin, type RouteOutcome, type RouteOutcomes, type TunnelContext, type TunnelObject } from "@ktube/provider-kit";
import type { ProviderCapabilities } from "@ktube/routing";
import { ApiError, type KubeObject } from "@ktube/runtime";
import ssh2 from "ssh2";
import { applyEnvoyConfig } from "./provider/apply-config.ts";
import { createHash, randomBytes } from "node:crypto";
import { enrollVps, teardownVps, type EnvoyRelease, type VpsDesiredState } from "./provider/enroll.ts";
import { assertEnvoyConfigValid } from "./provider/envoy/lint.ts";
import { renderEnvoyConfig, type RenderedEnvoyConfig } from "./provider/envoy/render.ts";
import { ENVOY_SDS_DIR, type EdgePlan, type EdgeTlsSecret } from "./provider/envoy/plan.ts";
import { listenPortOf, planPorts, publicUrl, UPLINK_READY_PORT, type EdgeTarget, type TlsSecretRef } from "./provider/port-plan.ts";
import { connectVps, HostKeyError, type VpsSession, type VpsTarget } from "./provider/ssh.ts";
import { ENVOY_BOOTSTRAP } from "./provider/vps-files.ts";
import { deriveTunnelKeys, tunnelAddresses, WIREGUARD_SEED_KEY, WIREGUARD_SEED_SECRET, wireguardSettings, type TunnelAddresses, type TunnelKeys } from "./provider/wireguard.ts";
import { wireGuardPublicKey } from "./provider/wireguard-keys.ts";
import {
  DEFAULT_UPLINK_IMAGE,
  MANAGED_BY,
  parseReport,
  tableHash,
  uplinkDisruptionBudget,
  uplinkKeySecret,
  uplinkNames,
  uplinkStatefulSet,
  type UplinkReport,
  type UplinkRoute,
  type UplinkTable,
} from "./manifests/uplink.ts";

export const EDGE_CAPABILITIES: ProviderCapabilities = {
  provider: "the edge",
  protocols: ["HTTP", "HTTPS", "TLS", "TCP", "UDP"],
  hostnameRequired: [],
  unsupportedFields: ["access", "originRequest"],
  addressTargets: true,
  wholeHostnameProtocols: [],
  // What two routes of one tunnel cannot share. Hostname+path is routing's own claim, per
  // listen port: a hostname served over HTTP on 80 and by SNI on 443 is two routes.
  extraClaims: (route) => {
    const port = listenPortOf(route);
    if (port === undefined) return [];
    if (route.protocol === "TCP" || route.protocol === "UDP") return [`listen port ${port}/${route.protocol}`];
    if (route.protocol === "HTTP") return route.hostname ? [] : [`listen port ${port}/TCP default host, path ${route.path ?? "/"}`];
    return [`listen port ${port}/TCP ${route.hostname ? `SNI ${route.hostname}` : "default TLS chain"}`];
  },
  pathClaimScope: (route) => `listen port ${listenPortOf(route) ?? "?"}/${route.protocol === "UDP" ? "UDP" : "TCP"}`,
};

/** Envoy's admin port on the VPS's loopback. */
export const ENVOY_ADMIN_PORT = 9901;

export interface EdgeSession {
  privateKey: string;
  passphrase?: string;
  knownHosts: string;
  envoy: EnvoyRelease;
}

export interface EdgePluginOptions {
  /** How long Envoy has to confirm a configuration (default 20 s). */
  confirmTimeoutMs?: number;
  /** How often an enrolled VPS is checked for drift (default 5 min); with TLS offload also how soon a rotated certificate is pushed. */
  resyncMs?: number;
  /** Connect timeout for SSH (default 20 s). */
  sshTimeoutMs?: number;
  /** The uplinks' image when the provider names none (default: the controller's release). */
  uplinkImage?: string;
}

type SecretObject = KubeObject & { type?: string; data?: Record<string, string> };

/** What the VPS side of a reconcile found (Enrolled, ConfigApplied), and when it last connected. */
interface VpsOutcome {
  status: Partial<TunnelObject["status"] & object>;
  conditions: ConditionInput[];
  configVersion?: string;
  checkedAt: number;
}

/** The uplinks' side: the route table's hash, the live replicas' reports, the ones forwarding it. */
interface UplinkState {
  hash: string;
  reports: Map<string, UplinkReport>;
  ready: Set<string>;
  condition: ConditionInput;
}

export function edgePlugin(options: EdgePluginOptions = {}): ProviderPlugin<EdgeSession> {
  let kit: ProviderKit<EdgeSession> | undefined;
  let pods: ConnectorPods | undefined;
  /** Each Tunnel's tunnel ports (by uid): route key -> port, until the bindings' status records them. */
  const tunnelPortOf = new Map<string, Map<string, number>>();
  /** Consecutive failed reconciles of each Tunnel (by uid), for the retry backoff. */
  const failuresOf = new Map<string, number>();
  /** The public keys each Tunnel's uplink Secret was last written with (by uid): it is written when they change, not on every reconcile. */
  const uplinkKeysOf = new Map<string, string>();
  let seed: Promise<Buffer> | undefined;
  /** What each Tunnel's VPS last confirmed (by uid), with the inputs it was confirmed for. */
  const confirmedOf = new Map<string, { inputs: string; outcome: VpsOutcome }>();
  /** Bindings already warned that their private key lives on the VPS (by binding uid + secret). */
  const warned = new Set<string>();
  const resyncMs = options.resyncMs ?? 5 * 60_000;

  return {
    type: "edge",
    displayName: "Edge",
    setup(k) {
      kit = k;
      pods = new ConnectorPods(k, uplinkNames({ metadata: {} } as TunnelObject).app);
      pods.register();
    },
    capabilities: () => EDGE_CAPABILITIES,
    credentialRefs(provider): Record<string, CredentialRef> {
      const name = provider.spec.edge?.sshSecretRef.name;
      if (!name) return {};
      return { privateKey: { name, key: "privateKey" }, knownHosts: { name, key: "knownHosts" }, passphrase: { name, key: "passphrase", optional: true } };
    },
    connect(provider: TunnelProvider, credentials) {
      const envoy = provider.spec.edge?.envoy;
      if (!envoy) throw new ProviderError("InvalidSpec", "spec.edge.envoy is required", { terminal: true });
      return {
        privateKey: credentials.privateKey ?? "",
        ...(credentials.passphrase ? { passphrase: credentials.passphrase } : {}),
        knownHosts: credentials.knownHosts ?? "",
        envoy: { url: envoy.url, sha256: envoy.sha256 },
      };
    },
    async verify(session) {
      // ssh2 is CommonJS: `utils` is reachable through its default export only (Node cannot see it as a named one).
      const parsed = ssh2.utils.parseKey(session.privateKey, session.passphrase);
      if (parsed instanceof Error) {
        return { ready: { type: "Ready", status: "False", reason: "InvalidPrivateKey", message: `the SSH private key cannot be read: ${parsed.message}` } };
      }
      const hosts = session.knownHosts.split("\n").filter((line) => line.trim() && !line.trim().startsWith("#")).length;
      if (hosts === 0) {
        return { ready: { type: "Ready", status: "False", reason: "KnownHostsEmpty", message: "knownHosts lists no host key: add every VPS's key (ssh-keyscan -t ed25519 <address>) after checking it on the VPS" } };
      }
      return {
        ready: { type: "Ready", status: "True", reason: "CredentialsLoaded", message: `SSH key loaded, ${hosts} known host key${hosts === 1 ? "" : "s"}; each Tunnel's VPS is checked when it is enrolled` },
      };
    },
    tunnel: {
      // Not Secrets: the uplinks' key Secret is written, never read (no Secret is watched outside the controller's namespace).
      owns: [Core.ConfigMap, Core.ServiceAccount, Core.Role, Core.RoleBinding, Core.StatefulSet, Core.PodDisruptionBudget],
      reconcile: (ctx) => reconcileEdge(ctx),
      async cleanup(ctx) {
        const edge = ctx.tunnel.spec.edge;
        if (!edge) return;
        const vps = await connectVps(targetOf(ctx.tunnel, ctx.session, options.sshTimeoutMs));
        try {
          const result = await teardownVps(vps, ownerOf(ctx.tunnel));
          if (!result.removed && result.owner) ctx.logger.info({ owner: result.owner }, "the VPS belongs to another Tunnel now: left as it is");
        } finally {
          vps.close();
        }
      },
    },
    forgetTunnel: (uid) => {
      tunnelPortOf.delete(uid);
      failuresOf.delete(uid);
      confirmedOf.delete(uid);
      uplinkKeysOf.delete(uid);
    },
  };

  async function reconcileEdge(ctx: TunnelContext<EdgeSession>) {
    const { tunnel, objects } = ctx;
    const edge = tunnel.spec.edge;
    if (!edge) throw new ProviderError("InvalidSpec", "an edge Tunnel needs spec.edge (address, ssh, wireguard...)", { terminal: true });
    const uid = tunnel.metadata.uid!;

    const keys = deriveTunnelKeys(await wireguardSeed(), uid, edge.uplink.replicas);

    const recorded = (key: string): number | undefined => tunnelPortOf.get(uid)?.get(key) ?? recordedReservation(ctx.accepted, key, "tunnelPort");
    const ports = planPorts(edge, ctx.accepted, recorded, { envoyAdminPort: ENVOY_ADMIN_PORT });
    tunnelPortOf.set(uid, new Map(ports.routes.map((r) => [r.key, r.tunnelPort])));

    // TLS material for routes terminated at the edge, from each binding's own namespace.
    const secrets: EdgeTlsSecret[] = [];
    const refused = [...ports.refused];
    for (const ref of ports.secrets) {
      const loaded = await loadTlsSecret(ref);
      if (typeof loaded === "string") {
        for (const route of ports.routes.filter((r) => r.tls?.secret === ref.name)) refused.push({ key: route.key, outcome: { ready: false, reason: "TLSSecretInvalid", message: loaded, unresolvedRef: true } });
      } else secrets.push(loaded);
    }
    // The uplinks forward to a Service's cluster IP (the node's Service proxy takes it from there).
    const targets = new Map<string, UplinkRoute["target"]>();
    for (const route of ports.routes) {
      const target = resolveTarget(route.target);
      if (typeof target === "string") refused.push({ key: route.key, outcome: { ready: false, reason: "ServiceHasNoClusterIP", message: target, unresolvedRef: true } });
      else targets.set(route.key, target);
    }
    const refusedKeys = new Set(refused.map((r) => r.key));
    const served = ports.routes.filter((route) => !refusedKeys.has(route.key));
    const addresses = tunnelAddresses(edge.wireguard.network, edge.uplink.replicas);
    const plan: EdgePlan = {
      nodeId: `${tunnel.metadata.namespace}/${tunnel.metadata.name}`,
      adminPort: ENVOY_ADMIN_PORT,
      uplinks: addresses.uplinks,
      healthCheck: {
        intervalSeconds: seconds(edge.healthCheck.interval),
        timeoutSeconds: seconds(edge.healthCheck.timeout),
        healthyThreshold: edge.healthCheck.healthyThreshold,
        unhealthyThreshold: edge.healthCheck.unhealthyThreshold,
        port: UPLINK_READY_PORT,
      },
      routes: served.map(({ target: _target, ...route }) => route),
      secrets: secrets.filter((s) => served.some((r) => r.tls?.secret === s.name)),
    };
    const uplinks = await ensureUplinks(ctx, keys, addresses, served.map((route) => ({ key: route.key, protocol: route.protocol === "UDP" ? "UDP" : "TCP", tunnelPort: route.tunnelPort, target: targets.get(route.key)! })));
    const rendered = renderEnvoyConfig(plan);
    const bootstrap = rendered.files.find((file) => file.path === ENVOY_BOOTSTRAP)?.content;
    if (bootstrap === undefined) throw new Error(`the rendered Envoy config has no ${ENVOY_BOOTSTRAP}`);

    const vps = await serveOnVps(
      ctx,
      {
        owner: ownerOf(tunnel),
        envoy: ctx.session.envoy,
        wireguard: wireguardSettings(edge, keys, addresses),
        firewall: { sshPort: edge.ssh.port, wireguardPort: edge.wireguard.listenPort, listenPorts: edge.listenPorts },
        bootstrap,
      },
      rendered,
      served.length,
    );
    const failed = vps.conditions.find((c) => c.status === "False");
    const conditions: ConditionInput[] = [
      failed
        ? { type: "Ready", status: "False", reason: failed.reason, message: failed.message }
        : uplinks.ready.size === 0
          ? { type: "Ready", status: "False", reason: uplinks.condition.reason, message: `Envoy on ${edge.address} is configured, but no uplink forwards yet: ${uplinks.condition.message}` }
          : { type: "Ready", status: "True", reason: "EdgeServing", message: `the VPS at ${edge.address} serves ${served.length} route${served.length === 1 ? "" : "s"}` },
      ...vps.conditions,
      uplinks.condition,
    ];
    if (vps.configVersion) warnPrivateKeys(ctx, served);
    // A VPS failure is tried again with backoff (1 s doubling, at most the resync interval):
    // what fixes it often happens outside Kubernetes (a VPS back online, a key authorized on
    // it). A healthy VPS is checked for drift, and rotated certificates, periodically.
    // Uplinks need no timer: their pods and reports wake the Tunnel.
    const failures = failed ? (failuresOf.get(uid) ?? 0) + 1 : 0;
    if (failures > 0) failuresOf.set(uid, failures);
    else failuresOf.delete(uid);
    const nextCheck = Math.max(1000, vps.checkedAt + resyncMs - Date.now());
    return {
      status: vps.status,
      conditions,
      routes: routeOutcomes(edge.address, served, vps.configVersion ? served : [], refused, uplinks),
      requeueAfterMs: failed ? Math.min(resyncMs, 1000 * 2 ** Math.min(failures - 1, 10)) : ports.secrets.length > 0 ? Math.min(nextCheck, 60_000) : nextCheck,
    };
  }

  /**
   * Enrolls the VPS and applies Envoy's configuration. What the VPS last confirmed is kept:
   * a reconcile with the same inputs within the resync interval (uplink reports and pods
   * wake the Tunnel often) does not connect again.
   */
  async function serveOnVps(ctx: TunnelContext<EdgeSession>, enrollment: VpsDesiredState, rendered: RenderedEnvoyConfig, routes: number): Promise<VpsOutcome> {
    const { tunnel } = ctx;
    const edge = tunnel.spec.edge!;
    const uid = tunnel.metadata.uid!;
    const target = targetOf(tunnel, ctx.session, options.sshTimeoutMs);
    const inputs = createHash("sha256").update(JSON.stringify({ enrollment, files: rendered.files, target })).digest("hex");
    const last = confirmedOf.get(uid);
    if (last && last.inputs === inputs && Date.now() - last.outcome.checkedAt < resyncMs) return last.outcome;

    const conditions: ConditionInput[] = [];
    const status: Partial<TunnelObject["status"] & object> = { tunnelId: edge.address };
    let vps: VpsSession | undefined;
    let configVersion: string | undefined;
    try {
      vps = await connectVps(target);
      status.hostKeyFingerprint = vps.hostKeyFingerprint;
      const enrolled = await enrollVps(vps, enrollment);
      if (enrolled.actions.length > 0) ctx.logger.info({ actions: enrolled.actions }, "enrolled the VPS");
      conditions.push({ type: "Enrolled", status: "True", reason: "Enrolled", message: `the VPS at ${edge.address} runs KTube's firewall, WireGuard and Envoy${enrolled.systemd ? " (systemd)" : ""}` });
      try {
        // What only Envoy's C++ loader would refuse never reaches the VPS.
        assertEnvoyConfigValid(rendered, { sshPort: edge.ssh.port, wireguardPort: edge.wireguard.listenPort });
        const applied = await applyEnvoyConfig(vps, rendered, { adminPort: ENVOY_ADMIN_PORT, ...(options.confirmTimeoutMs ? { confirmTimeoutMs: options.confirmTimeoutMs } : {}) });
        configVersion = applied.version;
        status.configVersion = applied.version;
        conditions.push({ type: "ConfigApplied", status: "True", reason: "EnvoyConfirmed", message: `Envoy runs configuration ${applied.version} (${routes} route${routes === 1 ? "" : "s"})` });
      } catch (error) {
        if (!(error instanceof ProviderError)) throw error;
        conditions.push({ type: "ConfigApplied", status: "False", reason: error.reason, message: error.message });
      }
    } catch (error) {
      if (!(error instanceof ProviderError)) throw error;
      if (error instanceof HostKeyError) status.hostKeyFingerprint = error.fingerprint;
      conditions.push({ type: "Enrolled", status: "False", reason: error.reason, message: error.message });
      conditions.push({ type: "ConfigApplied", status: "False", reason: "NotEnrolled", message: "the VPS is not enrolled" });
    } finally {
      vps?.close();
    }
    const outcome: VpsOutcome = { status, conditions, ...(configVersion ? { configVersion } : {}), checkedAt: Date.now() };
    if (conditions.every((c) => c.status === "True")) confirmedOf.set(uid, { inputs, outcome });
    else confirmedOf.delete(uid);
    return outcome;
  }

  /** The uplinks' objects and route table, and what their live replicas report. */
  async function ensureUplinks(ctx: TunnelContext<EdgeSession>, keys: TunnelKeys, addresses: TunnelAddresses, routes: UplinkRoute[]): Promise<UplinkState> {
    const { tunnel, objects } = ctx;
    const edge = tunnel.spec.edge!;
    const names = uplinkNames(tunnel);
    const prefix = addresses.vps.split("/")[1];
    const health = edge.healthCheck;
    const table: UplinkTable = {
      tunnel: tunnel.metadata.uid!,
      vps: {
        publicKey: wireGuardPublicKey(keys.vps)!,
        endpoint: `${edge.address.includes(":") ? `[${edge.address}]` : edge.address}:${edge.wireguard.listenPort}`,
        tunnelAddress: addresses.vps.split("/")[0]!,
      },
      addresses: addresses.uplinks.map((address) => `${address}/${prefix}`),
      mtu: edge.wireguard.mtu,
      persistentKeepalive: edge.wireguard.persistentKeepalive,
      readyPort: UPLINK_READY_PORT,
      // Envoy takes an endpoint out after `unhealthyThreshold` failed checks, one per interval.
      drainSeconds: seconds(health.interval) * health.unhealthyThreshold + seconds(health.timeout) + 1,
      routes: [...routes].sort((a, b) => a.key.localeCompare(b.key)),
    };
    const statusMap = objects.get<KubeObject & { data?: Record<string, string> }>(Core.ConfigMap, names.statusName);
    await objects.ensure(Core.ServiceAccount, connectorServiceAccount(names));
    await objects.ensure(Core.Role, connectorRole(names));
    await objects.ensure(Core.RoleBinding, connectorRoleBinding(names));
    if (!statusMap) await objects.ensure(Core.ConfigMap, statusConfigMap(names));
    await objects.ensure(Core.ConfigMap, routeTableConfigMap(names, JSON.stringify(table)));
    const keyId = createHash("sha256").update(keys.uplinks.join(",")).digest("hex");
    if (uplinkKeysOf.get(tunnel.metadata.uid!) !== keyId) {
      await objects.ensure(Core.Secret, uplinkKeySecret(tunnel, keys.uplinks));
      uplinkKeysOf.set(tunnel.metadata.uid!, keyId);
    }
    await objects.ensure(Core.StatefulSet, uplinkStatefulSet(tunnel, { image: ctx.provider.spec.edge?.uplinkImage ?? options.uplinkImage ?? DEFAULT_UPLINK_IMAGE, drainSeconds: table.drainSeconds }));
    const pdb = uplinkDisruptionBudget(tunnel);
    if (pdb) await objects.ensure(Core.PodDisruptionBudget, pdb);
    else await objects.delete(Core.PodDisruptionBudget, names.name);

    const hash = tableHash(table);
    const reports = pods!.reports(names, statusMap, parseReport);
    const ready = new Set([...reports].filter(([, r]) => r.ready && r.table === hash).map(([pod]) => pod));
    return { hash, reports, ready, condition: uplinksCondition(edge.uplink.replicas, hash, reports, ready) };
  }

  /** The seed every Tunnel's WireGuard keys are derived from, read once (made on first use). */
  function wireguardSeed(): Promise<Buffer> {
    seed ??= loadSeed().catch((error: unknown) => {
      seed = undefined;
      throw error;
    });
    return seed;
  }

  async function loadSeed(): Promise<Buffer> {
    const { client } = kit!.manager;
    const namespace = kit!.options.namespace;
    const read = async (): Promise<Buffer | undefined> => {
      try {
        const secret = await client.get<SecretObject>(Core.Secret, namespace, WIREGUARD_SEED_SECRET);
        const value = Buffer.from(secret.data?.[WIREGUARD_SEED_KEY] ?? "", "base64");
        if (value.length < 32) throw new ProviderError("WireGuardSeedInvalid", `Secret ${namespace}/${WIREGUARD_SEED_SECRET} needs ${WIREGUARD_SEED_KEY}: at least 32 random bytes (delete it and the controller makes a new one; every Tunnel then gets new keys)`);
        return value;
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) return undefined;
        throw error;
      }
    };
    const existing = await read();
    if (existing) return existing;
    try {
      await client.create(Core.Secret, {
        metadata: { name: WIREGUARD_SEED_SECRET, namespace, labels: { "app.kubernetes.io/managed-by": MANAGED_BY } },
        type: "Opaque",
        data: { [WIREGUARD_SEED_KEY]: randomBytes(32).toString("base64") },
      } as KubeObject);
    } catch (error) {
      // Another replica made it first.
      if (!(error instanceof ApiError && error.status === 409)) throw error;
    }
    const made = await read();
    if (!made) throw new Error(`Secret ${namespace}/${WIREGUARD_SEED_SECRET} was made but cannot be read`);
    return made;
  }

  /** A Service target's cluster IP and port, or the raw address; a message when the Service has no cluster IP. */
  function resolveTarget(target: EdgeTarget): UplinkRoute["target"] | string {
    if (!target.service) return { ip: target.host, port: target.port };
    const { namespace, name } = target.service;
    const clusterIP = (kit!.manager.cache.get(Core.Service, namespace, name) as { spec?: { clusterIP?: string } } | undefined)?.spec?.clusterIP;
    if (!clusterIP || clusterIP === "None" || !/^\d+\.\d+\.\d+\.\d+$/.test(clusterIP)) {
      return `Service ${namespace}/${name} has no IPv4 cluster IP (${clusterIP ?? "none"}): the edge forwards to a Service's cluster IP, so a headless or ExternalName Service cannot be a target`;
    }
    return { ip: clusterIP, port: target.port };
  }

  async function loadTlsSecret(ref: TlsSecretRef): Promise<EdgeTlsSecret | string> {
    let secret: SecretObject;
    try {
      // A GET, not a watch: the controller reads only the Secrets a terminated route names.
      secret = await kit!.manager.client.get<SecretObject>(Core.Secret, ref.namespace, ref.secret);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return `Secret ${ref.namespace}/${ref.secret} not found`;
      if (error instanceof ApiError && error.status === 403) return `the controller may not read Secret ${ref.namespace}/${ref.secret}`;
      throw error;
    }
    const value = (key: string): string | undefined => (secret.data?.[key] ? Buffer.from(secret.data[key]!, "base64").toString("utf8") : undefined);
    const cert = value("tls.crt");
    const key = value("tls.key");
    const ca = value("ca.crt");
    if (!cert || !key) return `Secret ${ref.namespace}/${ref.secret} needs tls.crt and tls.key (a kubernetes.io/tls Secret)`;
    if (ref.mutual && !ca) return `Secret ${ref.namespace}/${ref.secret} needs ca.crt for mutual TLS (the CA client certificates must chain to)`;
    return { name: ref.name, certificateChain: cert, privateKey: key, ...(ref.mutual && ca ? { caCertificate: ca } : {}) };
  }

  function warnPrivateKeys(ctx: TunnelContext<EdgeSession>, served: EdgePlan["routes"]): void {
    for (const { binding } of ctx.accepted) {
      const key = `${binding.metadata.namespace}/${binding.metadata.name}/`;
      for (const route of served.filter((r) => r.key.startsWith(key) && r.tls?.secret)) {
        const id = `${binding.metadata.uid}/${route.tls!.secret}`;
        if (warned.has(id)) continue;
        warned.add(id);
        void kit!.manager.events.record(
          binding,
          "Warning",
          "PrivateKeyOnEdge",
          "Reconcile",
          `route ${route.key.slice(key.length)} terminates TLS on the VPS: the private key of Secret ${route.tls!.secret!.replace(".", "/")} is copied to ${ctx.tunnel.spec.edge!.address} (${ENVOY_SDS_DIR}, readable by Envoy only)`,
        );
      }
    }
  }
}

const seconds = (duration: string): number => Math.max(1, Math.round(durationMs(duration) / 1000));

const ownerOf = (tunnel: TunnelObject): string => `${tunnel.metadata.namespace}/${tunnel.metadata.name} ${tunnel.metadata.uid}`;

function targetOf(tunnel: TunnelObject, session: EdgeSession, connectTimeoutMs?: number): VpsTarget {
  const edge = tunnel.spec.edge!;
  return {
    host: edge.address,
    port: edge.ssh.port,
    user: edge.ssh.user,
    privateKey: session.privateKey,
    ...(session.passphrase ? { passphrase: session.passphrase } : {}),
    knownHosts: session.knownHosts,
    insecureSkipHostKeyVerification: edge.ssh.insecureSkipHostKeyVerification,
    ...(connectTimeoutMs ? { connectTimeoutMs } : {}),
  };
}

/** UplinksReady: every replica forwards the current table; else who does not, and why. */
function uplinksCondition(replicas: number, hash: string, reports: Map<string, UplinkReport>, ready: Set<string>): ConditionInput {
  if (ready.size === replicas) return { type: "UplinksReady", status: "True", reason: "UplinksForwarding", message: `every uplink (${replicas}) forwards the current routes over a fresh WireGuard handshake` };
  const waiting = [...reports].filter(([pod]) => !ready.has(pod)).sort(([a], [b]) => a.localeCompare(b));
  const named = waiting.find(([, r]) => r.reason);
  const detail = named
    ? `${named[0]}: ${named[1].message ?? named[1].reason}`
    : waiting.length > 0
      ? `${waiting[0]![0]}: applying the current routes${waiting[0]![1].table && waiting[0]![1].table !== hash ? " (it forwards an older table)" : ""}`
      : "no uplink pod has reported yet";
  return { type: "UplinksReady", status: "False", reason: named?.[1].reason ?? "UplinksStarting", message: `${ready.size} of ${replicas} uplinks forward the current routes; ${detail}` };
}

function routeOutcomes(
  address: string,
  served: EdgePlan["routes"],
  applied: EdgePlan["routes"],
  refused: Array<{ key: string; outcome: RouteOutcome }>,
  uplinks: UplinkState,
): Map<string, RouteOutcomes> {
  const outcomes: Array<[string, RouteOutcome]> = refused.map(({ key, outcome }) => [key, outcome]);
  const set = (key: string, outcome: RouteOutcome): void => void outcomes.push([key, outcome]);
  const live = new Set(applied.map((r) => r.key));
  for (const route of served) {
    const reservation = { id: "tunnelPort", address: String(route.tunnelPort) };
    const url = publicUrl(address, route);
    if (!live.has(route.key)) set(route.key, { ready: false, reason: "ConfigNotApplied", message: "waiting for Envoy on the VPS to confirm the configuration", reservation });
    else if (uplinks.ready.size === 0) set(route.key, { ready: false, reason: "UplinkNotReady", message: `Envoy serves ${url}; waiting for an uplink to carry it to the target (${uplinks.condition.message})`, url, reservation });
    else set(route.key, { ready: true, url, reservation });
  }
  return outcomesByBinding(outcomes);
}
