// Envoy's listener manager as LDS drives it (LdsApiImpl + ListenerManagerImpl): listeners the
// update no longer names are removed first, then each listener is added, replaced or, when
// unchanged, left alone. A listener that fails does not stop the others; the update is then
// rejected with one line per failed listener:
//
//   Error adding/updating listener(s) <name>: <reason>
//   <name>: <reason>
//
// and its version is not taken, although what did apply stays applied (as in Envoy).
// Checks beyond the protos: a duplicate name in one update (`duplicate listener <name> found`),
// another listener on the same address and protocol
// (`error adding listener: '<name>' has duplicate address '<addr>' as existing listener, ...`),
// and what build-listener.ts checks.
import { EventEmitter } from "node:events";
import type { JsonObject } from "@ktube/envoy-validator";
import { resourceBody, resourceHash, ResourceError } from "../config/resource.ts";
import { SOURCE, type EnvoyLogger } from "../log.ts";
import type { SecretManager } from "../secrets/secret-manager.ts";
import type { StatsScope } from "../stats/store.ts";
import { ConfigRejectedError, type DiscoveryUpdate } from "../xds/filesystem-subscription.ts";
import { ListenerBuilder, type ActiveListener } from "./build-listener.ts";

export interface ListenerErrorState {
  details: string;
  lastUpdateAttempt: Date;
  failedConfiguration: JsonObject;
}

export interface ListenerChange {
  added: ActiveListener[];
  /** `inPlace`: only filter chains changed (Envoy drains just the chains that changed). */
  updated: Array<{ previous: ActiveListener; current: ActiveListener; inPlace: boolean }>;
  removed: ActiveListener[];
}

export interface ListenerManagerEvents {
  changed: [ListenerChange];
}

/** Everything but the filter chains, to tell an in-place filter chain update from a full one. */
const outsideChains = (listener: ActiveListener): string => {
  const { filter_chains: _chains, default_filter_chain: _default, ...rest } = resourceBody(listener.raw);
  return resourceHash(rest);
};

export interface ListenerManagerOptions {
  stats: StatsScope;
  log: EnvoyLogger;
  secrets: SecretManager;
  clusterExists: (name: string) => boolean;
}

export class ListenerManager extends EventEmitter<ListenerManagerEvents> {
  readonly active = new Map<string, ActiveListener>();
  readonly errorStates = new Map<string, ListenerErrorState>();
  /** LDS's system_version_info: the version of the last update that applied anything. */
  versionInfo = "";
  private readonly options: ListenerManagerOptions;

  constructor(options: ListenerManagerOptions) {
    super();
    this.options = options;
    for (const name of ["listener_added", "listener_modified", "listener_removed", "listener_in_place_updated", "listener_create_failure"]) options.stats.counter(name);
    this.updateGauges();
    options.stats.gauge("total_listeners_draining").set(0); // the data path keeps it
  }

  private builder(): ListenerBuilder {
    return new ListenerBuilder({ secrets: this.options.secrets, clusterExists: this.options.clusterExists, log: this.options.log });
  }

  private conflicting(listener: ActiveListener): ActiveListener | undefined {
    for (const other of this.active.values()) {
      if (other.name === listener.name) continue;
      if (other.protocol === listener.protocol && other.address.text === listener.address.text) return other;
    }
    return undefined;
  }

  /** The bootstrap's static listeners; throws on the first that fails (Envoy does not start). */
  async addStatic(resources: readonly JsonObject[]): Promise<void> {
    const change: ListenerChange = { added: [], updated: [], removed: [] };
    for (const resource of resources) {
      const listener = await this.builder().build(resource, "", true);
      if (this.active.has(listener.name)) throw new ResourceError(`error adding listener named '${listener.name}': duplicate listener name`);
      if (this.conflicting(listener)) throw new ResourceError(this.duplicateAddress(listener));
      this.active.set(listener.name, listener);
      this.options.stats.counter("listener_added").inc();
      change.added.push(listener);
    }
    this.updateGauges();
    if (change.added.length > 0) this.emit("changed", change);
  }

