// The command-line flags every provider controller takes (and their environment
// fallbacks); a provider adds its own through `parseControllerFlags(argv, extra)`.
import { parseArgs, type ParseArgsOptionDescriptor } from "node:util";
import { defaultLeaderElectionId } from "./scope.ts";

export interface ListenAddress {
  host: string;
  port: number;
}

export interface CommonFlags {
  namespace: string;
  providerSelector?: string;
  leaderElect: boolean;
  leaderElectionId: string;
  leaderElectionNamespace: string;
  probeAddress: ListenAddress;
  metricsAddress: ListenAddress;
  maxConcurrentReconciles: number;
  kubeconfig?: string;
}

export const COMMON_USAGE = `  --namespace NS                  namespace the controller runs in; TunnelProvider Secrets are read here ($POD_NAMESPACE, default ktube-system)
  --provider-selector SELECTOR    serve only TunnelProviders with these labels (kubectl syntax, e.g. shard=a)
  --leader-elect[=false]          elect a leader on a Lease (default true)
  --leader-election-id NAME       the Lease's name (default: derived from the program and --provider-selector)
  --leader-election-namespace NS  namespace of the Lease (default: --namespace)
  --health-probe-bind-address A   /healthz and /readyz (default :8081)
  --metrics-bind-address A        /metrics (default :8080)
  --max-concurrent-reconciles N   per controller (default 16; reconciles mostly wait on I/O)
  --kubeconfig PATH               default $KUBECONFIG, then in-cluster
Logging: LOG_FORMAT=json|text, LOG_LEVEL=debug|info|warn|error.`;

export class FlagError extends Error {
  override name = "FlagError";
}

export function parseAddress(value: string, flag: string): ListenAddress {
  const match = /^(.*):(\d+)$/.exec(value);
  if (!match) throw new FlagError(`${flag} must be HOST:PORT or :PORT, not ${JSON.stringify(value)}`);
  return { host: match[1] || "0.0.0.0", port: Number(match[2]) };
}

export function parseDuration(value: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(value);
  if (!match) throw new FlagError(`${flag} must be a duration such as 500ms, 1s or 2m, not ${JSON.stringify(value)}`);
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[match[2] as "ms" | "s" | "m"];
}

export function parsePositive(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new FlagError(`${flag} must be a positive whole number, not ${JSON.stringify(value)}`);
  return n;
}

const COMMON_OPTIONS = {
  namespace: { type: "string" },
  "provider-selector": { type: "string" },
  "leader-elect": { type: "string", default: "true" },
  "leader-election-id": { type: "string" },
  "leader-election-namespace": { type: "string" },
  "health-probe-bind-address": { type: "string", default: ":8081" },
  "metrics-bind-address": { type: "string", default: ":8080" },
  "max-concurrent-reconciles": { type: "string", default: "16" },
  kubeconfig: { type: "string" },
} satisfies Record<string, ParseArgsOptionDescriptor>;

/** Parses the common flags plus `extra` (string options); returns both. */
export function parseControllerFlags<E extends Record<string, ParseArgsOptionDescriptor & { type: "string" }>>(
  program: string,
  argv: string[],
  extra: E,
  env: NodeJS.ProcessEnv = process.env,
): { common: CommonFlags; extra: { [K in keyof E]: E[K] extends { default: string } ? string : string | undefined } } {
  const { values } = parseArgs({ args: argv, strict: true, options: { ...COMMON_OPTIONS, ...extra } });
  const all = values as Record<string, string | undefined>;
  const namespace = all.namespace ?? env.POD_NAMESPACE ?? "ktube-system";
  const leaderElect = all["leader-elect"];
  if (leaderElect !== "true" && leaderElect !== "false") throw new FlagError("--leader-elect must be true or false");
  const selector = all["provider-selector"]?.trim() || undefined;
  const kubeconfig = all.kubeconfig ?? env.KUBECONFIG;
  const id = all["leader-election-id"] ?? defaultLeaderElectionId(program, selector);
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(id)) throw new FlagError("--leader-election-id must be a lowercase DNS name");
  const common: CommonFlags = {
    namespace,
    ...(selector ? { providerSelector: selector } : {}),
    leaderElect: leaderElect === "true",
    leaderElectionId: id,
    leaderElectionNamespace: all["leader-election-namespace"] ?? namespace,
    probeAddress: parseAddress(all["health-probe-bind-address"]!, "--health-probe-bind-address"),
    metricsAddress: parseAddress(all["metrics-bind-address"]!, "--metrics-bind-address"),
    maxConcurrentReconciles: parsePositive(all["max-concurrent-reconciles"]!, "--max-concurrent-reconciles"),
    ...(kubeconfig ? { kubeconfig } : {}),
  };
  const picked = Object.fromEntries(Object.keys(extra).map((k) => [k, all[k]]));
  return { common, extra: picked as { [K in keyof E]: E[K] extends { default: string } ? string : string | undefined } };
}
