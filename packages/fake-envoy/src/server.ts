// The running fake Envoy (`--mode serve`): loads the bootstrap, starts the admin, loads the
// static resources and the initial LDS/CDS (the server is LIVE after that), then follows the
// files until SIGTERM/SIGINT or POST /quitquitquit.
//
// Server stats: `server.state` (0 LIVE, 1 DRAINING, 2 PRE_INITIALIZING, 3 INITIALIZING),
// `server.live`, `server.uptime`, `server.concurrency`, `server.hot_restart_epoch`.
import { writeFileSync } from "node:fs";
import { startAdminServer, AdminBindError, type AdminServer, type ServerState } from "./admin/admin-server.ts";
import { InitializationError, loadBootstrap } from "./bootstrap.ts";
import type { CommandLineOptions } from "./cli.ts";
import { ConfigPlane } from "./config-plane.ts";
import { DataPlane } from "./data/data-plane.ts";
import { SOURCE, type EnvoyLogger } from "./log.ts";
import { StatsStore } from "./stats/store.ts";
import { buildVersion } from "./version.ts";

const STATE_NUMBER: Record<ServerState, number> = { LIVE: 0, DRAINING: 1, PRE_INITIALIZING: 2, INITIALIZING: 3 };

export class FakeEnvoyServer {
  readonly plane: ConfigPlane;
  readonly admin: AdminServer | undefined;
  readonly data: DataPlane;
  private state: ServerState = "PRE_INITIALIZING";
  private readonly log: EnvoyLogger;
  private stopping: Promise<void> | undefined;

  private constructor(plane: ConfigPlane, admin: AdminServer | undefined, log: EnvoyLogger, data: DataPlane) {
    this.plane = plane;
    this.data = data;
    this.admin = admin;
    this.log = log;
  }

  getState(): ServerState {
    return this.state;
  }

  private setState(state: ServerState): void {
    this.state = state;
    this.plane.stats.gauge("server.state").set(STATE_NUMBER[state]);
    this.plane.stats.gauge("server.live").set(state === "LIVE" ? 1 : 0);
  }

  /**
   * Starts the server; throws InitializationError (Envoy's "error initializing
   * configuration") when the bootstrap, the admin or the static resources fail.
   * `onExit` is called with the exit code once the server has stopped on its own
   * (/quitquitquit).
   */
  static async start(options: CommandLineOptions, log: EnvoyLogger, onExit: (code: number) => void): Promise<FakeEnvoyServer> {
    const started = new Date();
    log.info("main", SOURCE.server, `initializing epoch 0 (base id=${options.baseId}, hot restart version=disabled)`);
    log.info("main", SOURCE.server, `fake-envoy: a test double of Envoy ${buildVersion()} for KTube's edge (packages/fake-envoy)`);
    const bootstrap = await loadBootstrap(options.configPath);
    const stats = new StatsStore();
    const plane = new ConfigPlane({ bootstrap, log, watch: true, stats });
    // Subscribed before anything loads, so it sees every listener and cluster.
    const data = new DataPlane({ listeners: plane.listeners, clusters: plane.clusters, stats, log, drainTimeSeconds: options.drainTimeSeconds });
    let server: FakeEnvoyServer | undefined;
    let admin: AdminServer | undefined;
    const adminAddress = bootstrap.bootstrap.admin?.address?.socket_address;
    if (adminAddress) {
      try {
        admin = await startAdminServer(adminAddress.address ?? "", adminAddress.port_value ?? 0, {
          plane,
          options,
          log,
          started,
          state: () => server?.getState() ?? "PRE_INITIALIZING",
          quit: () => {
            log.info("main", SOURCE.server, "shutting down server");
            setImmediate(() => void server?.stop().then(() => onExit(0)));
          },
          clustersText: () => data.clustersText(),
          refreshStats: () => stats.gauge("server.uptime").set(Math.floor((Date.now() - started.getTime()) / 1000)),
        });
      } catch (error) {
        if (error instanceof AdminBindError) throw new InitializationError(error.message);
        throw error;
      }
      log.info("main", SOURCE.server, `admin address: ${admin.address}`);
      if (options.adminAddressPath) writeFileSync(options.adminAddressPath, admin.address);
    } else {
      log.info("main", SOURCE.server, "No admin address given, so no admin HTTP server started.");
    }
    server = new FakeEnvoyServer(plane, admin, log, data);
    stats.gauge("server.concurrency").set(1);
    stats.gauge("server.hot_restart_epoch").set(0);
    server.setState("PRE_INITIALIZING");
    try {
      await plane.loadStatic();
      server.setState("INITIALIZING");
      await plane.startDynamic();
    } catch (error) {
      data.close();
      plane.close();
      await admin?.close();
      throw error;
    }
    log.info("main", SOURCE.server, "all dependencies initialized. starting workers");
    server.setState("LIVE");
    log.info("main", SOURCE.server, "starting main dispatch loop");
    return server;
  }

  /** Stops watching and closes the admin; idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.setState("DRAINING");
      this.data.close();
      this.plane.close();
      await this.admin?.close();
      this.log.info("main", SOURCE.server, "exiting");
    })();
    return this.stopping;
  }
}
