// Envoy's log lines, in Envoy's default format (`--log-format` is not offered):
//
//   [%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v
//   [2026-12-04 12:00:00.123][4711][warning][config] [source/extensions/config_subscription/filesystem/filesystem_subscription_impl.cc:60] Filesystem config update rejected: ...
//
// %t is the thread id: Envoy logs these lines from its main thread, whose id is the pid.
// %g:%# is the source file and line: the Envoy source file the same message comes from,
// with the line where it was read there (the filesystem subscription's), else 0; lines
// fake-envoy adds of its own name packages/fake-envoy. Lines go to stderr, or are appended
// to the file given by --log-path, as Envoy does.
import { appendFileSync } from "node:fs";

/** Envoy's levels, lowest first; `warn` is accepted on the command line as `warning`. */
export const LOG_LEVELS = ["trace", "debug", "info", "warning", "error", "critical", "off"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Envoy's logger names used here (the `%n` field). */
export type LoggerName = "main" | "config" | "upstream" | "admin" | "secret" | "runtime" | "conn_handler" | "filter" | "hc";

export const SOURCE = {
  server: "source/server/server.cc:0",
  mainCommon: "source/exe/main_common.cc:0",
  validation: "source/server/config_validation/server.cc:0",
  subscriptionRefresh: "source/extensions/config_subscription/filesystem/filesystem_subscription_impl.cc:82",
  subscriptionAccepted: "source/extensions/config_subscription/filesystem/filesystem_subscription_impl.cc:91",
  subscriptionRejected: "source/extensions/config_subscription/filesystem/filesystem_subscription_impl.cc:63",
  subscriptionFailure: "source/extensions/config_subscription/filesystem/filesystem_subscription_impl.cc:101",
  ldsApi: "source/common/listener_manager/lds_api.cc:0",
  listenerManager: "source/common/listener_manager/listener_manager_impl.cc:0",
  cdsApiHelper: "source/common/upstream/cds_api_helper.cc:0",
  sdsApi: "source/common/secret/sds_api.cc:0",
  admin: "source/server/admin/admin.cc:0",
  fakeEnvoy: "packages/fake-envoy:0",
  healthChecker: "source/extensions/health_checkers/common/health_checker_base_impl.cc:0",
  connectionHandler: "source/common/listener_manager/connection_handler_impl.cc:0",
  activeTcpListener: "source/common/listener_manager/active_tcp_listener.cc:0",
  tcpProxy: "source/common/tcp_proxy/tcp_proxy.cc:0",
  udpProxy: "source/extensions/filters/udp/udp_proxy/udp_proxy_filter.cc:0",
} as const;

const pad = (n: number, width = 2): string => String(n).padStart(width, "0");

/** spdlog's `%Y-%m-%d %T.%e` in local time. */
export function formatTimestamp(date: Date): string {
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
  );
}

export function parseLogLevel(value: string): LogLevel | undefined {
  if (value === "warn") return "warning";
  return (LOG_LEVELS as readonly string[]).includes(value) ? (value as LogLevel) : undefined;
}

export interface LoggerOptions {
  level: LogLevel;
  /** Append lines to this file instead of writing them to stderr. */
  path?: string;
}

export class EnvoyLogger {
  readonly level: LogLevel;
  private readonly path: string | undefined;

  constructor(options: LoggerOptions) {
    this.level = options.level;
    this.path = options.path;
  }

  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(this.level) && level !== "off";
  }

  log(level: Exclude<LogLevel, "off">, logger: LoggerName, source: string, message: string): void {
    if (!this.enabled(level)) return;
    const line = `[${formatTimestamp(new Date())}][${process.pid}][${level}][${logger}] [${source}] ${message}\n`;
    if (this.path === undefined) {
      process.stderr.write(line);
      return;
    }
    try {
      appendFileSync(this.path, line);
    } catch {
      process.stderr.write(line);
    }
  }

  trace(logger: LoggerName, source: string, message: string): void {
    this.log("trace", logger, source, message);
  }
  debug(logger: LoggerName, source: string, message: string): void {
    this.log("debug", logger, source, message);
  }
  info(logger: LoggerName, source: string, message: string): void {
    this.log("info", logger, source, message);
  }
  warn(logger: LoggerName, source: string, message: string): void {
    this.log("warning", logger, source, message);
  }
  error(logger: LoggerName, source: string, message: string): void {
    this.log("error", logger, source, message);
  }
  critical(logger: LoggerName, source: string, message: string): void {
    this.log("critical", logger, source, message);
  }
}
