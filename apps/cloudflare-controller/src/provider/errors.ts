// Cloudflare failures as typed provider errors: each carries the condition reason the
// kit writes on the object being reconciled. Which reason depends on the answer and,
// for some, on the endpoint: a token without Access rights must be tellable apart from
// a bad token, and a refused ingress document is a fault of the document, not of the call.
import { ProviderError, type ProviderErrorOptions } from "@ktube/provider-kit";

/** The condition reasons a Cloudflare call can fail with (besides the kit's RateLimited). */
export type CloudflareReason =
  /** 401/403: the token is wrong, expired or lacks a permission. */
  | "AuthenticationFailed"
  /** 401/403 on an Access endpoint: the token has no Access rights (Tunnel and DNS may still work). */
  | "AccessNotPermitted"
  /** Another record already holds the name (81053/81054/81055): an A record in the way of our CNAME. */
  | "DNSRecordConflict"
  /** Cloudflare refused the tunnel's ingress document (4xx on the configuration PUT): terminal. */
  | "ConfigRejected"
  /** Any other 4xx. */
  | "CloudflareAPIError"
  /** 5xx: Cloudflare's side; retried with backoff. */
  | "CloudflareUnavailable"
  /** No answer: connection refused, reset or timed out. */
  | "CloudflareUnreachable";

/** A Cloudflare failure, with the condition reason it maps to and Cloudflare's status and error code. */
export class CloudflareError extends ProviderError {
  override name = "CloudflareError";
  declare readonly reason: CloudflareReason;
  declare readonly code: number | undefined;

  constructor(reason: CloudflareReason, message: string, options: ProviderErrorOptions & { code?: number } = {}) {
    super(reason, message, options);
  }
}

/** Cloudflare's codes for "a record with that host already exists" (A/AAAA/CNAME clashes). */
export const DNS_NAME_CLASH_CODES: ReadonlySet<number> = new Set([81053, 81054, 81055]);

/**
 * Operation names (also the `operation` label of the request metric) follow
 * `<area>.<resource>.<verb>`. Access operations start with `access.`; the tunnel's
 * ingress document is written by this one.
 */
export const CONFIG_PUT_OPERATION = "tunnels.configurations.update";
const isAccessOperation = (operation: string): boolean => operation.startsWith("access.");

/** What a failed answer said: its HTTP status and Cloudflare's first error. */
export interface FailedAnswer {
  operation: string;
  status: number;
  code?: number;
  message: string;
}

/** The typed error for an answered, failed call that is not a 429 (that one is the budget's). */
export function cloudflareError({ operation, status, code, message }: FailedAnswer): CloudflareError {
  const options = { status, ...(code !== undefined ? { code } : {}) };
  if (status === 401 || status === 403) {
    return new CloudflareError(isAccessOperation(operation) ? "AccessNotPermitted" : "AuthenticationFailed", message, options);
  }
  if (status >= 500) return new CloudflareError("CloudflareUnavailable", message, options);
  if (code !== undefined && DNS_NAME_CLASH_CODES.has(code)) return new CloudflareError("DNSRecordConflict", message, options);
  // A 404 on the PUT is a missing tunnel, not a refused document.
  if (operation === CONFIG_PUT_OPERATION && status >= 400 && status !== 404) {
    return new CloudflareError("ConfigRejected", message, { ...options, terminal: true });
  }
  return new CloudflareError("CloudflareAPIError", message, options);
}

/** The typed error for a call that got no answer. */
export function unreachableError(operation: string, cause: string): CloudflareError {
  return new CloudflareError("CloudflareUnreachable", `Cloudflare ${operation}: ${cause}`);
}

/** True for the failures that say the credentials lack a right (retrying with the same token will not help). */
export const isPermissionError = (error: unknown): boolean =>
  error instanceof CloudflareError && (error.reason === "AuthenticationFailed" || error.reason === "AccessNotPermitted");
