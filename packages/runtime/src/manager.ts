// The manager: shared cache, controllers, leader election, probes, metrics, shutdown.
import type { KubeConfig } from "@kubernetes/client-node";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import type { Logger } from "pino";
import { Cache } from "./cache.ts";
import { KubeClient } from "./client.ts";
import type { Controller } from "./controller.ts";
import { ControllerBuilder } from "./controller-builder.ts";
import { EventRecorder } from "./events.ts";
import { LeaderElector } from "./leader-election.ts";
import { createLogger } from "./logger.ts";
import { RuntimeMetrics } from "./metrics.ts";
import { StatusWriter } from "./status.ts";

export interface ListenAddress {
  host?: string;
  /** 0 picks a free port. */
  port: number;
}

export interface ManagerOptions {
  kubeConfig: KubeConfig;
  /** The program's name: field manager, event reporter and lease name prefix (e.g. cloudflare-controller). */
  name: string;
  logger?: Logger;
  metrics?: RuntimeMetrics;
  leaderElection?: {
    namespace: string;
    /** Default: `<name>.ktube.dev`. */
    leaseName?: string;
    identity?: string;
    leaseDurationMs?: number;
    renewDeadlineMs?: number;
    retryPeriodMs?: number;
  };
  /** Serves /healthz and /readyz; false disables. */
  probeAddress?: ListenAddress | false;
  /** Serves /metrics; false disables. The same address as probeAddress shares one server. */
  metricsAddress?: ListenAddress | false;
  /** Idle timeout of informer watches. */
  watchIdleTimeoutMs?: number;
  gracefulShutdownTimeoutMs?: number;
  /**
   * Called as soon as the lease is lost after leading, once every controller has been
   * halted (reconciles in flight aborted, not awaited). Default: exit(1), so the pod
   * restarts clean.
   */
  onLeadershipLost?: () => void;
}

/** A controller that could not start (its caches did not sync in time, or its start threw). */
export interface ControllerFailure {
  controller: string;
  error: string;
}

export class Manager {
  readonly client: KubeClient;
  readonly cache: Cache;
  readonly metrics: RuntimeMetrics;
  readonly logger: Logger;
  readonly identity: string;
  readonly events: EventRecorder;
  readonly status: StatusWriter;
  private readonly options: ManagerOptions;
  private readonly controllers: Controller[] = [];
  private readonly failures: ControllerFailure[] = [];
  private readonly servers: Server[] = [];
  private elector?: LeaderElector;
  private started = false;
  private stopping?: Promise<void>;
  private readonly addresses = new Map<string, AddressInfo>();

  constructor(options: ManagerOptions) {
    this.options = options;
    this.logger = options.logger ?? createLogger({ name: options.name });
    this.metrics = options.metrics ?? new RuntimeMetrics();
    this.identity = options.leaderElection?.identity ?? `${process.env.POD_NAME ?? hostname()}_${process.pid}`;
    this.client = new KubeClient(options.kubeConfig);
    const host = new URL(options.kubeConfig.getCurrentCluster()?.server ?? "http://unknown").host;
    this.client.onRequest((method, _path, code) => this.metrics.restClientRequests.inc({ code: String(code), method, host }));
    this.cache = new Cache(this.client, { logger: this.logger, ...(options.watchIdleTimeoutMs ? { idleTimeoutMs: options.watchIdleTimeoutMs } : {}) });
    this.events = new EventRecorder(this.client, { controller: `ktube.dev/${options.name}`, instance: this.identity, logger: this.logger });
    this.status = new StatusWriter(this.client, options.name);
  }

  controller(name: string): ControllerBuilder {
    return new ControllerBuilder(name, { cache: this.cache, metrics: this.metrics, logger: this.logger }, (c) => this.controllers.push(c));
  }

  /**
   * Enqueues every key of every controller at once, for tests and benchmarks. The
   * periodic resync does the same spread over time (jittered period, keys over 10% of it).
   */
  resync(): void {
    for (const controller of this.controllers) controller.resync();
  }

  /** True when no controller has a key waiting or in flight (delayed keys not counted). */
  get idle(): boolean {
    return this.controllers.every((c) => c.pending === 0);
  }

  /**
   * Idle, and no watch event is still being gathered into a debounced reconcile: a
   * barrier for "everything caused so far has been handled" (tests, benches).
   */
  get settled(): boolean {
    return this.controllers.every((c) => c.unsettled === 0);
  }

  /** Controllers that failed to start; while there are any, /readyz answers 503 naming them. */
  get failedControllers(): readonly ControllerFailure[] {
    return this.failures;
  }

