// The Kubernetes objects a named tunnel runs on: the connector token Secret, the
// cloudflared Deployment and its PodDisruptionBudget, all owned by the Tunnel.
import type { Tunnel } from "@ktube/api";
import type { KubeObject } from "@ktube/runtime";
import { createHash } from "node:crypto";

export const MANAGED_BY = "ktube-cloudflare-controller";
export const SPEC_HASH = "ktube.dev/spec-hash";
export const DEFAULT_CLOUDFLARED_IMAGE = "cloudflare/cloudflared:2025.11.1";
const METRICS_PORT = 2000;

export const cloudflaredName = (tunnel: Tunnel): string => `${tunnel.metadata.name}-cloudflared`;

export function labels(tunnel: Tunnel): Record<string, string> {
  return {
    "app.kubernetes.io/name": "cloudflared",
    "app.kubernetes.io/instance": tunnel.metadata.name!,
    "app.kubernetes.io/managed-by": MANAGED_BY,
    "ktube.dev/tunnel": tunnel.metadata.name!,
  };
}

function owner(tunnel: Tunnel) {
  return [{ apiVersion: tunnel.apiVersion, kind: tunnel.kind, name: tunnel.metadata.name!, uid: tunnel.metadata.uid!, controller: true, blockOwnerDeletion: true }];
}

/** Stamps `object` with a hash of itself, so an unchanged desired state needs no write. */
export function withSpecHash<T extends KubeObject>(object: T): T {
  const hash = createHash("sha256").update(JSON.stringify(object)).digest("hex").slice(0, 16);
  return { ...object, metadata: { ...object.metadata, annotations: { ...object.metadata?.annotations, [SPEC_HASH]: hash } } };
}

export const specHashOf = (object: KubeObject | undefined): string | undefined => object?.metadata?.annotations?.[SPEC_HASH];

export function tokenSecret(tunnel: Tunnel, token: string): KubeObject {
  return withSpecHash({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: cloudflaredName(tunnel), namespace: tunnel.metadata.namespace!, labels: labels(tunnel), ownerReferences: owner(tunnel) },
    type: "Opaque",
    data: { TUNNEL_TOKEN: Buffer.from(token).toString("base64") },
  } as KubeObject);
}

export function deployment(tunnel: Tunnel, defaultImage: string): KubeObject {
  const spec = tunnel.spec.cloudflare;
  const replicas = spec?.replicas ?? 2;
  const settings = spec?.cloudflared;
  return withSpecHash({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: cloudflaredName(tunnel), namespace: tunnel.metadata.namespace!, labels: labels(tunnel), ownerReferences: owner(tunnel) },
    spec: {
      replicas,
      selector: { matchLabels: { "app.kubernetes.io/name": "cloudflared", "app.kubernetes.io/instance": tunnel.metadata.name! } },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: labels(tunnel) },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } },
          ...(settings?.nodeSelector ? { nodeSelector: settings.nodeSelector } : {}),
          ...(settings?.tolerations ? { tolerations: settings.tolerations } : {}),
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                { weight: 100, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: { "app.kubernetes.io/instance": tunnel.metadata.name! } } } },
              ],
            },
          },
          containers: [
            {
              name: "cloudflared",
              image: settings?.image ?? defaultImage,
              args: ["tunnel", "--no-autoupdate", "--metrics", `0.0.0.0:${METRICS_PORT}`, "run"],
              env: [{ name: "TUNNEL_TOKEN", valueFrom: { secretKeyRef: { name: cloudflaredName(tunnel), key: "TUNNEL_TOKEN" } } }],
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
  } as KubeObject);
}

/** Keeps one connector up through voluntary disruptions when there are two or more. */
export function disruptionBudget(tunnel: Tunnel): KubeObject | undefined {
  if ((tunnel.spec.cloudflare?.replicas ?? 2) < 2) return undefined;
  return withSpecHash({
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: { name: cloudflaredName(tunnel), namespace: tunnel.metadata.namespace!, labels: labels(tunnel), ownerReferences: owner(tunnel) },
    spec: { maxUnavailable: 1, selector: { matchLabels: { "app.kubernetes.io/name": "cloudflared", "app.kubernetes.io/instance": tunnel.metadata.name! } } },
  } as KubeObject);
}
