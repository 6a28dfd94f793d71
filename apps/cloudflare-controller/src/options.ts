// Command-line flags (and their environment fallbacks) of the cloudflare controller.
import { parseArgs } from "node:util";
import { DEFAULT_CLOUDFLARED_IMAGE } from "./manifests/cloudflared.ts";

export interface ControllerFlags {
  namespace: string;
  providerSelector?: string;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  probeAddress: { host: string; port: number };
  metricsAddress: { host: string; port: number };
  maxConcurrentReconciles: number;
  ownerId: string;
  cloudflaredImage: string;
  cloudflareApiUrl?: string;
  cloudflareCallsPer5m: number;
  configDelayMs: number;
  kubeconfig?: string;
}

export const USAGE = `ktube-cloudflare-controller [flags]

  --namespace NS                  namespace the controller runs in; TunnelProvider Secrets are read here ($POD_NAMESPACE, default ktube-system)
  --provider-selector SELECTOR    serve only TunnelProviders with these labels (e.g. shard=a)
  --leader-elect[=false]          elect a leader on a Lease (default true)
  --leader-election-namespace NS  namespace of the Lease (default: --namespace)
  --health-probe-bind-address A   /healthz and /readyz (default :8081)
  --metrics-bind-address A        /metrics (default :8080)
  --max-concurrent-reconciles N   per controller (default 16; reconciles mostly wait on I/O)
  --owner-id ID                   marks the DNS records and Access apps of this installation (default "default")
  --cloudflared-image IMAGE       default connector image (default ${DEFAULT_CLOUDFLARED_IMAGE})
  --cloudflare-api-url URL        Cloudflare API base URL ($CLOUDFLARE_BASE_URL; default the public API)
  --cloudflare-calls-per-5m N     call budget per account (default 1000; Cloudflare allows 1200)
  --config-delay DURATION         gather binding changes this long before rebuilding a tunnel's config (default 1s)
  --kubeconfig PATH               default $KUBECONFIG, then in-cluster
Logging: LOG_FORMAT=json|text, LOG_LEVEL=debug|info|warn|error.`;

export class FlagError extends Error {
  override name = "FlagError";
}

function address(value: string, flag: string): { host: string; port: number } {
  const match = /^(.*):(\d+)$/.exec(value);
  if (!match) throw new FlagError(`${flag} must be HOST:PORT or :PORT, not ${JSON.stringify(value)}`);
  return { host: match[1] || "0.0.0.0", port: Number(match[2]) };
}

export function parseDuration(value: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(value);
  if (!match) throw new FlagError(`${flag} must be a duration such as 500ms, 1s or 2m, not ${JSON.stringify(value)}`);
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[match[2] as "ms" | "s" | "m"];
}

function positive(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new FlagError(`${flag} must be a positive whole number, not ${JSON.stringify(value)}`);
  return n;
}

export function parseFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): ControllerFlags {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      namespace: { type: "string" },
      "provider-selector": { type: "string" },
      "leader-elect": { type: "string", default: "true" },
      "leader-election-namespace": { type: "string" },
      "health-probe-bind-address": { type: "string", default: ":8081" },
      "metrics-bind-address": { type: "string", default: ":8080" },
      "max-concurrent-reconciles": { type: "string", default: "16" },
      "owner-id": { type: "string", default: "default" },
      "cloudflared-image": { type: "string", default: DEFAULT_CLOUDFLARED_IMAGE },
      "cloudflare-api-url": { type: "string" },
      "cloudflare-calls-per-5m": { type: "string", default: "1000" },
      "config-delay": { type: "string", default: "1s" },
      kubeconfig: { type: "string" },
    },
  });
  const namespace = values.namespace ?? env.POD_NAMESPACE ?? "ktube-system";
  const leaderElect = values["leader-elect"];
  if (leaderElect !== "true" && leaderElect !== "false") throw new FlagError(`--leader-elect must be true or false`);
  const ownerId = values["owner-id"]!;
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(ownerId)) throw new FlagError("--owner-id must be a lowercase name of at most 63 characters");
  const apiUrl = values["cloudflare-api-url"] ?? env.CLOUDFLARE_BASE_URL;
  const kubeconfig = values.kubeconfig ?? env.KUBECONFIG;
  return {
    namespace,
    ...(values["provider-selector"] ? { providerSelector: values["provider-selector"] } : {}),
    leaderElect: leaderElect === "true",
    leaderElectionNamespace: values["leader-election-namespace"] ?? namespace,
    probeAddress: address(values["health-probe-bind-address"]!, "--health-probe-bind-address"),
    metricsAddress: address(values["metrics-bind-address"]!, "--metrics-bind-address"),
    maxConcurrentReconciles: positive(values["max-concurrent-reconciles"]!, "--max-concurrent-reconciles"),
    ownerId,
    cloudflaredImage: values["cloudflared-image"]!,
    ...(apiUrl ? { cloudflareApiUrl: apiUrl } : {}),
    cloudflareCallsPer5m: positive(values["cloudflare-calls-per-5m"]!, "--cloudflare-calls-per-5m"),
    configDelayMs: parseDuration(values["config-delay"]!, "--config-delay"),
    ...(kubeconfig ? { kubeconfig } : {}),
  };
}