  get isLeader(): boolean {
    return this.elector ? this.elector.isLeader : this.started;
  }

  /** Where a server listens once started (`probe` or `metrics`). */
  address(which: "probe" | "metrics"): AddressInfo | undefined {
    return this.addresses.get(which);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.startServers();
    this.cache.start();
    const election = this.options.leaderElection;
    if (!election) {
      this.metrics.leaderStatus.set({ name: this.options.name }, 1);
      this.startControllers();
      return;
    }
    const name = election.leaseName ?? `${this.options.name}.ktube.dev`;
    this.metrics.leaderStatus.set({ name }, 0);
    this.elector = new LeaderElector(this.client, {
      namespace: election.namespace,
      name,
      identity: this.identity,
      ...(election.leaseDurationMs ? { leaseDurationMs: election.leaseDurationMs } : {}),
      ...(election.renewDeadlineMs ? { renewDeadlineMs: election.renewDeadlineMs } : {}),
      ...(election.retryPeriodMs ? { retryPeriodMs: election.retryPeriodMs } : {}),
      logger: this.logger,
      onStartedLeading: () => {
        this.metrics.leaderStatus.set({ name }, 1);
        this.startControllers();
      },
      onStoppedLeading: () => {
        this.metrics.leaderStatus.set({ name }, 0);
        if (this.stopping) return;
        // Another instance may be leading already: stop at once, abort what is in
        // flight and do not drain (controller-runtime sets the graceful timeout to 0 here).
        for (const controller of this.controllers) controller.halt("leader election lost");
        (this.options.onLeadershipLost ?? (() => process.exit(1)))();
      },
    });
    this.elector.start();
  }

  /** Stops reconciling (letting reconciles in flight finish), releases the lease, stops watching. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.stopControllers();
      await this.elector?.stop();
      await this.events.close();
      await this.cache.stop();
      await Promise.all(this.servers.map((s) => new Promise((resolve) => s.close(resolve))));
      this.logger.info("manager stopped");
    })();
    return this.stopping;
  }

  /** Stops cleanly on SIGTERM or SIGINT, then exits. */
  installSignalHandlers(): void {
    const onSignal = (signal: string): void => {
      this.logger.info({ signal }, "shutting down");
      void this.stop().then(() => process.exit(0));
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  }

  private startControllers(): void {
    for (const controller of this.controllers) {
      controller.start().catch((error: unknown) => {
        const failure = { controller: controller.name, error: error instanceof Error ? error.message : String(error) };
        this.failures.push(failure);
        this.logger.error({ err: failure.error, controller: controller.name }, "controller failed to start");
      });
    }
  }

  /** Why this instance is not ready, or undefined when it is. */
  private notReadyReason(): string | undefined {
    if (this.stopping) return "shutting down";
    if (this.failures.length > 0) return this.failures.map((f) => `controller ${f.controller} failed to start: ${f.error}`).join("\n");
    if (!this.cache.synced) return "caches not synced";
    return undefined;
  }

  private async stopControllers(): Promise<void> {
    const timeout = this.options.gracefulShutdownTimeoutMs ?? 30_000;
    await Promise.all(this.controllers.map((c) => c.stop(timeout)));
  }

  private async startServers(): Promise<void> {
    const probe = this.options.probeAddress;
    const metrics = this.options.metricsAddress;
    const shared = probe && metrics && probe.port !== 0 && probe.port === metrics.port && probe.host === metrics.host;
    if (probe) await this.listen(probe, shared ? ["probe", "metrics"] : ["probe"]);
    if (metrics && !shared) await this.listen(metrics, ["metrics"]);
  }

  private async listen(address: ListenAddress, roles: Array<"probe" | "metrics">): Promise<void> {
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (roles.includes("probe") && path === "/healthz") {
        res.writeHead(200, { "Content-Type": "text/plain" }).end("ok");
      } else if (roles.includes("probe") && path === "/readyz") {
        const reason = this.notReadyReason();
        res.writeHead(reason ? 503 : 200, { "Content-Type": "text/plain" }).end(reason ?? "ok");
      } else if (roles.includes("metrics") && path === "/metrics") {
        this.metrics.registry.metrics().then(
          (text) => res.writeHead(200, { "Content-Type": this.metrics.registry.contentType }).end(text),
          (error: unknown) => res.writeHead(500).end(String(error)),
        );
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(address.port, address.host ?? "0.0.0.0", () => resolve());
    });
    this.servers.push(server);
    for (const role of roles) this.addresses.set(role, server.address() as AddressInfo);
  }
}
