// Provider credentials from Secrets in the controller's own namespace (like
// cert-manager's ClusterIssuer): no controller needs cluster-wide Secret reads. The
// kit keeps one plugin session per provider while its spec and credentials are
// unchanged; the values themselves are never used as keys, logged or reported.
import { Core } from "@ktube/api";
import type { Cache } from "@ktube/runtime";
import { createHash } from "node:crypto";
import { ProviderError } from "./errors.ts";
import type { ProviderObject, ProviderPlugin } from "./plugin.ts";

export interface CredentialProblem {
  reason: "SecretNotFound" | "SecretKeyNotFound" | "InvalidSpec" | string;
  /** Names the Secret and key: shown on the TunnelProvider only, never on tenants' bindings. */
  message: string;
}

export type SessionResult<S> = { session: S; problem?: undefined } | { session?: undefined; problem: CredentialProblem };

export class Sessions<S extends object> {
  private readonly cache: Cache;
  private readonly namespace: string;
  private readonly plugin: ProviderPlugin<S>;
  private readonly sessions = new Map<string, { fingerprint: string; session: S }>();

  constructor(cache: Cache, namespace: string, plugin: ProviderPlugin<S>) {
    this.cache = cache;
    this.namespace = namespace;
    this.plugin = plugin;
    cache.informer(Core.Secret, { namespace });
  }

  get secretNamespace(): string {
    return this.namespace;
  }

  /** Names of the Secrets a provider reads (for mapping Secret events to providers). */
  secretNames(provider: ProviderObject): string[] {
    return [...new Set(Object.values(this.plugin.credentialRefs(provider)).map((ref) => ref.name))];
  }

  of(provider: ProviderObject): SessionResult<S> {
    const values: Record<string, string> = {};
    for (const [role, ref] of Object.entries(this.plugin.credentialRefs(provider))) {
      const secret = this.cache.get(Core.Secret, this.namespace, ref.name, { namespace: this.namespace });
      if (!secret) return { problem: { reason: "SecretNotFound", message: `Secret ${this.namespace}/${ref.name} not found` } };
      const encoded = secret.data?.[ref.key];
      if (encoded === undefined && ref.optional) continue;
      if (encoded === undefined) return { problem: { reason: "SecretKeyNotFound", message: `Secret ${this.namespace}/${ref.name} has no key "${ref.key}"` } };
      values[role] = Buffer.from(encoded, "base64").toString("utf8").trim();
    }
    const fingerprint = createHash("sha256")
      .update(JSON.stringify([provider.metadata.uid, provider.spec, Object.entries(values).sort()]))
      .digest("hex");
    const known = this.sessions.get(provider.metadata.name!);
    if (known?.fingerprint === fingerprint) return { session: known.session };
    try {
      const session = this.plugin.connect(provider, values);
      this.sessions.set(provider.metadata.name!, { fingerprint, session });
      if (known) this.plugin.disconnect?.(known.session);
      return { session };
    } catch (error) {
      if (error instanceof ProviderError) return { problem: { reason: error.reason, message: error.message } };
      throw error;
    }
  }

  /** The provider is gone: its session is released. */
  forget(providerName: string): void {
    const known = this.sessions.get(providerName);
    this.sessions.delete(providerName);
    if (known) this.plugin.disconnect?.(known.session);
  }
}
