// Envoy's secret manager: static secrets from the bootstrap, and one SDS subscription per
// (use, config source, secret name) that some listener's DownstreamTlsContext references
// through `sds_config.path_config_source`. A subscription lives while a listener holds it;
// its stats live under `sds.<secret name>.` (the subscription stats plus
// `key_rotation_failed`).
//
// An SDS file is a DiscoveryResponse with exactly one Secret of the expected name (Envoy's
// SdsApi): `Missing SDS resources for <name> in onConfigUpdate()`,
// `Unexpected SDS secrets length: <n>`, `Unexpected SDS secret (expecting <name>): <got>`
// are rejections. fake-envoy also loads the key material, as Envoy does when it builds the
// TLS context from the secret, and rejects what does not load.
import { EventEmitter } from "node:events";
import type { JsonObject } from "@ktube/envoy-validator";
import { parseResource, resourceBody, resourceHash, ResourceError } from "../config/resource.ts";
import { secretSpec, type ConfigSource, type Secret } from "../config/subset.ts";
import { SOURCE, type EnvoyLogger } from "../log.ts";
import type { Counter, StatsStore } from "../stats/store.ts";
import { ConfigRejectedError, FilesystemSubscription, subscriptionStats, type DiscoveryUpdate } from "../xds/filesystem-subscription.ts";
import { checkSecretMaterial, type SecretUse } from "./secret-material.ts";

export type { SecretUse } from "./secret-material.ts";

export interface ActiveSecret {
  name: string;
  config: Secret;
  /** As written, for /config_dump (private keys redacted there). */
  raw: JsonObject;
  hash: string;
  versionInfo: string;
  lastUpdated: Date;
}

const SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

export function buildSecret(resource: JsonObject, versionInfo: string): ActiveSecret {
  const body = resourceBody(resource);
  const config = parseResource(secretSpec, body);
  return { name: config.name ?? "", config, raw: { "@type": SECRET_TYPE, ...body }, hash: resourceHash(body), versionInfo, lastUpdated: new Date() };
}

export interface DynamicSecretEvents {
  /** A new secret was accepted (a rotation): TLS contexts using it are rebuilt. */
  updated: [ActiveSecret];
}

/** One SDS subscription (Envoy's SdsApi). */
export class DynamicSecret extends EventEmitter<DynamicSecretEvents> {
  readonly name: string;
  readonly use: SecretUse;
  readonly path: string;
  readonly subscription: FilesystemSubscription;
  current: ActiveSecret | undefined;
  /** Listeners holding it. */
  refs = 0;

  constructor(name: string, use: SecretUse, path: string, subscription: (self: DynamicSecret) => FilesystemSubscription) {
    super();
    this.name = name;
    this.use = use;
    this.path = path;
    this.subscription = subscription(this);
  }

  async onConfigUpdate(update: DiscoveryUpdate): Promise<void> {
    if (update.resources.length === 0) throw new ConfigRejectedError(`Missing SDS resources for ${this.name} in onConfigUpdate()`);
    if (update.resources.length !== 1) throw new ConfigRejectedError(`Unexpected SDS secrets length: ${update.resources.length}`);
    let secret: ActiveSecret;
    try {
      secret = buildSecret(update.resources[0]!, update.version);
      if (secret.name !== this.name) throw new ResourceError(`Unexpected SDS secret (expecting ${this.name}): ${secret.name}`);
      if (secret.hash !== this.current?.hash) checkSecretMaterial(secret.config, this.use);
    } catch (error) {
      if (error instanceof ResourceError) throw new ConfigRejectedError(error.message, error.unimplemented);
      throw error;
    }
    const changed = secret.hash !== this.current?.hash;
    this.current = changed ? secret : { ...this.current!, versionInfo: update.version, lastUpdated: new Date() };
    if (changed) this.emit("updated", secret);
  }
}

const sourceKey = (use: SecretUse, name: string, source: ConfigSource): string =>
  JSON.stringify([use, name, source.path_config_source?.path ?? "", source.path_config_source?.watched_directory?.path ?? ""]);

export class SecretManager {
  readonly staticSecrets = new Map<string, ActiveSecret>();
  readonly dynamicSecrets = new Map<string, DynamicSecret>();
  private readonly store: StatsStore;
  private readonly log: EnvoyLogger;
  private readonly unimplemented: Counter;
  private readonly watch: boolean;

  constructor(options: { stats: StatsStore; log: EnvoyLogger; unimplemented: Counter; watch: boolean }) {
    this.store = options.stats;
    this.log = options.log;
    this.unimplemented = options.unimplemented;
    this.watch = options.watch;
  }

  /** The bootstrap's static secrets; throws on the first that fails. */
  addStatic(resources: readonly JsonObject[]): void {
    for (const resource of resources) {
      const secret = buildSecret(resource, "");
      if (this.staticSecrets.has(secret.name)) throw new ResourceError(`Duplicate static secret name ${secret.name}`);
      if (secret.config.tls_certificate) checkSecretMaterial(secret.config, "tls_certificate");
      if (secret.config.validation_context) checkSecretMaterial(secret.config, "validation_context");
      this.staticSecrets.set(secret.name, secret);
    }
  }

  /** A static secret a listener names without `sds_config`. */
  findStatic(name: string, use: SecretUse): ActiveSecret {
    const secret = this.staticSecrets.get(name);
    if (!secret || !secret.config[use]) throw new ResourceError(`Unknown static secret: ${name}`);
    return secret;
  }

  /** The SDS subscription for `name` from `source`, started (file read once) if new. */
  async acquire(name: string, use: SecretUse, source: ConfigSource): Promise<DynamicSecret> {
    const path = source.path_config_source?.path;
    if (!path) throw new ResourceError(`sds_config: only path_config_source is implemented by fake-envoy`, true);
    const key = sourceKey(use, name, source);
    let secret = this.dynamicSecrets.get(key);
    if (!secret) {
      const watchedDirectory = source.path_config_source?.watched_directory?.path;
      secret = new DynamicSecret(
        name,
        use,
        path,
        (self) =>
          new FilesystemSubscription({
            kind: "sds",
            path,
            ...(watchedDirectory !== undefined ? { watchedDirectory } : {}),
            stats: subscriptionStats(this.store.scope(`sds.${name}.`)),
            log: this.log,
            logger: "config",
            unimplemented: this.unimplemented,
            callbacks: { onConfigUpdate: (update) => self.onConfigUpdate(update) },
          }),
      );
      this.store.counter(`sds.${name}.key_rotation_failed`);
      this.dynamicSecrets.set(key, secret);
      try {
        await secret.subscription.start(this.watch);
      } catch (error) {
        this.dynamicSecrets.delete(key);
        secret.subscription.close();
        throw new ResourceError((error as Error).message);
      }
      this.log.debug("secret", SOURCE.sdsApi, `sds: subscribed to secret '${name}' from ${path}`);
    }
    secret.refs++;
    return secret;
  }

  release(secret: DynamicSecret): void {
    secret.refs--;
    if (secret.refs > 0) return;
    secret.subscription.close();
    for (const [key, value] of this.dynamicSecrets) if (value === secret) this.dynamicSecrets.delete(key);
  }

  close(): void {
    for (const secret of this.dynamicSecrets.values()) secret.subscription.close();
  }
}
