// Everything fake-envoy knows about its configuration, built from a loaded bootstrap: the
// stats store, the secret, cluster and listener managers, and the LDS/CDS subscriptions.
// Serve mode starts it with file watches; --mode validate runs the same loading once,
// without watches, and reports every failure. The data path (part 2) reads the managers and
// follows their `changed` / `updated` events.
import { InitializationError, type LoadedBootstrap } from "./bootstrap.ts";
import { ClusterManager } from "./clusters/cluster-manager.ts";
import { ResourceError } from "./config/resource.ts";
import type { ConfigSource } from "./config/subset.ts";
import { ListenerManager } from "./listeners/listener-manager.ts";
import type { EnvoyLogger } from "./log.ts";
import { SecretManager } from "./secrets/secret-manager.ts";
import { StatsStore, type Counter } from "./stats/store.ts";
import { FilesystemSubscription, subscriptionStats } from "./xds/filesystem-subscription.ts";
import { WatchSetupError } from "./xds/file-watch.ts";

export interface ConfigPlaneOptions {
  bootstrap: LoadedBootstrap;
  log: EnvoyLogger;
  /** Watch the files (serve) or read them once (validate). */
  watch: boolean;
  stats?: StatsStore;
}

export class ConfigPlane {
  readonly bootstrap: LoadedBootstrap;
  readonly stats: StatsStore;
  readonly secrets: SecretManager;
  readonly clusters: ClusterManager;
  readonly listeners: ListenerManager;
  /** `fake_envoy.unimplemented_rejected`: updates refused for config fake-envoy does not implement. */
  readonly unimplemented: Counter;
  cds: FilesystemSubscription | undefined;
  lds: FilesystemSubscription | undefined;
  private readonly log: EnvoyLogger;
  private readonly watch: boolean;

  constructor(options: ConfigPlaneOptions) {
    this.bootstrap = options.bootstrap;
    this.log = options.log;
    this.watch = options.watch;
    this.stats = options.stats ?? new StatsStore();
    this.unimplemented = this.stats.counter("fake_envoy.unimplemented_rejected");
    this.secrets = new SecretManager({ stats: this.stats, log: this.log, unimplemented: this.unimplemented, watch: this.watch });
    this.clusters = new ClusterManager(this.stats.scope("cluster_manager."), this.log);
    this.listeners = new ListenerManager({
      stats: this.stats.scope("listener_manager."),
      log: this.log,
      secrets: this.secrets,
      clusterExists: (name) => this.clusters.get(name) !== undefined,
    });
  }

  /** Static secrets, clusters and listeners, in Envoy's order; throws InitializationError. */
  async loadStatic(): Promise<void> {
    try {
      this.secrets.addStatic(this.bootstrap.staticSecrets);
      this.clusters.addStatic(this.bootstrap.staticClusters);
      await this.listeners.addStatic(this.bootstrap.staticListeners);
    } catch (error) {
      if (error instanceof ResourceError) throw new InitializationError(error.message, error.unimplemented);
      throw error;
    }
  }

  private subscription(kind: "lds" | "cds", source: ConfigSource): FilesystemSubscription {
    const path = source.path_config_source?.path ?? "";
    const watchedDirectory = source.path_config_source?.watched_directory?.path;
    return new FilesystemSubscription({
      kind,
      path,
      ...(watchedDirectory !== undefined ? { watchedDirectory } : {}),
      stats: subscriptionStats(this.stats.scope(kind === "lds" ? "listener_manager.lds." : "cluster_manager.cds.")),
      log: this.log,
      logger: "config",
      unimplemented: this.unimplemented,
      callbacks: { onConfigUpdate: (update) => (kind === "lds" ? this.listeners.onLdsUpdate(update) : this.clusters.onCdsUpdate(update)) },
    });
  }

  /** Creates the CDS and LDS subscriptions and reads each file once (CDS first, as Envoy's init does). */
  async startDynamic(): Promise<void> {
    const dynamic = this.bootstrap.bootstrap.dynamic_resources;
    if (dynamic?.cds_config) this.cds = this.subscription("cds", dynamic.cds_config);
    if (dynamic?.lds_config) this.lds = this.subscription("lds", dynamic.lds_config);
    try {
      await this.cds?.start(this.watch);
      await this.lds?.start(this.watch);
    } catch (error) {
      if (error instanceof WatchSetupError) throw new InitializationError(error.message);
      throw error;
    }
  }

  close(): void {
    this.cds?.close();
    this.lds?.close();
    this.listeners.close();
    this.secrets.close();
  }
}
