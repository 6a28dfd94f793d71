// Envoy's admin interface (plain HTTP/1.1 on the bootstrap's `admin.address`), for the
// endpoints the edge controller and its tests read:
//
//   GET  /stats            `name: value` lines; `?filter=<regex>` (partial match, like RE2's),
//                          `?usedonly`, `?type=Counters|Gauges|TextReadouts|All`, `?format=json`
//   GET  /ready            200 `LIVE` once the initial config is loaded, else 503 and the state
//   GET  /server_info      JSON: version, state, command_line_options, node, uptime
//   GET  /config_dump      JSON (see config-dump.ts); `?resource=<field>`
//   GET  /listeners        `<name>::<address>` lines
//   POST /quitquitquit     `OK`, then the server exits 0
//
// A request for any other path is answered 404 with the list of endpoints, as Envoy does.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { CommandLineOptions } from "../cli.ts";
import type { ConfigPlane } from "../config-plane.ts";
import { formatAddress } from "../config/resource.ts";
import { SOURCE, type EnvoyLogger } from "../log.ts";
import { renderStatsJson, renderStatsText, type StatType } from "../stats/store.ts";
import { buildVersion } from "../version.ts";
import { configDump } from "./config-dump.ts";

export type ServerState = "LIVE" | "DRAINING" | "PRE_INITIALIZING" | "INITIALIZING";

/** What the admin reads from the running server. */
export interface AdminContext {
  plane: ConfigPlane;
  options: CommandLineOptions;
  log: EnvoyLogger;
  started: Date;
  state(): ServerState;
  /** /quitquitquit: exit after the answer is sent. */
  quit(): void;
  /** Envoy's /clusters text (the data path's hosts and their health); absent without a data path. */
  clustersText?(): string;
  /** Updates stats computed on read (server.uptime). */
  refreshStats(): void;
}

interface Answer {
  status: number;
  body: string;
  contentType?: string;
}

const TEXT = "text/plain; charset=UTF-8";
const JSON_TYPE = "application/json";

interface Endpoint {
  help: string;
  mutates: boolean;
  handle(url: URL, ctx: AdminContext): Answer;
}

const STAT_TYPES: readonly StatType[] = ["Counters", "Gauges", "TextReadouts", "Histograms", "All"];

