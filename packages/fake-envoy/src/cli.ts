// Envoy's command line, for the flags KTube runs Envoy with (and a few a test needs):
//
//   envoy -c <bootstrap> [--mode serve|validate] [--drain-time-s <s>] [--log-level <level>]
//         [--log-path <file>] [--base-id <n>] [--admin-address-path <file>] [--version] [--help]
//
// Like Envoy's TCLAP parser, a flag takes its value as the next argument or after `=`, and an
// unknown flag, a missing value or a bad value is a parse error (exit 1) printed with
// the brief usage.
import { LOG_LEVELS, parseLogLevel, type LogLevel } from "./log.ts";

export type Mode = "serve" | "validate";

export interface CommandLineOptions {
  configPath: string;
  mode: Mode;
  drainTimeSeconds: number;
  logLevel: LogLevel;
  logPath: string | undefined;
  baseId: number;
  /** Envoy writes the admin's bound address here (port 0 picks a free port). */
  adminAddressPath: string | undefined;
  /** The arguments as given, for /server_info. */
  argv: readonly string[];
}

export type ParsedCommandLine = { kind: "run"; options: CommandLineOptions } | { kind: "version" } | { kind: "help" };

export class CommandLineError extends Error {
  override name = "CommandLineError";
}

export const BRIEF_USAGE = `
Brief USAGE: 
   envoy  [--mode <serve|validate>] [--drain-time-s <uint32_t>]
          [--log-path <string>] [-l <string>] [--base-id <uint32_t>]
          [--admin-address-path <string>] [-c <string>] [--]
          [--version] [-h]

For complete USAGE and HELP type: 
   envoy --help
`;

export const USAGE = `
USAGE: 

   envoy  [--mode <serve|validate>] [--drain-time-s <uint32_t>]
          [--log-path <string>] [-l <string>] [--base-id <uint32_t>]
          [--admin-address-path <string>] [-c <string>] [--]
          [--version] [-h]

Where: 

   --mode <serve|validate>
     One of 'serve' (default; validate configs and then serve traffic
     normally) or 'validate' (validate configs and exit).

   --drain-time-s <uint32_t>
     Hot restart and LDS removal drain time in seconds

   --log-path <string>
     Path to logfile

   -l <string>,  --log-level <string>
     Log levels: [${LOG_LEVELS.join("][")}]
     Default is [info]

   --base-id <uint32_t>
     Base ID so that multiple envoys can run on the same host if needed

   --admin-address-path <string>
     Admin address path

   -c <string>,  --config-path <string>
     Path to configuration file

   --version
     Displays version information and exits.

   -h,  --help
     Displays usage information and exits.


   envoy (fake-envoy: a test double of Envoy for KTube's edge, packages/fake-envoy)
`;

type ValueFlag = "config-path" | "mode" | "drain-time-s" | "log-level" | "log-path" | "base-id" | "admin-address-path";

const VALUE_FLAGS: Record<string, ValueFlag> = {
  "-c": "config-path",
  "--config-path": "config-path",
  "--mode": "mode",
  "--drain-time-s": "drain-time-s",
  "-l": "log-level",
  "--log-level": "log-level",
  "--log-path": "log-path",
  "--base-id": "base-id",
  "--admin-address-path": "admin-address-path",
};

const parseUint = (flag: string, value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) > 0xffffffff) throw new CommandLineError(`Argument: (--${flag})\n             Couldn't read argument value from string '${value}'`);
  return Number(value);
};

export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  const values = new Map<ValueFlag, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--version") return { kind: "version" };
    if (arg === "-h" || arg === "--help") return { kind: "help" };
    if (arg === "--") {
      if (i < argv.length - 1) throw new CommandLineError(`Argument: ${argv[i + 1]}\n             Couldn't find match for argument`);
      break;
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const flag = VALUE_FLAGS[name];
    if (!flag) throw new CommandLineError(`Argument: ${arg}\n             Couldn't find match for argument`);
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined) throw new CommandLineError(`Argument: (--${flag})\n             Missing a value for this argument!`);
    if (values.has(flag)) throw new CommandLineError(`Argument: (--${flag})\n             Argument already set!`);
    values.set(flag, value);
  }

  const mode = values.get("mode") ?? "serve";
  if (mode !== "serve" && mode !== "validate") {
    throw new CommandLineError(`Argument: (--mode)\n             Value '${mode}' does not meet constraint: serve|validate (fake-envoy implements these modes)`);
  }
  const rawLevel = values.get("log-level") ?? "info";
  const logLevel = parseLogLevel(rawLevel);
  if (!logLevel) throw new CommandLineError(`Argument: (--log-level)\n             Value '${rawLevel}' does not meet constraint: ${LOG_LEVELS.join("|")}|warn`);
  const configPath = values.get("config-path") ?? "";
  if (configPath === "") {
    throw new CommandLineError("At least one of --config-path or --config-yaml or Options::configProto() should be non-empty (fake-envoy takes --config-path)");
  }
  return {
    kind: "run",
    options: {
      configPath,
      mode,
      drainTimeSeconds: values.has("drain-time-s") ? parseUint("drain-time-s", values.get("drain-time-s")!) : 600,
      logLevel,
      logPath: values.get("log-path"),
      baseId: values.has("base-id") ? parseUint("base-id", values.get("base-id")!) : 0,
      adminAddressPath: values.get("admin-address-path"),
      argv: [...argv],
    },
  };
}
