// @ktube/fake-envoy: a test double of Envoy for the config subset KTube's edge emits.
// Run it as a process (src/main.ts, bin/fake-envoy, or an executable from
// writeFakeEnvoyExecutable); the modules below are exported for tests and for the data path.
export { parseCommandLine, CommandLineError, type CommandLineOptions } from "./cli.ts";
export { writeFakeEnvoyExecutable, fakeEnvoyScript, fakeEnvoyNode, sharedValidatorPath, MAIN_SCRIPT, type FakeEnvoyExecutable, type FakeEnvoyExecutableOptions } from "./executable.ts";
export { FakeEnvoyProcess, runFakeEnvoy, adminRequest, type FakeEnvoyProcessOptions, type AdminAnswer, type ExitStatus, type RunResult } from "./process.ts";
export { parseStatsText, renderStatsText, StatsStore } from "./stats/store.ts";
export { xxHash64 } from "./stats/xxhash64.ts";
export { buildFilterChainIndex, FilterChainError, type FilterChainIndex } from "./listeners/filter-chain-index.ts";
export { selectFilterChain, type ActiveListener, type ActiveFilterChain, type DownstreamTls, type SecretRef } from "./listeners/build-listener.ts";
export type { ActiveCluster, ClusterEndpoint } from "./clusters/cluster-manager.ts";
export type { ActiveSecret, DynamicSecret } from "./secrets/secret-manager.ts";
export { ConfigPlane } from "./config-plane.ts";
export { FakeEnvoyServer } from "./server.ts";
export { buildVersion, envoyVersion } from "./version.ts";
export * as envoyConfig from "./config/subset.ts";
export { validateConfiguration, type ValidationResult } from "./validate.ts";
export { EnvoyLogger, type LoggerOptions } from "./log.ts";
