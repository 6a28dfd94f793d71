// Every Cloudflare call goes through here: the official SDK (its own retries off: the
// workqueue retries), a per-account call budget, metrics, and errors mapped to reasons.
import { RequeueAfterError, type RuntimeMetrics } from "@ktube/runtime";
import Cloudflare from "cloudflare";

/** A Cloudflare failure, with the condition reason it maps to. */
export class CloudflareError extends Error {
  override name = "CloudflareError";
  readonly reason: string;
  readonly status: number | undefined;
  readonly code: number | undefined;

  constructor(reason: string, message: string, status?: number, code?: number) {
    super(message);
    this.reason = reason;
    this.status = status;
    this.code = code;
  }
}

/** The page size every list asks for (and `all` expects). */
export const PAGE_SIZE = 100;

interface Page<T> {
  getPaginatedItems(): T[];
  hasNextPage(): boolean;
  getNextPage(): Promise<Page<T>>;
}


/**
 * A token bucket per account. Cloudflare allows 1200 requests per 5 minutes per token
 * and blocks *every* call for the rest of the window once a token goes over, so the
 * controller spends at most `limit` per window and, after a 429, makes no call at all
 * until Retry-After has passed.
 *
 * Callers queue for tokens in order (the bucket goes into debt): a call whose turn
 * comes within `maxWaitMs` waits for it, so a thousand reconciles do not all retry at
 * once; a longer wait ends the reconcile with a requeue instead.
 */
export class CallBudget {
  private tokens: number;
  private last = Date.now();
  private blockedUntil = 0;
  readonly limit: number;
  readonly windowMs: number;
  readonly burst: number;
  readonly maxWaitMs: number;

  constructor(limit = 1000, windowMs = 5 * 60_000, maxWaitMs = 5_000) {
    this.limit = limit;
    this.windowMs = windowMs;
    this.burst = Math.min(limit, 200);
    this.maxWaitMs = maxWaitMs;
    this.tokens = this.burst;
  }

  /**
   * Reserves one call: 0 to go now, a positive delay to wait for the reserved turn, or
   * a negative number (minus the wait) when the turn is too far off and nothing was
   * reserved.
   */
  take(): number {
    const now = Date.now();
    if (now < this.blockedUntil) return -(this.blockedUntil - now);
    const rate = this.limit / this.windowMs;
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * rate);
    this.last = now;
    const wait = this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) / rate);
    if (wait > this.maxWaitMs) return -wait;
    this.tokens -= 1;
    return wait;
  }

  block(ms: number): void {
    this.blockedUntil = Math.max(this.blockedUntil, Date.now() + ms);
  }
}

export interface CloudflareApiOptions {
  accountId: string;
  token: string;
  baseURL?: string;
  budget: CallBudget;
  metrics?: RuntimeMetrics;
}

export class CloudflareApi {
  readonly accountId: string;
  readonly sdk: Cloudflare;
  private readonly budget: CallBudget;
  private readonly metrics?: RuntimeMetrics;

  constructor(options: CloudflareApiOptions) {
    this.accountId = options.accountId;
    this.budget = options.budget;
    if (options.metrics) this.metrics = options.metrics;
    this.sdk = new Cloudflare({
      apiToken: options.token,
      maxRetries: 0,
      timeout: 30_000,
      ...(options.baseURL ? { baseURL: options.baseURL } : {}),
    });
  }

  /**
   * Runs one API call under the budget. A 429 or an empty budget becomes a
   * RequeueAfterError, so the reconcile ends and comes back later instead of sleeping.
   */
  async call<T>(operation: string, fn: (sdk: Cloudflare) => Promise<T>, options: { reserved?: boolean } = {}): Promise<T> {
    if (!options.reserved) await this.reserve();
    try {
      const result = await fn(this.sdk);
      this.count(operation, 200);
      return result;
    } catch (error) {
      throw this.translate(operation, error);
    }
  }

  /**
   * Waits for this account's next turn under the budget (a call made with
   * `reserved: true` then spends it). A turn too far off ends the reconcile instead.
   */
  async reserve(): Promise<void> {
    const wait = this.budget.take();
    if (wait < 0) throw new RequeueAfterError("CloudflareRateLimited", `Cloudflare call budget of account ${this.accountId} spent; retrying in ${Math.ceil(-wait / 1000)} s`, -wait);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }

  /**
   * Drains a paginated list under the budget, one budgeted call per page. It stops at
   * the first short page, saving the empty page the SDK's iterator would ask for.
   */
  async all<T>(operation: string, first: (sdk: Cloudflare) => PromiseLike<Page<T>>, perPage = PAGE_SIZE): Promise<T[]> {
    let page = await this.call(operation, (sdk) => Promise.resolve(first(sdk)));
    const items = [...page.getPaginatedItems()];
    while (page.getPaginatedItems().length >= perPage && page.hasNextPage()) {
      const current = page;
      page = await this.call(operation, () => current.getNextPage());
      items.push(...page.getPaginatedItems());
    }
    return items;
  }

  private count(operation: string, code: number): void {
    this.metrics?.providerRequests.inc({ provider: "cloudflare", operation, code: String(code) });
  }

  private translate(operation: string, error: unknown): Error {
    if (!(error instanceof Cloudflare.APIError)) {
      this.count(operation, 0);
      return new CloudflareError("CloudflareUnreachable", `Cloudflare ${operation}: ${(error as Error).message}`);
    }
    const status = error.status ?? 0;
    this.count(operation, status);
    const first = (error.errors as Array<{ code?: number; message?: string }>)[0];
    const message = `Cloudflare ${operation}: ${first?.message ?? error.message}${first?.code ? ` (code ${first.code})` : ""}`;
    if (status === 429) {
      const seconds = Number(error.headers?.get("retry-after") ?? 60);
      const ms = (Number.isFinite(seconds) ? seconds : 60) * 1000;
      this.budget.block(ms);
      return new RequeueAfterError("CloudflareRateLimited", `${message}; retrying in ${Math.ceil(ms / 1000)} s`, ms);
    }
    if (status === 401 || status === 403) return new CloudflareError("AuthenticationFailed", message, status, first?.code);
    if (status >= 500) return new CloudflareError("CloudflareUnavailable", message, status, first?.code);
    return new CloudflareError("CloudflareAPIError", message, status, first?.code);
  }
}
