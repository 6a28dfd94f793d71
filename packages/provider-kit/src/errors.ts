// Typed provider failures. Every provider's API client throws these, so the kit can
// turn any of them into a condition reason and an Event on the object concerned
// instead of a log line (DESIGN §Rules: "every typed provider error maps to a
// condition reason").

export interface ProviderErrorOptions {
  /** Retrying cannot help (bad input, a refused plan): recorded, retried only on the next change or resync. */
  terminal?: boolean;
  /** Retry no sooner than this (a provider's Retry-After). */
  retryAfterMs?: number;
  /** HTTP status or the provider's own error code, for logs and metrics. */
  status?: number;
  code?: number | string;
}

/** A provider failure whose `reason` is the condition reason it maps to (UpperCamelCase). */
export class ProviderError extends Error {
  override name = "ProviderError";
  readonly reason: string;
  readonly terminal: boolean;
  readonly retryAfterMs: number | undefined;
  readonly status: number | undefined;
  readonly code: number | string | undefined;

  constructor(reason: string, message: string, options: ProviderErrorOptions = {}) {
    super(message);
    this.reason = reason;
    this.terminal = options.terminal ?? false;
    this.retryAfterMs = options.retryAfterMs;
    this.status = options.status;
    this.code = options.code;
  }
}

/**
 * The provider asked us to slow down (HTTP 429 or a spent call budget). Not a fault of
 * the object: the kit requeues after `retryAfterMs` without touching its conditions.
 */
export class ProviderRateLimited extends ProviderError {
  override name = "ProviderRateLimited";

  constructor(message: string, retryAfterMs: number) {
    super("RateLimited", message, { retryAfterMs });
  }
}

/** A Kubernetes object the controller would create already exists and is not its own. */
export class NameInUseError extends ProviderError {
  override name = "NameInUseError";

  constructor(message: string) {
    super("NameInUse", message, { terminal: true });
  }
}
