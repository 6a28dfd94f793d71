// The whole program of a provider controller: flags, logger, manager (leader election,
// probes, metrics, signals), the kit's controllers. A provider's main.ts is one call.
import { KubeConfig } from "@kubernetes/client-node";
import { createLogger, Manager } from "@ktube/runtime";
import type { ParseArgsOptionDescriptor } from "node:util";
import { COMMON_USAGE, FlagError, parseControllerFlags, type CommonFlags } from "./flags.ts";
import { registerProviderControllers } from "./register.ts";
import type { ProviderPlugin } from "./plugin.ts";

export interface ControllerProgram<S extends object, E extends Record<string, ParseArgsOptionDescriptor & { type: "string" }>> {
  /** e.g. cloudflare-controller: logger name, Lease prefix, event reporter. */
  name: string;
  /** The managed-by label value and field manager, e.g. ktube-cloudflare-controller. */
  managedBy: string;
  /** The provider's own flags and their usage lines. */
  flags: E;
  usage: string;
  /** The plugin, from the parsed flags; throw FlagError for a bad value. */
  plugin(flags: ReturnType<typeof parseControllerFlags<E>>["extra"], common: CommonFlags): ProviderPlugin<S>;
  /** Binding changes gathered before a tunnel is reconciled (from a provider flag, e.g. --config-delay). */
  configDelayMs?(flags: ReturnType<typeof parseControllerFlags<E>>["extra"]): number;
}

export async function runProviderController<S extends object, E extends Record<string, ParseArgsOptionDescriptor & { type: "string" }>>(
  program: ControllerProgram<S, E>,
  argv: string[] = process.argv.slice(2),
): Promise<Manager> {
  const usage = `ktube-${program.name} [flags]\n\n${program.usage}\n${COMMON_USAGE}`;
  if (argv.includes("--help")) {
    console.log(usage);
    process.exit(0);
  }
  let parsed;
  let plugin: ProviderPlugin<S>;
  let configDelayMs: number | undefined;
  try {
    parsed = parseControllerFlags(program.name, argv, program.flags);
    plugin = program.plugin(parsed.extra, parsed.common);
    configDelayMs = program.configDelayMs?.(parsed.extra);
  } catch (error) {
    if (error instanceof FlagError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`${(error as Error).message}\n\n${usage}`);
      process.exit(2);
    }
    throw error;
  }
  const { common } = parsed;
  const logger = createLogger({ name: program.name });
  const kubeConfig = new KubeConfig();
  if (common.kubeconfig) kubeConfig.loadFromFile(common.kubeconfig);
  else kubeConfig.loadFromCluster();
  const manager = new Manager({
    kubeConfig,
    name: program.name,
    logger,
    probeAddress: common.probeAddress,
    metricsAddress: common.metricsAddress,
    ...(common.leaderElect ? { leaderElection: { namespace: common.leaderElectionNamespace, leaseName: common.leaderElectionId } } : {}),
  });
  registerProviderControllers(manager, plugin, {
    namespace: common.namespace,
    managedBy: program.managedBy,
    maxConcurrentReconciles: common.maxConcurrentReconciles,
    ...(common.providerSelector ? { providerSelector: common.providerSelector } : {}),
    ...(configDelayMs !== undefined ? { configDelayMs } : {}),
  });
  manager.installSignalHandlers();
  await manager.start();
  logger.info({ namespace: common.namespace, providerSelector: common.providerSelector, leaderElect: common.leaderElect, lease: common.leaderElectionId }, `${program.name} started`);
  return manager;
}
