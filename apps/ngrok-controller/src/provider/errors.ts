// ngrok's errors, from the SDK's messages to condition reasons. The SDK puts the code only
// in the message (`… error_code: ERR_NGROK_334`), and sets `errorCode` only for connect()
// and listen(), so the code is always parsed from the message.
// Codes and their meanings: ngrok-docs errors/, summarised in shared/research/ngrok.md §2.3.

export type NgrokErrorKind = "auth" | "transport" | "bind" | "timeout" | "closed";

export class NgrokError extends Error {
  readonly code: string | undefined;
  readonly kind: NgrokErrorKind;

  constructor(kind: NgrokErrorKind, message: string, code?: string) {
    super(message);
    this.name = "NgrokError";
    this.kind = kind;
    this.code = code;
  }

  /** The condition reason this error maps to. */
  get reason(): string {
    return describeCode(this.code, this.kind).reason;
  }

  /** Whether trying again later can succeed without a person changing something. */
  get retryable(): boolean {
    return describeCode(this.code, this.kind).retry !== "never";
  }
}

/** The `ERR_NGROK_n` code at the end of an SDK or wire message, if any. */
export function parseErrorCode(message: string): string | undefined {
  return /(ERR_NGROK_\d+)\s*$/.exec(message.trim())?.[1];
}

/** The message without the trailing `error_code: …` and the SDK's context prefix noise. */
export function cleanMessage(message: string): string {
  return message
    .replace(/\s*error_code:\s*ERR_NGROK_\d+\s*$/, "")
    .replace(/\s+/g, " ")
    .trim();
}

/** An SDK error (a plain Error with the code in its message) as a typed NgrokError. */
export function fromSdkError(error: unknown, kind: NgrokErrorKind): NgrokError {
  if (error instanceof NgrokError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = parseErrorCode(message);
  // Without a code, a failed connect is the network's fault (no TCP, no TLS), not the token's.
  const effective: NgrokErrorKind = !code && kind === "auth" ? "transport" : kind;
  return new NgrokError(effective, cleanMessage(message), code);
}

export type Retry = "never" | "slow" | "backoff";

interface CodeClass {
  reason: string;
  retry: Retry;
}

/** Codes by the condition reason they map to (ngrok-docs errors/ and research §2.3). */
const CLASSES: Array<[reason: string, retry: Retry, codes: number[]]> = [
  // Agent session.
  ["InvalidCredentials", "never", [105, 106, 107, 4018]],
  ["SessionLimitExceeded", "backoff", [108, 348]],
  ["RateLimited", "backoff", [349, 1214, 351, 353, 225, 226, 432, 509]],
  ["AccountSuspended", "never", [102, 103, 337, 338]],
  ["AgentVersionUnsupported", "never", [120, 121]],
  ["AccountNotVerified", "slow", [123, 382]],
  ["InvalidConfiguration", "never", [122]],
  // Endpoint bind.
  ["EndpointConflict", "backoff", [334]],
  ["PoolingConflict", "slow", [6030, 18016, 18017]],
  ["PoolingUnavailable", "never", [18019]],
  ["PoolLimitExceeded", "slow", [18020]],
  ["EndpointLimitExceeded", "slow", [18021, 324, 350, 352]],
  ["DomainNotReserved", "slow", [319, 318, 354]],
  ["PlanLimit", "never", [313, 314, 315, 312, 310, 401, 415, 431, 502, 508]],
  ["HostnameTaken", "never", [320, 309, 414, 430]],
  ["AddressNotReserved", "never", [307]],
  ["RegionMismatch", "never", [311, 317, 322]],
  ["CredentialNotAuthorized", "never", [308, 316, 356]],
  ["InvalidHostname", "never", [326, 327, 328, 329, 330, 331, 347, 355, 9037]],
  ["InvalidTrafficPolicy", "never", [2200, 2201, 2202]],
  ["EndpointStopped", "backoff", [3200]],
  // REST API.
  ["InvalidAPIKey", "never", [200, 201, 202, 203, 204, 205, 206, 207, 208]],
  ["AlreadyReserved", "never", [413]],
  ["StillInUse", "backoff", [446, 511]],
  ["RegionUnavailable", "slow", [503]],
];

const BY_CODE = new Map<string, CodeClass>(CLASSES.flatMap(([reason, retry, codes]) => codes.map((n) => [`ERR_NGROK_${n}`, { reason, retry }] as const)));

const BY_KIND: Record<NgrokErrorKind, CodeClass> = {
  auth: { reason: "ConnectFailed", retry: "backoff" },
  transport: { reason: "Unreachable", retry: "backoff" },
  timeout: { reason: "Timeout", retry: "backoff" },
  bind: { reason: "EndpointFailed", retry: "backoff" },
  closed: { reason: "SessionClosed", retry: "backoff" },
};

/** The reason and retry class of a code; codes not listed fall back to the kind of failure. */
export function describeCode(code: string | undefined, kind: NgrokErrorKind): CodeClass {
  return (code && BY_CODE.get(code)) || BY_KIND[kind];
}

/** How long to wait before the next try of a failure of this class, after `attempt` failures. */
export function retryDelayMs(retry: Retry, attempt: number, random: () => number = Math.random): number | undefined {
  if (retry === "never") return undefined;
  const [base, cap] = retry === "slow" ? [60_000, 10 * 60_000] : [1_000, 60_000];
  const delay = Math.min(cap, base * 2 ** Math.min(attempt, 16));
  // Full jitter on the upper half, so replicas that failed together do not retry together.
  return Math.round(delay / 2 + (random() * delay) / 2);
}
