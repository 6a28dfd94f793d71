// ngrok's REST API (api.ngrok.com), the calls the controller makes with an API key. Plain
// fetch against the published OpenAPI document: the official `@ngrok/ngrok-api` client
// (0.11) is dated (node-fetch 2, wretch 1) and adds nothing over a typed fetch here.
import { createHash } from "node:crypto";
import type { ConditionInput } from "@ktube/api";
import { ProviderRateLimited } from "@ktube/provider-kit";
import { describeCode, NgrokError } from "./errors.ts";

export interface ApiOptions {
  /** Default https://api.ngrok.com. */
  baseUrl?: string;
  timeoutMs?: number;
  /** How long to leave the API alone after a 429 (ngrok's window is a rolling minute and it sends no Retry-After). */
  rateLimitedWaitMs?: number;
  /** Calls per rolling minute this controller allows itself per key (ngrok allows 120 per account; default 100, leaving room for people and other tools). */
  callsPerMinute?: number;
}

/**
 * After a 429 the whole key waits, not only the call that got it: ngrok counts requests per
 * account over a rolling minute, so any call before the wait is over would be refused too
 * (and count). Keyed by a hash of the API key, never the key.
 */
const blockedUntil = new Map<string, number>();
/** Start times of this process's calls in the last minute, per key: calls are paced under the budget instead of meeting 429s. */
const recentCalls = new Map<string, number[]>();
const WINDOW_MS = 60_000;
const keyId = (apiKey: string): string => createHash("sha256").update(apiKey).digest("hex").slice(0, 16);

interface ErrorBody {
  error_code?: string;
  status_code?: number;
  msg?: string;
}

/** One API call; ngrok's error envelope becomes an NgrokError with its code. */
export async function apiRequest<T>(apiKey: string, method: string, path: string, options: ApiOptions = {}, body?: unknown): Promise<T> {
  const url = `${options.baseUrl ?? "https://api.ngrok.com"}${path}`;
  const id = keyId(apiKey);
  const wait = (blockedUntil.get(id) ?? 0) - Date.now();
  if (wait > 0) throw new ProviderRateLimited(`waiting out ngrok's API rate limit (${Math.ceil(wait / 1000)} s left)`, wait);
  const now = Date.now();
  const calls = (recentCalls.get(id) ?? []).filter((t) => now - t < WINDOW_MS);
  if (calls.length >= (options.callsPerMinute ?? 100)) {
    recentCalls.set(id, calls);
    throw new ProviderRateLimited("pacing calls to ngrok's API under its rate limit", calls[0]! + WINDOW_MS - now + 50);
  }
  calls.push(now);
  recentCalls.set(id, calls);
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, "ngrok-version": "2", ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(options.timeoutMs ?? 20_000),
    });
  } catch (error) {
    throw new NgrokError("transport", `the ngrok API could not be reached: ${(error as Error).message}`);
  }
  if (response.ok) return (response.status === 204 ? undefined : await response.json()) as T;
  const envelope = (await response.json().catch(() => ({}))) as ErrorBody;
  // 120 requests per rolling minute per account, and no Retry-After: wait out the window.
  if (response.status === 429) {
    const waitMs = options.rateLimitedWaitMs ?? 60_000;
    blockedUntil.set(id, Date.now() + waitMs);
    throw new ProviderRateLimited(`ngrok's API rate limit: ${envelope.msg ?? "429"}`, waitMs);
  }
  throw new NgrokError("bind", `${envelope.msg ?? response.statusText} (HTTP ${response.status})`, envelope.error_code);
}

/** undefined when the key works; otherwise the provider's Ready condition saying why not. */
export async function verifyApiKey(apiKey: string, options: ApiOptions = {}): Promise<ConditionInput | undefined> {
  try {
    await apiRequest(apiKey, "GET", "/reserved_domains?limit=1", options);
    return undefined;
  } catch (error) {
    if (error instanceof ProviderRateLimited) return undefined; // the key answered: it is valid
    const e = error as NgrokError;
    const reason = e.code ? describeCode(e.code, "bind").reason : "Unreachable";
    return { type: "Ready", status: "False", reason: reason === "EndpointFailed" ? "APIKeyRejected" : reason, message: `the ngrok API refused the API key: ${e.message}` };
  }
}
