// Envoy's FilesystemSubscriptionImpl: reads a DiscoveryResponse from a file at start and on
// every move into its watch, hands the resources to the subscriber, and keeps the
// subscription stats under the subscriber's prefix (`listener_manager.lds.`,
// `cluster_manager.cds.`, `sds.<secret>.`):
//
//   update_attempt   every refresh
//   update_success   the subscriber took the update; then version_text = version_info,
//                    version = xxHash64(version_info), update_time = now (ms)
//   update_rejected  the file loaded but the update was refused (unknown fields, PGV rules,
//                    what the subscriber refused); logged as
//                    `Filesystem config update rejected: <reason>`
//   update_failure   the file could not be read or parsed; logged as
//                    `Filesystem config update failure: in <path>, <reason>`
//   init_fetch_timeout  always 0 (a file is read at once)
//
// version_text keeps the last accepted version through rejections and failures. Refreshes
// run one at a time; moves seen during a refresh cause one more.
import type { JsonObject, JsonValue } from "@ktube/envoy-validator";
import { loadConfigFile } from "../config/load-file.ts";
import { checkDiscoveryDocument, type DiscoveryKind } from "../config/proto-check.ts";
import { SOURCE, type EnvoyLogger, type LoggerName } from "../log.ts";
import type { Counter, Gauge, StatsScope, TextReadout } from "../stats/store.ts";
import { xxHash64 } from "../stats/xxhash64.ts";
import { MovedToWatch } from "./file-watch.ts";

export interface DiscoveryUpdate {
  version: string;
  /** The resources as written (each with its `@type`). */
  resources: JsonObject[];
  /** PGV errors inside a resource's typed_configs, by index (see proto-check.ts). */
  resourceErrors: ReadonlyMap<number, readonly string[]>;
}

/** Thrown by a subscriber that refuses an update (counted as update_rejected). */
export class ConfigRejectedError extends Error {
  override name = "ConfigRejectedError";
  /** Part of the refusal is config fake-envoy does not implement (not Envoy's own refusal). */
  readonly unimplemented: boolean;
  constructor(message: string, unimplemented = false) {
    super(message);
    this.unimplemented = unimplemented;
  }
}

export interface SubscriptionCallbacks {
  onConfigUpdate(update: DiscoveryUpdate): Promise<void>;
  /** A failed or rejected update (Envoy's onConfigUpdateFailed). */
  onConfigUpdateFailed?(): void;
}

export interface SubscriptionStats {
  init_fetch_timeout: Counter;
  update_attempt: Counter;
  update_failure: Counter;
  update_rejected: Counter;
  update_success: Counter;
  update_time: Gauge;
  version: Gauge;
  version_text: TextReadout;
}

export function subscriptionStats(scope: StatsScope): SubscriptionStats {
  return {
    init_fetch_timeout: scope.counter("init_fetch_timeout"),
    update_attempt: scope.counter("update_attempt"),
    update_failure: scope.counter("update_failure"),
    update_rejected: scope.counter("update_rejected"),
    update_success: scope.counter("update_success"),
    update_time: scope.gauge("update_time"),
    version: scope.gauge("version"),
    version_text: scope.textReadout("version_text"),
  };
}

export type RefreshOutcome = { kind: "success"; version: string } | { kind: "rejected" | "failure"; message: string };

export interface FilesystemSubscriptionOptions {
  kind: DiscoveryKind;
  path: string;
  watchedDirectory?: string;
  stats: SubscriptionStats;
  log: EnvoyLogger;
  logger: LoggerName;
  callbacks: SubscriptionCallbacks;
  /** Counts refusals of config fake-envoy does not implement (`fake_envoy.unimplemented_rejected`). */
  unimplemented: Counter;
}

const DISCOVERY_FIELDS = new Set(["version_info", "versionInfo", "resources", "type_url", "typeUrl"]);

const isObject = (value: JsonValue | undefined): value is JsonObject => typeof value === "object" && value !== null && !Array.isArray(value);

