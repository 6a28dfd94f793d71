// The Kubernetes objects a Tunnel's ngrok agents run on, all controlled by the Tunnel: the
// authtoken Secret (mounted as a file), the Deployment and its PodDisruptionBudget; the route
// table, status ConfigMap and the agents' own ServiceAccount and Role come from the kit.
import type { Tunnel } from "@ktube/api";
import { CONNECTOR_PROBE_PORT, ConnectorNames } from "@ktube/provider-kit";
import type { KubeObject } from "@ktube/runtime";

export const MANAGED_BY = "ktube-ngrok-controller";
export const DEFAULT_CONNECTOR_IMAGE = "ghcr.io/ktube-dev/ngrok-controller:0.1.0";
export const AUTHTOKEN_KEY = "authtoken";
export const CA_KEY = "ca.pem";
const TOKEN_DIR = "/etc/ktube/ngrok";
const CA_DIR = "/etc/ktube/ngrok-ca";

/** The ngrok agent's own environment, beside the kit's CONNECTOR_ENV. */
export const AGENT_ENV = {
  authtokenFile: "NGROK_AUTHTOKEN_FILE",
  serverAddr: "NGROK_SERVER_ADDR",
  caFile: "NGROK_CA_FILE",
  heartbeatS: "NGROK_HEARTBEAT_SECONDS",
} as const;

export const agentNames = (tunnel: Tunnel): ConnectorNames => new ConnectorNames("ngrok-agent", "ngrok", tunnel);

export function authtokenSecret(tunnel: Tunnel, authtoken: string): KubeObject {
  return { metadata: agentNames(tunnel).meta(), type: "Opaque", data: { [AUTHTOKEN_KEY]: Buffer.from(authtoken).toString("base64") } } as KubeObject;
}

export interface DeploymentOptions {
  image: string;
  serverAddr?: string;
  hasCa: boolean;
  /** Changes when the authtoken changes, so the replicas restart with the new one. */
  credentialHash: string;
}

export function deployment(tunnel: Tunnel, options: DeploymentOptions): KubeObject {
  const names = agentNames(tunnel);
  const env = [
    ...names.env(),
    { name: AGENT_ENV.authtokenFile, value: `${TOKEN_DIR}/${AUTHTOKEN_KEY}` },
    ...(options.serverAddr ? [{ name: AGENT_ENV.serverAddr, value: options.serverAddr }] : []),
    ...(options.hasCa ? [{ name: AGENT_ENV.caFile, value: `${CA_DIR}/${CA_KEY}` }] : []),
    { name: "LOG_FORMAT", value: "json" },
  ];
  return {
    metadata: names.meta(),
    spec: {
      replicas: tunnel.spec.ngrok?.replicas ?? 2,
      selector: { matchLabels: names.selector },
      // No surge: each replica is an agent session, and plans limit sessions (ngrok-operator#266).
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
      template: {
        metadata: { labels: names.labels, annotations: { "ktube.dev/credential-hash": options.credentialHash } },
        spec: {
          serviceAccountName: names.name,
          automountServiceAccountToken: true,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 30,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } },
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                { weight: 100, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: names.selector } } },
              ],
            },
          },
          volumes: [
            { name: "authtoken", secret: { secretName: names.name, defaultMode: 0o440 } },
            ...(options.hasCa ? [{ name: "ca", configMap: { name: names.name, items: [{ key: CA_KEY, path: CA_KEY }] } }] : []),
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
              ports: [{ name: "probes", containerPort: CONNECTOR_PROBE_PORT }],
              readinessProbe: { httpGet: { path: "/ready", port: CONNECTOR_PROBE_PORT }, periodSeconds: 5, failureThreshold: 2 },
              livenessProbe: { httpGet: { path: "/healthz", port: CONNECTOR_PROBE_PORT }, initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 6 },
              // Measured (bench/ngrok): about 165 MiB settled and 200 MiB at peak with 200 endpoints, mostly Node, the SDK and the client.
              resources: { requests: { cpu: "20m", memory: "192Mi" }, limits: { memory: "384Mi" } },
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
  const names = agentNames(tunnel);
  return { metadata: names.meta(), spec: { maxUnavailable: 1, selector: { matchLabels: names.selector } } } as KubeObject;
}
