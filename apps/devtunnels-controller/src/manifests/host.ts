// The Kubernetes objects a Tunnel's Dev Tunnels host runs on, all controlled by the Tunnel:
// the host token Secret (a tunnel access token scoped to hosting this one dev tunnel, valid
// 24 h and renewed by the controller every 12 h, mounted as a file: the host never holds the
// service principal's secret), the Deployment and, from the kit, the route table, status ConfigMap
// and the host's own ServiceAccount and Role.
import type { Tunnel } from "@ktube/api";
import { CONNECTOR_PROBE_PORT, ConnectorNames } from "@ktube/provider-kit";
import type { KubeObject } from "@ktube/runtime";

export const MANAGED_BY = "ktube-devtunnels-controller";
export const DEFAULT_HOST_IMAGE = "ghcr.io/ktube-dev/devtunnels-controller:0.1.0";
export const TOKEN_KEY = "token";
const TOKEN_DIR = "/etc/ktube/devtunnels";

/** The host's own environment, beside the kit's CONNECTOR_ENV. */
export const HOST_ENV = {
  tokenFile: "DEVTUNNELS_TOKEN_FILE",
  serviceUri: "DEVTUNNELS_SERVICE_URI",
} as const;

export const hostNames = (tunnel: Tunnel): ConnectorNames => new ConnectorNames("devtunnels-host", "devtunnel", tunnel);

export function hostTokenSecret(tunnel: Tunnel, token: string): KubeObject {
  return { metadata: hostNames(tunnel).meta(), type: "Opaque", data: { [TOKEN_KEY]: Buffer.from(token).toString("base64") } } as KubeObject;
}

export interface HostDeploymentOptions {
  image: string;
  serviceUri: string;
}

/**
 * One host: the relay keeps only the newest host of a tunnel. A rollout starts the new pod
 * first (maxSurge 1): it connects, the relay drops the old one, which steps aside.
 */
export function hostDeployment(tunnel: Tunnel, options: HostDeploymentOptions): KubeObject {
  const names = hostNames(tunnel);
  return {
    metadata: names.meta(),
    spec: {
      replicas: 1,
      selector: { matchLabels: names.selector },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        // The token is renewed in place (the mounted file changes; the host reads it when it needs it): no restart.
        metadata: { labels: names.labels },
        spec: {
          serviceAccountName: names.name,
          automountServiceAccountToken: true,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 30,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } },
          volumes: [{ name: "token", secret: { secretName: names.name, defaultMode: 0o440 } }],
          containers: [
            {
              name: "host",
              image: options.image,
              args: ["connector"],
              env: [
                ...names.env(),
                { name: HOST_ENV.tokenFile, value: `${TOKEN_DIR}/${TOKEN_KEY}` },
                { name: HOST_ENV.serviceUri, value: options.serviceUri },
                { name: "LOG_FORMAT", value: "json" },
              ],
              volumeMounts: [{ name: "token", mountPath: TOKEN_DIR, readOnly: true }],
              ports: [{ name: "probes", containerPort: CONNECTOR_PROBE_PORT }],
              readinessProbe: { httpGet: { path: "/ready", port: CONNECTOR_PROBE_PORT }, periodSeconds: 5, failureThreshold: 2 },
              livenessProbe: { httpGet: { path: "/healthz", port: CONNECTOR_PROBE_PORT }, initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 6 },
              resources: { requests: { cpu: "20m", memory: "96Mi" }, limits: { memory: "256Mi" } },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
            },
          ],
        },
      },
    },
  } as KubeObject;
}