export class FilesystemSubscription {
  readonly path: string;
  readonly stats: SubscriptionStats;
  /** The outcome of the last refresh (for --mode validate and tests). */
  lastOutcome: RefreshOutcome | undefined;
  private readonly options: FilesystemSubscriptionOptions;
  private watch: MovedToWatch | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(options: FilesystemSubscriptionOptions) {
    this.options = options;
    this.path = options.path;
    this.stats = options.stats;
  }

  /** Starts watching (unless `watch` is false, as in --mode validate), then reads the file once. Throws if the watch cannot be set up. */
  async start(watch = true): Promise<void> {
    if (watch) {
      this.watch = new MovedToWatch({
        path: this.options.path,
        ...(this.options.watchedDirectory !== undefined ? { watchedDirectory: this.options.watchedDirectory } : {}),
        onMovedTo: () => void this.refresh(),
      });
    }
    await this.refresh();
  }

  close(): void {
    this.closed = true;
    this.watch?.close();
  }

  /** Reads the file again; concurrent calls coalesce into at most one more refresh. */
  refresh(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          if (this.closed) return;
          await this.refreshOnce();
        } while (this.again);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private async refreshOnce(): Promise<void> {
    const { log, logger, stats, path } = this.options;
    log.debug(logger, SOURCE.subscriptionRefresh, `Filesystem config refresh for ${path}`);
    stats.update_attempt.inc();
    const loaded = await loadConfigFile(path);
    if (!loaded.ok) return this.failure(loaded.message);
    const doc = loaded.json;
    const check = await checkDiscoveryDocument(this.options.kind, doc);
    if (check.fileFault?.outcome === "failure") return this.failure(check.fileFault.message);
    if (check.fileFault) return this.rejected(check.fileFault.message, false);
    const extra = Object.keys(doc).filter((key) => !DISCOVERY_FIELDS.has(key));
    if (extra.length > 0) {
      return this.rejected(`${extra.join(", ")}: envoy.service.discovery.v3.DiscoveryResponse.${extra[0]} is not implemented by fake-envoy`, true);
    }
    const version = String(doc.version_info ?? doc.versionInfo ?? "");
    const resources = (doc.resources ?? []) as JsonValue;
    const update: DiscoveryUpdate = {
      version,
      resources: Array.isArray(resources) ? resources.filter(isObject) : [],
      resourceErrors: check.resourceErrors,
    };
    try {
      await this.options.callbacks.onConfigUpdate(update);
    } catch (error) {
      if (error instanceof ConfigRejectedError) return this.rejected(error.message, error.unimplemented);
      throw error;
    }
    stats.update_time.set(Date.now());
    stats.version.set(xxHash64(version));
    stats.version_text.set(version);
    stats.update_success.inc();
    this.lastOutcome = { kind: "success", version };
    log.debug(logger, SOURCE.subscriptionAccepted, `Filesystem config update accepted for ${path}: version_info: "${version}"`);
  }

  private failure(message: string): void {
    const { log, logger, stats, path } = this.options;
    log.warn(logger, SOURCE.subscriptionFailure, `Filesystem config update failure: in ${path}, ${message}`);
    stats.update_failure.inc();
    this.lastOutcome = { kind: "failure", message };
    this.options.callbacks.onConfigUpdateFailed?.();
  }

  private rejected(message: string, unimplemented: boolean): void {
    const { log, logger, stats, path } = this.options;
    log.warn(logger, SOURCE.subscriptionRejected, `Filesystem config update rejected: ${message}`);
    if (unimplemented) {
      this.options.unimplemented.inc();
      log.error(logger, SOURCE.fakeEnvoy, `fake-envoy refused config in ${path} that it does not implement (not a refusal Envoy would make); see packages/fake-envoy/README.md`);
    }
    stats.update_rejected.inc();
    this.lastOutcome = { kind: "rejected", message };
    this.options.callbacks.onConfigUpdateFailed?.();
  }
}
