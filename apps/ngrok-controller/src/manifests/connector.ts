// The Kubernetes objects a Tunnel's ngrok agents run on, all controlled by the Tunnel:
// the authtoken Secret (mounted as a file), the route table ConfigMap (no secrets), the
// status ConfigMap the replicas report into, a ServiceAccount whose Role can read only the
// route table and patch only the status, the Deployment and its PodDisruptionBudget.
import type { Tunnel } from "@ktube/api";
import type { KubeObject } from "@ktube/runtime";

export const MANAGED_BY = "ktube-ngrok-controller";
export const DEFAULT_CONNECTOR_IMAGE = "ghcr.io/ktube-dev/ngrok-controller:0.1.0";
export const AUTHTOKEN_KEY = "authtoken";
export const CA_KEY = "ca.pem";
const PROBE_PORT = 8080;
const TOKEN_DIR = "/etc/ktube/ngrok";
const CA_DIR = "/etc/ktube/ngrok-ca";

/** The connector's environment: what its Deployment sets, what a local run sets by hand. */
export const CONNECTOR_ENV = {
  namespace: "KTUBE_NAMESPACE",
  routeTable: "KTUBE_ROUTE_TABLE",
  statusMap: "KTUBE_STATUS_CONFIGMAP",
  tunnelUid: "KTUBE_TUNNEL_UID",
  pod: "POD_NAME",
  authtokenFile: "NGROK_AUTHTOKEN_FILE",
  serverAddr: "NGROK_SERVER_ADDR",
  caFile: "NGROK_CA_FILE",
  heartbeatS: "NGROK_HEARTBEAT_SECONDS",
  probeAddress: "KTUBE_PROBE_ADDRESS",
  /** JSON `{"svc.ns.svc.cluster.local:80": "127.0.0.1:8080"}`: for a connector run outside its cluster. */
  upstreamOverrides: "KTUBE_UPSTREAM_OVERRIDES",
} as const;

export const agentName = (tunnel: Tunnel): string => `${tunnel.metadata.name}-ngrok`;
export const statusName = (tunnel: Tunnel): string => `${tunnel.metadata.name}-ngrok-status`;

export function labels(tunnel: Tunnel): Record<string, string> {
  return { "app.kubernetes.io/name": "ngrok-agent", "app.kubernetes.io/instance": tunnel.metadata.name!, "ktube.dev/tunnel": tunnel.metadata.name! };
}

const selector = (tunnel: Tunnel) => ({ "app.kubernetes.io/name": "ngrok-agent", "app.kubernetes.io/instance": tunnel.metadata.name! });
const meta = (tunnel: Tunnel, name: string) => ({ name, namespace: tunnel.metadata.namespace!, labels: labels(tunnel) });

export function authtokenSecret(tunnel: Tunnel, authtoken: string): KubeObject {
  return { metadata: meta(tunnel, agentName(tunnel)), type: "Opaque", data: { [AUTHTOKEN_KEY]: Buffer.from(authtoken).toString("base64") } } as KubeObject;
}

/** The route table; `ca` is the ingress CA's PEM where the controller was given one (public data). */
export function routeTableConfigMap(tunnel: Tunnel, table: string, ca?: string): KubeObject {
  return { metadata: meta(tunnel, agentName(tunnel)), data: { "routes.json": table, ...(ca ? { [CA_KEY]: ca } : {}) } } as KubeObject;
}

/** Made empty; each replica writes only its own key (the controller never sets `data`, so it never overwrites them). */
export function statusConfigMap(tunnel: Tunnel): KubeObject {
  return { metadata: meta(tunnel, statusName(tunnel)) } as KubeObject;
}

export function serviceAccount(tunnel: Tunnel): KubeObject {
  return { metadata: meta(tunnel, agentName(tunnel)), automountServiceAccountToken: false } as KubeObject;
}

