// A quick tunnel per route: a one-replica cloudflared Deployment that asks Cloudflare
// for a random https://*.trycloudflare.com URL for one origin, and a Service in front
// of its metrics port, where the controller reads the URL (/quicktunnel). Both are
// controlled by the binding (the kit marks them as ours and adds the ownerReference).
import type { TunnelBinding } from "@ktube/api";
import type { KubeObject } from "@ktube/runtime";
import { createHash } from "node:crypto";

export const QUICK_TUNNEL_LABEL = "ktube.dev/quick-tunnel";
const METRICS_PORT = 2000;

/** `qt-<binding>-<route>`, shortened with a hash where that would pass 63 characters. */
export function quickTunnelName(binding: TunnelBinding, route: string): string {
  const name = `qt-${binding.metadata.name}-${route}`;
  if (name.length <= 63) return name;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 8);
  return `${name.slice(0, 54).replace(/-+$/, "")}-${hash}`;
}

function labels(binding: TunnelBinding, route: string): Record<string, string> {
  return {
    "app.kubernetes.io/name": "cloudflared-quick-tunnel",
    "app.kubernetes.io/instance": quickTunnelName(binding, route),
    [QUICK_TUNNEL_LABEL]: binding.metadata.name!,
  };
}

export function quickTunnelDeployment(binding: TunnelBinding, route: string, origin: string, image: string): KubeObject {
  const name = quickTunnelName(binding, route);
  return {
    metadata: { name, namespace: binding.metadata.namespace!, labels: labels(binding, route) },
    spec: {
      replicas: 1,
      selector: { matchLabels: { "app.kubernetes.io/instance": name } },
      template: {
        metadata: { labels: labels(binding, route) },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } },
          containers: [
            {
              name: "cloudflared",
              image,
              args: ["tunnel", "--no-autoupdate", "--metrics", `0.0.0.0:${METRICS_PORT}`, "--url", origin],
              ports: [{ name: "metrics", containerPort: METRICS_PORT }],
              readinessProbe: { httpGet: { path: "/ready", port: METRICS_PORT }, periodSeconds: 10 },
              resources: { requests: { cpu: "20m", memory: "32Mi" }, limits: { memory: "128Mi" } },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
            },
          ],
        },
      },
    },
  } as KubeObject;
}

export function quickTunnelService(binding: TunnelBinding, route: string): KubeObject {
  const name = quickTunnelName(binding, route);
  return {
    metadata: { name, namespace: binding.metadata.namespace!, labels: labels(binding, route) },
    spec: { selector: { "app.kubernetes.io/instance": name }, ports: [{ name: "metrics", port: METRICS_PORT, targetPort: METRICS_PORT, protocol: "TCP" }] },
  } as KubeObject;
}

/** Where the controller reads a quick tunnel's URL in a real cluster. */
export const clusterQuickTunnelEndpoint = (namespace: string, name: string): string =>
  `http://${name}.${namespace}.svc.cluster.local:${METRICS_PORT}/quicktunnel`;