  private duplicateAddress(listener: ActiveListener): string {
    return (
      `error adding listener: '${listener.name}' has duplicate address '${listener.address.text}' as existing listener, ` +
      `to check if the listener has duplicated addresses with other listeners or 'enable_reuse_port' is set to 'false' for the listener`
    );
  }

  private release(listener: ActiveListener): void {
    for (const secret of listener.dynamicSecrets) this.options.secrets.release(secret);
  }

  /** LDS's onConfigUpdate (state of the world). Throws ConfigRejectedError when any listener failed. */
  async onLdsUpdate(update: DiscoveryUpdate): Promise<void> {
    const { log, stats } = this.options;
    const change: ListenerChange = { added: [], updated: [], removed: [] };
    const wanted = new Set(update.resources.map((resource) => String(resource.name ?? "")));
    let anyApplied = false;
    for (const listener of [...this.active.values()]) {
      if (listener.static || wanted.has(listener.name)) continue;
      this.active.delete(listener.name);
      this.release(listener);
      stats.counter("listener_removed").inc();
      log.info("upstream", SOURCE.ldsApi, `lds: remove listener '${listener.name}'`);
      change.removed.push(listener);
      anyApplied = true;
    }

    const failures: string[] = [];
    let unimplemented = false;
    const names = new Set<string>();
    for (const [index, resource] of update.resources.entries()) {
      const name = String(resource.name ?? "");
      try {
        if (names.has(name)) throw new ResourceError(`duplicate listener ${name} found`);
        names.add(name);
        const existing = this.active.get(name);
        if (existing?.static) {
          // Envoy locks static listeners against LDS: the update is skipped, not an error.
          log.debug("config", SOURCE.listenerManager, `duplicate/locked listener '${name}'. no add/update`);
          continue;
        }
        if (existing && existing.hash === resourceHash(resourceBody(resource)) && !update.resourceErrors.has(index)) {
          log.debug("upstream", SOURCE.ldsApi, `lds: add/update listener '${name}' skipped`);
          this.errorStates.delete(name);
          continue;
        }
        const listener = await this.builder().build(resource, update.version, false, update.resourceErrors.get(index));
        if (this.conflicting(listener)) {
          this.release(listener);
          log.warn("config", SOURCE.listenerManager, this.duplicateAddress(listener));
          throw new ResourceError(this.duplicateAddress(listener));
        }
        this.active.set(name, listener);
        this.errorStates.delete(name);
        if (existing) {
          this.release(existing);
          const inPlace = outsideChains(existing) === outsideChains(listener);
          stats.counter(inPlace ? "listener_in_place_updated" : "listener_modified").inc();
          if (inPlace) stats.counter("listener_modified").inc();
          change.updated.push({ previous: existing, current: listener, inPlace });
        } else {
          stats.counter("listener_added").inc();
          change.added.push(listener);
        }
        log.info("upstream", SOURCE.ldsApi, `lds: add/update listener '${name}'`);
        anyApplied = true;
      } catch (error) {
        if (!(error instanceof ResourceError)) throw error;
        unimplemented ||= error.unimplemented;
        this.errorStates.set(name, { details: error.message, lastUpdateAttempt: new Date(), failedConfiguration: resource });
        failures.push(`${name}: ${error.message}`);
      }
    }
    if (anyApplied) {
      this.versionInfo = update.version;
      this.updateGauges();
      this.emit("changed", change);
    }
    if (failures.length > 0) throw new ConfigRejectedError(`Error adding/updating listener(s) ${failures.join("\n")}`, unimplemented);
  }

  /**
   * The data path could not bind `listener` (Envoy's onListenerCreateFailure): it is removed
   * (the data path counts `listener_create_failure` and logs the reason).
   */
  onListenerCreateFailure(listener: ActiveListener): void {
    if (this.active.get(listener.name) !== listener) return;
    this.active.delete(listener.name);
    this.release(listener);
    this.updateGauges();
  }

  close(): void {
    for (const listener of this.active.values()) this.release(listener);
  }

  private updateGauges(): void {
    const { stats } = this.options;
    stats.gauge("total_listeners_active").set(this.active.size);
    stats.gauge("total_listeners_warming").set(0);
  }
}