const ENDPOINTS: Record<string, Endpoint> = {
  "/stats": {
    help: "print server stats",
    mutates: false,
    handle(url, ctx) {
      ctx.refreshStats();
      const params = url.searchParams;
      let filter: RegExp | undefined;
      const raw = params.get("filter");
      if (raw !== null && raw !== "") {
        try {
          filter = new RegExp(raw);
        } catch {
          return { status: 400, body: "Invalid re2 regex" };
        }
      }
      const type = (params.get("type") ?? "All") as StatType;
      if (!STAT_TYPES.includes(type)) return { status: 400, body: `invalid &type= param: '${type}'` };
      const entries = ctx.plane.stats.select({ ...(filter ? { filter } : {}), usedOnly: params.has("usedonly"), type });
      const format = params.get("format") ?? "text";
      if (format === "json") return { status: 200, body: renderStatsJson(entries), contentType: JSON_TYPE };
      if (format === "text") return { status: 200, body: renderStatsText(entries) };
      return { status: 400, body: `fake-envoy: /stats?format=${format} is not implemented (text and json are)` };
    },
  },
  "/ready": {
    help: "print server state, return 200 if LIVE, otherwise return 503",
    mutates: false,
    handle(_url, ctx) {
      const state = ctx.state();
      return { status: state === "LIVE" ? 200 : 503, body: `${state}\n` };
    },
  },
  "/server_info": {
    help: "print server version/status information",
    mutates: false,
    handle(_url, ctx) {
      const uptime = `${Math.floor((Date.now() - ctx.started.getTime()) / 1000)}s`;
      const { options } = ctx;
      const node = ctx.plane.bootstrap.bootstrap.node ?? {};
      const body = {
        version: buildVersion(),
        state: ctx.state(),
        hot_restart_version: "disabled",
        command_line_options: {
          base_id: String(options.baseId),
          use_dynamic_base_id: false,
          base_id_path: "",
          concurrency: 1,
          config_path: options.configPath,
          config_yaml: "",
          allow_unknown_static_fields: false,
          reject_unknown_dynamic_fields: false,
          ignore_unknown_dynamic_fields: false,
          admin_address_path: options.adminAddressPath ?? "",
          local_address_ip_version: "v4",
          log_level: options.logLevel,
          component_log_level: "",
          log_format: "[%Y-%m-%d %T.%e][%t][%l][%n] [%g:%#] %v",
          log_format_escaped: false,
          log_path: options.logPath ?? "",
          service_cluster: "",
          service_node: "",
          service_zone: "",
          drain_strategy: "Gradual",
          mode: options.mode === "serve" ? "Serve" : "Validate",
          disable_hot_restart: true,
          enable_mutex_tracing: false,
          restart_epoch: 0,
          cpuset_threads: false,
          disabled_extensions: [],
          enable_fine_grain_logging: false,
          socket_path: "@envoy_domain_socket",
          socket_mode: 0,
          enable_core_dump: false,
          stats_tag: [],
          file_flush_interval: "10s",
          drain_time: `${options.drainTimeSeconds}s`,
          parent_shutdown_time: "900s",
        },
        node: { id: node.id ?? "", cluster: node.cluster ?? "", user_agent_name: "envoy", user_agent_build_version: { version: {}, metadata: {} } },
        uptime_current_epoch: uptime,
        uptime_all_epochs: uptime,
      };
      return { status: 200, body: `${JSON.stringify(body, null, 1)}\n`, contentType: JSON_TYPE };
    },
  },
  "/config_dump": {
    help: "dump current Envoy configs (experimental)",
    mutates: false,
    handle(url, ctx) {
      const result = configDump(ctx.plane, ctx.started, url.searchParams.get("resource") ?? undefined);
      if (!result.ok) return { status: 404, body: result.message };
      return { status: 200, body: `${JSON.stringify(result.body, null, 1)}\n`, contentType: JSON_TYPE };
    },
  },
  "/listeners": {
    help: "print listener info",
    mutates: false,
    handle(_url, ctx) {
      const lines = [...ctx.plane.listeners.active.values()].map((l) => `${l.name}::${l.address.text}\n`);
      return { status: 200, body: lines.join("") };
    },
  },
  "/clusters": {
    help: "upstream cluster status",
    mutates: false,
    handle(url, ctx) {
      if (url.searchParams.has("format")) return { status: 400, body: "fake-envoy serves /clusters in the text format only\n" };
      return { status: 200, body: ctx.clustersText?.() ?? "" };
    },
  },
  "/quitquitquit": {
    help: "exit the server",
    mutates: true,
    handle(_url, ctx) {
      ctx.quit();
      return { status: 200, body: "OK\n" };
    },
  },
};

function helpText(): string {
  return `admin commands are:\n${Object.entries(ENDPOINTS)
    .map(([path, endpoint]) => `  ${path}${endpoint.mutates ? " (POST)" : ""}: ${endpoint.help}\n`)
    .join("")}`;
}

function answer(req: IncomingMessage, ctx: AdminContext): Answer {
  const url = new URL(req.url ?? "/", "http://admin");
  const endpoint = Object.hasOwn(ENDPOINTS, url.pathname) ? ENDPOINTS[url.pathname] : undefined;
  if (!endpoint) return { status: 404, body: `invalid path. ${helpText()}` };
  const method = req.method ?? "GET";
  if (endpoint.mutates && method !== "POST") {
    ctx.log.error("admin", SOURCE.admin, `admin path "${url.pathname}" mutates state, method=${method} rather than POST`);
    return { status: 405, body: `Method ${method} not allowed, POST required.` };
  }
  return endpoint.handle(url, ctx);
}

export interface AdminServer {
  server: Server;
  /** The bound address, `127.0.0.1:9901`. */
  address: string;
  close(): Promise<void>;
}

export class AdminBindError extends Error {
  override name = "AdminBindError";
}

export async function startAdminServer(host: string, port: number, ctx: AdminContext): Promise<AdminServer> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    let result: Answer;
    try {
      result = answer(req, ctx);
    } catch (error) {
      result = { status: 500, body: `fake-envoy admin error: ${(error as Error).message}\n` };
    }
    res.writeHead(result.status, {
      "content-type": result.contentType ?? TEXT,
      "cache-control": "no-cache, max-age=0",
      "x-content-type-options": "nosniff",
      server: "envoy",
    });
    res.end(req.method === "HEAD" ? undefined : result.body);
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      reject(new AdminBindError(`cannot bind '${formatAddress(host, port)}': ${error.code === "EADDRINUSE" ? "Address already in use" : error.message}`));
    });
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  return {
    server,
    address: formatAddress(bound.address, bound.port),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
