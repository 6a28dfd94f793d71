// The Kubernetes objects a Tunnel's uplinks run on, all controlled by the Tunnel: the
// uplinks' key Secret (only their own keys, never the VPS's), the StatefulSet (a replica's
// ordinal picks its key and its tunnel address, so both stay with it across restarts) and
// its PodDisruptionBudget; the route table, the status ConfigMap and the uplinks' own
// ServiceAccount and Role come from the kit. Also the route table's shape and what an
// uplink reports, shared by the controller and the connector.
import type { Tunnel } from "@ktube/api";
import { CONNECTOR_PROBE_PORT, ConnectorNames } from "@ktube/provider-kit";
import type { KubeObject } from "@ktube/runtime";
import { createHash } from "node:crypto";

export const MANAGED_BY = "ktube-edge-controller";
export const DEFAULT_UPLINK_IMAGE = "ghcr.io/ktube-dev/edge-controller:0.1.0";
const KEY_DIR = "/etc/ktube/wireguard";

/** The uplink's own environment, beside the kit's CONNECTOR_ENV. */
export const UPLINK_ENV = {
  keyDir: "KTUBE_UPLINK_KEY_DIR",
  /** The WireGuard interface (default `ktube0`; unique names for several uplinks sharing one wireguard-go socket directory). */
  iface: "KTUBE_UPLINK_INTERFACE",
} as const;

export const uplinkNames = (tunnel: Tunnel): ConnectorNames => new ConnectorNames("edge-uplink", "edge-uplink", tunnel);

/** `uplink-<ordinal>.key`: the file of each replica's private key in the uplinks' Secret. */
export const uplinkKeyFile = (ordinal: number): string => `uplink-${ordinal}.key`;

export interface UplinkRoute {
  key: string;
  protocol: "TCP" | "UDP";
  /** The port on the uplink's tunnel address Envoy sends this route to. */
  tunnelPort: number;
  /** A Service's cluster IP and port, or an allowed raw address. */
  target: { ip: string; port: number };
}

/** The route table the controller writes and every uplink replica reads. */
export interface UplinkTable {
  /** The Tunnel's uid: a replica ignores a table that is not its tunnel's. */
  tunnel: string;
  vps: { publicKey: string; endpoint: string; tunnelAddress: string };
  /** Each replica's tunnel address with the network's prefix, by ordinal. */
  addresses: string[];
  mtu: number;
  persistentKeepalive: number;
  /** Where Envoy's health checks ask `/ready`, on the tunnel address. */
  readyPort: number;
  /** How long a stopping replica keeps forwarding after it stops reporting ready: long enough for Envoy's health checks to take it out. */
  drainSeconds: number;
  routes: UplinkRoute[];
}

/** What a replica writes under its pod's key in the status ConfigMap: only what changes rarely, so a steady uplink writes nothing. */
export interface UplinkReport {
  /** The hash of the table the replica last applied (rules and WireGuard both). */
  table?: string;
  /** Serving: the table applied and a fresh handshake with the VPS. */
  ready: boolean;
  wireguard?: "kernel" | "wireguard-go";
  reason?: string;
  message?: string;
}

export const tableHash = (table: UplinkTable): string => createHash("sha256").update(JSON.stringify(table)).digest("hex").slice(0, 16);

export function parseReport(text: string): UplinkReport | undefined {
  try {
    const report = JSON.parse(text) as UplinkReport;
    return typeof report.ready === "boolean" ? report : undefined;
  } catch {
    return undefined;
  }
}

/** The uplinks' keys, copied from the Tunnel's key Secret without the VPS's. */
export function uplinkKeySecret(tunnel: Tunnel, keys: readonly string[]): KubeObject {
  const data = Object.fromEntries(keys.map((key, i) => [uplinkKeyFile(i), Buffer.from(`${key}\n`).toString("base64")]));
  return { metadata: uplinkNames(tunnel).meta(), type: "Opaque", data } as KubeObject;
}

export interface StatefulSetOptions {
  image: string;
  drainSeconds: number;
}

export function uplinkStatefulSet(tunnel: Tunnel, options: StatefulSetOptions): KubeObject {
  const names = uplinkNames(tunnel);
  const uplink = tunnel.spec.edge!.uplink;
  const placement = {
    ...(uplink.nodeSelector ? { nodeSelector: uplink.nodeSelector } : {}),
    ...(uplink.tolerations ? { tolerations: uplink.tolerations } : {}),
  };
  return {
    metadata: names.meta(),
    spec: {
      replicas: uplink.replicas,
      serviceName: names.name,
      // Replicas are peers (active-active behind Envoy's health checks): none waits for another.
      podManagementPolicy: "Parallel",
      selector: { matchLabels: names.selector },
      updateStrategy: { type: "RollingUpdate" },
      template: {
        metadata: { labels: names.labels },
        spec: {
          serviceAccountName: names.name,
          automountServiceAccountToken: true,
          enableServiceLinks: false,
          // The drain, then the interface and rules removed.
          terminationGracePeriodSeconds: options.drainSeconds + 15,
          // Root in its own network namespace with only NET_ADMIN: the uplink runs `ip`, `wg`
          // and `nft`, and Kubernetes cannot hand a non-root container's child processes a
          // capability (no ambient capabilities for containers). The other way, file
          // capabilities on those binaries, works only with allowPrivilegeEscalation (no_new_privs
          // ignores them), which is worse than root without escalation.
          securityContext: { runAsNonRoot: false, runAsUser: 0, runAsGroup: 0, seccompProfile: { type: "RuntimeDefault" } },
          affinity: uplink.affinity ?? {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                { weight: 100, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: names.selector } } },
              ],
            },
          },
          ...placement,
          volumes: [
            { name: "keys", secret: { secretName: names.name, defaultMode: 0o400 } },
            // wireguard-go (where the kernel has no WireGuard) keeps its control socket here.
            { name: "wireguard-run", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
          ],
          containers: [
            {
              name: "uplink",
              image: options.image,
              args: ["connector"],
              env: [...names.env(), { name: UPLINK_ENV.keyDir, value: KEY_DIR }, { name: "LOG_FORMAT", value: "json" }],
              volumeMounts: [
                { name: "keys", mountPath: KEY_DIR, readOnly: true },
                { name: "wireguard-run", mountPath: "/var/run/wireguard" },
              ],
              ports: [{ name: "probes", containerPort: CONNECTOR_PROBE_PORT }],
              readinessProbe: { httpGet: { path: "/ready", port: CONNECTOR_PROBE_PORT }, periodSeconds: 5, failureThreshold: 2 },
              livenessProbe: { httpGet: { path: "/healthz", port: CONNECTOR_PROBE_PORT }, initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 6 },
              resources: uplink.resources ?? { requests: { cpu: "20m", memory: "96Mi" }, limits: { memory: "256Mi" } },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ["ALL"], add: ["NET_ADMIN"] },
              },
            },
          ],
        },
      },
    },
  } as KubeObject;
}

export function uplinkDisruptionBudget(tunnel: Tunnel): KubeObject | undefined {
  if (tunnel.spec.edge!.uplink.replicas < 2) return undefined;
  const names = uplinkNames(tunnel);
  return { metadata: names.meta(), spec: { maxUnavailable: 1, selector: { matchLabels: names.selector } } } as KubeObject;
}
