// Every Cloudflare call goes through here: the official SDK (its own retries off: the
// workqueue retries), the token's call budget, request metrics, and failures turned
// into typed errors (errors.ts) the kit maps to conditions.
import { ProviderRateLimited } from "@ktube/provider-kit";
import type { RuntimeMetrics } from "@ktube/runtime";
import Cloudflare from "cloudflare";
import type { CallBudget } from "./budget.ts";
import { cloudflareError, unreachableError } from "./errors.ts";

export { CloudflareError, type CloudflareReason } from "./errors.ts";

/** One page of a list, as the SDK returns it. `result_info` carries Cloudflare's page counts. */
export interface Page<T> {
  getPaginatedItems(): T[];
  hasNextPage(): boolean;
  getNextPage(): Promise<Page<T>>;
  result_info?: { page?: number; total_pages?: number; total_count?: number };
}

/** Retry-After when a 429 carries none. */
const DEFAULT_BLOCK_MS = 60_000;
/** The shortest block a 429 causes (a Retry-After of 0 still means "not now"). */
const MIN_BLOCK_MS = 1_000;

export interface CloudflareApiOptions {
  accountId: string;
  token: string;
  /** The budget of this token, shared by every session that uses it. */
  budget: CallBudget;
  baseURL?: string;
  metrics?: RuntimeMetrics;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
}

/** The Cloudflare API as one account sees it through one token. */
export class CloudflareApi {
  readonly accountId: string;
  readonly sdk: Cloudflare;
  /** The token's budget (shared with every session of the same token). */
  readonly budget: CallBudget;
  private readonly metrics: RuntimeMetrics | undefined;

  constructor(options: CloudflareApiOptions) {
    this.accountId = options.accountId;
    this.budget = options.budget;
    this.metrics = options.metrics;
    this.sdk = new Cloudflare({
      apiToken: options.token,
      maxRetries: 0,
      timeout: options.timeoutMs ?? 30_000,
      ...(options.baseURL ? { baseURL: options.baseURL } : {}),
    });
  }

  /**
   * Runs one API call under the budget. A 429 or a spent budget throws
   * ProviderRateLimited (the reconcile ends and comes back later instead of sleeping);
   * any other failure throws a CloudflareError. `reserved`: the turn was taken with
   * `reserve()` already.
   */
  async call<T>(operation: string, fn: (sdk: Cloudflare) => PromiseLike<T>, options: { reserved?: boolean } = {}): Promise<T> {
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
   * Takes this token's next turn under the budget, waiting for it when it is near. A
   * turn too far off, or a token Cloudflare has blocked, throws ProviderRateLimited
   * with a jittered retry time; no call goes out while the token is blocked.
   */
  async reserve(): Promise<void> {
    let turn = this.budget.take();
    if (turn.kind === "go" && turn.waitMs > 0) {
      await sleep(turn.waitMs);
      // A 429 may have arrived while this call waited for its turn.
      if (this.budget.blocked) turn = this.budget.take();
    }
    if (turn.kind === "refused") {
      const seconds = Math.ceil(turn.retryAfterMs / 1000);
      const why = turn.blocked ? "Cloudflare is rate-limiting this API token" : "the call budget of this API token is spent";
      throw new ProviderRateLimited(`${why}; retrying in ${seconds} s`, turn.retryAfterMs);
    }
  }

  /**
   * Every item of a paginated list, one budgeted call per page. It follows Cloudflare's
   * `result_info.total_pages` (a server may cap `per_page` below what was asked, so a
   * short page is no sign of the end) and, where a list has no page counts, the SDK's
   * `hasNextPage()` until an empty page.
   */
  async all<T>(operation: string, first: (sdk: Cloudflare) => PromiseLike<Page<T>>): Promise<T[]> {
    let page = await this.call(operation, first);
    const items = [...page.getPaginatedItems()];
    for (let number = 1; hasMore(page, number, items.length); number++) {
      const current = page;
      page = await this.call(operation, () => current.getNextPage());
      items.push(...page.getPaginatedItems());
    }
    return items;
  }

  private count(operation: string, code: number): void {
    this.metrics?.providerRequests.inc({ provider: "cloudflare", operation, code: String(code) });
  }

  private translate(operation: string, error: unknown): unknown {
    if (!(error instanceof Cloudflare.APIError)) {
      // Not an answer from Cloudflare: a bug on our side, passed on as it is.
      this.count(operation, 0);
      return error;
    }
    if (error instanceof Cloudflare.APIUserAbortError) {
      this.count(operation, 0);
      return error;
    }
    if (error instanceof Cloudflare.APIConnectionError) {
      this.count(operation, 0);
      return unreachableError(operation, error.message);
    }
    const status = typeof error.status === "number" ? error.status : 0;
    this.count(operation, status);
    const first = error.errors[0];
    const message = `Cloudflare ${operation}: ${first?.message ?? error.message}${first?.code ? ` (code ${first.code})` : ""}`;
    if (status === 429) {
      this.budget.blockFor(Math.max(MIN_BLOCK_MS, retryAfterMs(error.headers)));
      const turn = this.budget.take();
      const retryMs = turn.kind === "refused" ? turn.retryAfterMs : MIN_BLOCK_MS;
      return new ProviderRateLimited(`${message}; retrying in ${Math.ceil(retryMs / 1000)} s`, retryMs);
    }
    return cloudflareError({ operation, status, ...(first?.code !== undefined ? { code: first.code } : {}), message });
  }
}

/** Is there a page after page number `number`, having seen `seen` items? */
function hasMore<T>(page: Page<T>, number: number, seen: number): boolean {
  if (page.getPaginatedItems().length === 0) return false;
  const info = page.result_info;
  if (typeof info?.total_pages === "number") return (info.page ?? number) < info.total_pages;
  if (typeof info?.total_count === "number") return seen < info.total_count;
  return page.hasNextPage();
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function retryAfterMs(headers: Headers | undefined): number {
  const value = headers?.get("retry-after");
  const seconds = value === null || value === undefined ? Number.NaN : Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : DEFAULT_BLOCK_MS;
}
