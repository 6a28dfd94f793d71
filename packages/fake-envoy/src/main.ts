#!/usr/bin/env node
// fake-envoy's process: Envoy's command line (see cli.ts), serve or validate.
//
// Exit codes as Envoy's: 0 after --version, --help, a valid configuration (validate), and a
// shutdown by SIGTERM/SIGINT or POST /quitquitquit; 1 for a command line error, a
// configuration that does not initialise (serve) or validate, or a config checker that
// cannot run.
import { ensureEnvoyValidator, EnvoyValidatorSetupError } from "@ktube/envoy-validator";
import { BRIEF_USAGE, CommandLineError, parseCommandLine, USAGE } from "./cli.ts";
import { InitializationError } from "./bootstrap.ts";
import { EnvoyLogger, SOURCE } from "./log.ts";
import { FakeEnvoyServer } from "./server.ts";
import { validateConfiguration } from "./validate.ts";
import { versionText } from "./version.ts";

async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseCommandLine(argv);
  } catch (error) {
    if (!(error instanceof CommandLineError)) throw error;
    process.stderr.write(`PARSE ERROR: ${error.message}\n${BRIEF_USAGE}`);
    return 1;
  }
  if (parsed.kind === "version") {
    process.stdout.write(versionText());
    return 0;
  }
  if (parsed.kind === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  const options = parsed.options;
  const log = new EnvoyLogger({ level: options.logLevel, ...(options.logPath !== undefined ? { path: options.logPath } : {}) });
  const source = options.mode === "validate" ? SOURCE.validation : SOURCE.server;

  try {
    await ensureEnvoyValidator({ log: (line) => log.info("main", SOURCE.fakeEnvoy, `config checker: ${line}`) });
  } catch (error) {
    if (!(error instanceof EnvoyValidatorSetupError)) throw error;
    log.critical("main", SOURCE.fakeEnvoy, `fake-envoy cannot check configuration: ${error.message}`);
    return 1;
  }

  const initFailure = (message: string, unimplemented: boolean): number => {
    log.critical("main", source, `error initializing configuration '${options.configPath}': ${message}`);
    if (unimplemented) log.critical("main", SOURCE.fakeEnvoy, "fake-envoy does not implement this configuration (Envoy might accept it); see packages/fake-envoy/README.md");
    log.info("main", SOURCE.server, "exiting");
    return 1;
  };

  if (options.mode === "validate") {
    const result = await validateConfiguration(options.configPath, log);
    if (!result.ok) return initFailure(result.message, result.unimplemented);
    process.stdout.write(`configuration '${options.configPath}' OK\n`);
    return 0;
  }

  let server: FakeEnvoyServer;
  try {
    server = await FakeEnvoyServer.start(options, log, (code) => process.exit(code));
  } catch (error) {
    if (error instanceof InitializationError) return initFailure(error.message, error.unimplemented);
    throw error;
  }
  // Without an admin nothing else keeps the process alive while it follows its files.
  const keepAlive = setInterval(() => {}, 1 << 30);
  return new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      log.warn("main", SOURCE.server, signal === "SIGTERM" ? "caught ENVOY_SIGTERM" : `caught ${signal}`);
      clearInterval(keepAlive);
      void server.stop().then(() => resolve(0));
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  });
}

process.exitCode = await main(process.argv.slice(2));
// Nothing of the server may keep the process alive once main is done.
process.exit();
