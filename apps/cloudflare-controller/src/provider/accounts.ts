// From a TunnelProvider to a ready-to-use API session: its token from the Secret in
// the controller's namespace, and per-account state (call budget, zone and record
// snapshots) shared by every Tunnel and binding of that account.
import { Core, type TunnelProvider } from "@ktube/api";
import type { Cache, KubeObject, RuntimeMetrics } from "@ktube/runtime";
import { createHash } from "node:crypto";
import { AccessApps } from "./access.ts";
import { CallBudget, CloudflareApi } from "./api.ts";
import { ZoneRecords } from "./dns.ts";
import { DnsBatcher } from "./dns-batcher.ts";
import { ZoneDirectory } from "./zones.ts";

export interface AccountSession {
  accountId: string;
  api: CloudflareApi;
  zones: ZoneDirectory;
  records: ZoneRecords;
  batcher: DnsBatcher;
  access: AccessApps;
}

export interface CredentialProblem {
  reason: "SecretNotFound" | "SecretKeyNotFound" | "InvalidSpec";
  message: string;
}

interface SecretObject extends KubeObject {
  data?: Record<string, string>;
}

export interface AccountsOptions {
  cache: Cache;
  /** The namespace the controller runs in: the only one whose Secrets it reads. */
  namespace: string;
  baseURL?: string;
  metrics?: RuntimeMetrics;
  /** Calls per account per 5 minutes (Cloudflare's limit is 1200). */
  callsPer5m?: number;
}

export class Accounts {
  private readonly options: AccountsOptions;
  private readonly sessions = new Map<string, { fingerprint: string; session: AccountSession }>();
  private readonly budgets = new Map<string, CallBudget>();
  private readonly shared = new Map<string, Omit<AccountSession, "api" | "accountId">>();

  constructor(options: AccountsOptions) {
    this.options = options;
    options.cache.informer(Core.Secret, { namespace: options.namespace });
  }

  get secretNamespace(): string {
    return this.options.namespace;
  }

  session(provider: TunnelProvider): AccountSession | CredentialProblem {
    const spec = provider.spec.cloudflare;
    if (!spec?.accountId || !spec.apiTokenSecretRef) return { reason: "InvalidSpec", message: "spec.cloudflare needs accountId and apiTokenSecretRef" };
    const ref = spec.apiTokenSecretRef;
    const secret = this.options.cache.get<SecretObject>(Core.Secret, this.options.namespace, ref.name, { namespace: this.options.namespace });
    if (!secret) return { reason: "SecretNotFound", message: `Secret ${this.options.namespace}/${ref.name} not found` };
    const encoded = secret.data?.[ref.key];
    if (!encoded) return { reason: "SecretKeyNotFound", message: `Secret ${this.options.namespace}/${ref.name} has no key "${ref.key}"` };
    const token = Buffer.from(encoded, "base64").toString("utf8").trim();
    // The fingerprint lets a rotated token replace the session; the token itself is never kept as a key.
    const fingerprint = createHash("sha256").update(`${spec.accountId}\u0000${token}`).digest("hex");
    const known = this.sessions.get(provider.metadata.name!);
    if (known?.fingerprint === fingerprint) return known.session;
    const budget = this.budgets.get(spec.accountId) ?? new CallBudget(this.options.callsPer5m ?? 1000);
    this.budgets.set(spec.accountId, budget);
    const shared = this.shared.get(spec.accountId) ?? { zones: new ZoneDirectory(), records: new ZoneRecords(), batcher: new DnsBatcher(), access: new AccessApps() };
    this.shared.set(spec.accountId, shared);
    const api = new CloudflareApi({
      accountId: spec.accountId,
      token,
      budget,
      ...(this.options.baseURL ? { baseURL: this.options.baseURL } : {}),
      ...(this.options.metrics ? { metrics: this.options.metrics } : {}),
    });
    const session = { accountId: spec.accountId, api, ...shared };
    this.sessions.set(provider.metadata.name!, { fingerprint, session });
    return session;
  }
}

export const isProblem = (s: AccountSession | CredentialProblem): s is CredentialProblem => "reason" in s;