/** Exactly what a replica does: watch its route table, patch its status. Nothing else. */
export function role(tunnel: Tunnel): KubeObject {
  return {
    metadata: meta(tunnel, agentName(tunnel)),
    rules: [
      { apiGroups: [""], resources: ["configmaps"], resourceNames: [agentName(tunnel)], verbs: ["get", "list", "watch"] },
      { apiGroups: [""], resources: ["configmaps"], resourceNames: [statusName(tunnel)], verbs: ["get", "patch"] },
    ],
  } as KubeObject;
}

export function roleBinding(tunnel: Tunnel): KubeObject {
  return {
    metadata: meta(tunnel, agentName(tunnel)),
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: agentName(tunnel) },
    subjects: [{ kind: "ServiceAccount", name: agentName(tunnel), namespace: tunnel.metadata.namespace! }],
  } as KubeObject;
}

export interface DeploymentOptions {
  image: string;
  serverAddr?: string;
  hasCa: boolean;
  /** Changes when the authtoken changes, so the replicas restart with the new one. */
  credentialHash: string;
}

export function deployment(tunnel: Tunnel, options: DeploymentOptions): KubeObject {
  const env = [
    { name: CONNECTOR_ENV.namespace, valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    { name: CONNECTOR_ENV.pod, valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: CONNECTOR_ENV.routeTable, value: agentName(tunnel) },
    { name: CONNECTOR_ENV.statusMap, value: statusName(tunnel) },
    { name: CONNECTOR_ENV.tunnelUid, value: tunnel.metadata.uid! },
    { name: CONNECTOR_ENV.authtokenFile, value: `${TOKEN_DIR}/${AUTHTOKEN_KEY}` },
    ...(options.serverAddr ? [{ name: CONNECTOR_ENV.serverAddr, value: options.serverAddr }] : []),
    ...(options.hasCa ? [{ name: CONNECTOR_ENV.caFile, value: `${CA_DIR}/${CA_KEY}` }] : []),
    { name: "LOG_FORMAT", value: "json" },
  ];
  return {
    metadata: meta(tunnel, agentName(tunnel)),
    spec: {
      replicas: tunnel.spec.ngrok?.replicas ?? 2,
      selector: { matchLabels: selector(tunnel) },
      // No surge: each replica is an agent session, and plans limit sessions (ngrok-operator#266).
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
      template: {
        metadata: { labels: labels(tunnel), annotations: { "ktube.dev/credential-hash": options.credentialHash } },
        spec: {
          serviceAccountName: agentName(tunnel),
          automountServiceAccountToken: true,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 30,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } },
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                { weight: 100, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: selector(tunnel) } } },
              ],
            },
          },
          volumes: [
            { name: "authtoken", secret: { secretName: agentName(tunnel), defaultMode: 0o440 } },
            ...(options.hasCa ? [{ name: "ca", configMap: { name: agentName(tunnel), items: [{ key: CA_KEY, path: CA_KEY }] } }] : []),
          ],
          containers: [
            {
              name: "agent",
              image: options.image,
              args: ["connector"],
              env,
              volumeMounts: [
                { name: "authtoken", mountPath: TOKEN_DIR, readOnly: true },
                ...(options.hasCa ? [{ name: "ca", mountPath: CA_DIR, readOnly: true }] : []),
              ],
              ports: [{ name: "probes", containerPort: PROBE_PORT }],
              readinessProbe: { httpGet: { path: "/ready", port: PROBE_PORT }, periodSeconds: 5, failureThreshold: 2 },
              livenessProbe: { httpGet: { path: "/healthz", port: PROBE_PORT }, initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 6 },
              resources: { requests: { cpu: "20m", memory: "96Mi" }, limits: { memory: "256Mi" } },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
            },
          ],
        },
      },
    },
  } as KubeObject;
}

export function disruptionBudget(tunnel: Tunnel): KubeObject | undefined {
  if ((tunnel.spec.ngrok?.replicas ?? 2) < 2) return undefined;
  return { metadata: meta(tunnel, agentName(tunnel)), spec: { maxUnavailable: 1, selector: { matchLabels: selector(tunnel) } } } as KubeObject;
}
