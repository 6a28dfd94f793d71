// API sessions for (account, token) pairs. The kit resolves credentials from Secrets
// and hands over the values; this only builds, shares and prunes sessions. Two tokens
// may see different zones and Access apps of one account, so every piece of cached
// state belongs to one (account, token) pair; the call budget belongs to the token
// alone, because Cloudflare's rate limit counts per token, whichever account it serves.
import type { RuntimeMetrics } from "@ktube/runtime";
import { createHash } from "node:crypto";
import { AccessApps } from "./access.ts";
import { CloudflareApi } from "./api.ts";
import { CallBudget, type CallBudgetOptions } from "./budget.ts";
import { ZoneRecords } from "./dns.ts";
import { TunnelHealth } from "./tunnel-health.ts";
import { ZoneDirectory } from "./zones.ts";

/**
 * What one TunnelProvider's credentials give: the API as that token sees that account,
 * and the state shared by every Tunnel and binding using the same pair. Nothing in it
 * calls Cloudflare until asked; in particular Access is only listed when a route uses it.
 */
export interface AccountSession {
  readonly accountId: string;
  /** Budgeted, metered calls with typed errors. */
  readonly api: CloudflareApi;
  /** The zones this token sees in this account. */
  readonly zones: ZoneDirectory;
  /** Per-zone record snapshots. */
  readonly records: ZoneRecords;
  /** Access applications and the one-time PIN login method. */
  readonly access: AccessApps;
  /** Every tunnel's connections, from one listing for the account. */
  readonly health: TunnelHealth;
}

export interface CloudflareSessionsOptions {
  /** The API's base URL (tests point it at the fake). */
  baseURL?: string;
  metrics?: RuntimeMetrics;
  /** Budget of each token (defaults: 1000 calls per 5 minutes, Cloudflare allows 1200). */
  budget?: CallBudgetOptions;
}

const fingerprint = (...parts: string[]): string => createHash("sha256").update(parts.join("\u0000")).digest("hex");

export class CloudflareSessions {
  private readonly options: CloudflareSessionsOptions;
  /** By fingerprint of (account, token): the token itself is never a key. */
  private readonly sessions = new Map<string, { session: AccountSession; tokenKey: string }>();
  /** By fingerprint of the token. */
  private readonly budgets = new Map<string, CallBudget>();

  constructor(options: CloudflareSessionsOptions = {}) {
    this.options = options;
  }

  /**
   * The session for `token` in `accountId`: the same object for the same pair (its
   * caches survive), a new one when either changes (a rotated token starts afresh).
   * Sessions of one token in several accounts share that token's budget.
   */
  session(accountId: string, token: string): AccountSession {
    const key = fingerprint("session", accountId, token);
    const known = this.sessions.get(key);
    if (known) return known.session;
    const tokenKey = fingerprint("token", token);
    let budget = this.budgets.get(tokenKey);
    if (!budget) {
      budget = new CallBudget(this.options.budget);
      this.budgets.set(tokenKey, budget);
    }
    const session: AccountSession = {
      accountId,
      api: new CloudflareApi({
        accountId,
        token,
        budget,
        ...(this.options.baseURL ? { baseURL: this.options.baseURL } : {}),
        ...(this.options.metrics ? { metrics: this.options.metrics } : {}),
      }),
      zones: new ZoneDirectory(),
      records: new ZoneRecords(),
      access: new AccessApps(),
      health: new TunnelHealth(),
    };
    this.sessions.set(key, { session, tokenKey });
    return session;
  }

  /**
   * Keeps the sessions in `active` and drops every other, with the budgets no kept
   * session uses. A budget Cloudflare is still blocking stays until the block ends, so
   * a session made again for that token does not call into the block.
   */
  retain(active: Iterable<AccountSession>): void {
    const keep = new Set(active);
    for (const [key, entry] of this.sessions) if (!keep.has(entry.session)) this.sessions.delete(key);
    const usedTokens = new Set([...this.sessions.values()].map((entry) => entry.tokenKey));
    for (const [tokenKey, budget] of this.budgets) if (!usedTokens.has(tokenKey) && !budget.blocked) this.budgets.delete(tokenKey);
  }

  /** How many sessions and token budgets are held (for metrics and tests). */
  get size(): { sessions: number; budgets: number } {
    return { sessions: this.sessions.size, budgets: this.budgets.size };
  }
}
