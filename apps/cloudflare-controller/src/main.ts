#!/usr/bin/env node
// The cloudflare controller: flags, manager, controllers.
import { KubeConfig } from "@kubernetes/client-node";
import { createLogger, Manager } from "@ktube/runtime";
import { FlagError, parseFlags, USAGE } from "./options.ts";
import { setupCloudflareControllers } from "./setup.ts";

if (process.argv.includes("--help")) {
  console.log(USAGE);
  process.exit(0);
}
let flags;
try {
  flags = parseFlags(process.argv.slice(2));
} catch (error) {
  if (error instanceof FlagError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  throw error;
}

const logger = createLogger({ name: "cloudflare-controller" });
const kubeConfig = new KubeConfig();
if (flags.kubeconfig) kubeConfig.loadFromFile(flags.kubeconfig);
else kubeConfig.loadFromCluster();

const manager = new Manager({
  kubeConfig,
  name: "cloudflare-controller",
  logger,
  probeAddress: flags.probeAddress,
  metricsAddress: flags.metricsAddress,
  ...(flags.leaderElect ? { leaderElection: { namespace: flags.leaderElectionNamespace } } : {}),
});
setupCloudflareControllers(manager, {
  namespace: flags.namespace,
  ownerId: flags.ownerId,
  cloudflaredImage: flags.cloudflaredImage,
  maxConcurrentReconciles: flags.maxConcurrentReconciles,
  configDelayMs: flags.configDelayMs,
  cloudflareCallsPer5m: flags.cloudflareCallsPer5m,
  ...(flags.providerSelector ? { providerSelector: flags.providerSelector } : {}),
  ...(flags.cloudflareApiUrl ? { cloudflareApiUrl: flags.cloudflareApiUrl } : {}),
});
manager.installSignalHandlers();
await manager.start();
logger.info({ namespace: flags.namespace, providerSelector: flags.providerSelector, leaderElect: flags.leaderElect }, "cloudflare controller started");
