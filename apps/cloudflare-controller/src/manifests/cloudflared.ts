// The Kubernetes objects a named tunnel runs on: the connector token Secret, the
// cloudflared Deployment and its PodDisruptionBudget, all controlled by the Tunnel (the
// kit marks them as ours and adds the ownerReference).
import type { Tunnel } from "@ktube/api";
import type { KubeObject } from "@ktube/runtime";

export const MANAGED_BY = "ktube-cloudflare-controller";
export const DEFAULT_CLOUDFLARED_IMAGE = "cloudflare/cloudflared:2025.11.1";
export const TOKEN_KEY = "token";
const METRICS_PORT = 2000;
const TOKEN_DIR = "/etc/cloudflared/token";

export const cloudflaredName = (tunnel: Tunnel): string => `${tunnel.metadata.name}-cloudflared`;

export function labels(tunnel: Tunnel): Record<string, string> {
  return { "app.kubernetes.io/name": "cloudflared", "app.kubernetes.io/instance": tunnel.metadata.name!, "ktube.dev/tunnel": tunnel.metadata.name! };
}

const selector = (tunnel: Tunnel) => ({ "app.kubernetes.io/name": "cloudflared", "app.kubernetes.io/instance": tunnel.metadata.name! });

/** The connector token, read by cloudflared from a mounted file (never an environment variable). */
export function tokenSecret(tunnel: Tunnel, token: string): KubeObject {
  return {
    metadata: { name: cloudflaredName(tunnel), namespace: tunnel.metadata.namespace!, labels: labels(tunnel) },
    type: "Opaque",
    data: { [TOKEN_KEY]: Buffer.from(token).toString("base64") },
  } as KubeObject;
}

export function deployment(tunnel: Tunnel, defaultImage: string): KubeObject {
  const spec = tunnel.spec.cloudflare;
  const settings = spec?.cloudflared;
  return {
    metadata: { name: cloudflaredName(tunnel), namespace: tunnel.metadata.namespace!, labels: labels(tunnel) },
    spec: {
      replicas: spec?.replicas ?? 2,
      selector: { matchLabels: selector(tunnel) },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: labels(tunnel) },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          // fsGroup makes the mounted token readable by the non-root user (mode 0440, group 65532).
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } },
          ...(settings?.nodeSelector ? { nodeSelector: settings.nodeSelector } : {}),
          ...(settings?.tolerations ? { tolerations: settings.tolerations } : {}),
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                { weight: 100, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: selector(tunnel) } } },
              ],
            },
          },
          volumes: [{ name: "token", secret: { secretName: cloudflaredName(tunnel), defaultMode: 0o440 } }],
          containers: [
            {
              name: "cloudflared",
              image: settings?.image ?? defaultImage,
              args: ["tunnel", "--no-autoupdate", "--metrics", `0.0.0.0:${METRICS_PORT}`, "run", "--token-file", `${TOKEN_DIR}/${TOKEN_KEY}`],
              volumeMounts: [{ name: "token", mountPath: TOKEN_DIR, readOnly: true }],
              ports: [{ name: "metrics", containerPort: METRICS_PORT }],
              readinessProbe: { httpGet: { path: "/ready", port: METRICS_PORT }, periodSeconds: 10, failureThreshold: 3 },
              livenessProbe: { httpGet: { path: "/ready", port: METRICS_PORT }, initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 6 },
              resources: settings?.resources ?? { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
            },
          ],
        },
      },
    },
  } as KubeObject;
}

/** Keeps one connector up through voluntary disruptions when there are two or more. */
export function disruptionBudget(tunnel: Tunnel): KubeObject | undefined {
  if ((tunnel.spec.cloudflare?.replicas ?? 2) < 2) return undefined;
  return {
    metadata: { name: cloudflaredName(tunnel), namespace: tunnel.metadata.namespace!, labels: labels(tunnel) },
    spec: { maxUnavailable: 1, selector: { matchLabels: selector(tunnel) } },
  } as KubeObject;
}
