// The management API's errors: RFC 7807 problem details, the shape the SDK reads
// (`ProblemDetails {title, detail, errors}` in @microsoft/dev-tunnels-contracts; the SDK
// turns a body with `title`/`detail` into "Tunnel service error: <title> <detail>").
//
// Statuses the fake answers and why:
// - 400 validation: ASP.NET's "One or more validation errors occurred." with `errors` per
//   JSON path (the service is ASP.NET with Newtonsoft: an unknown member is "Could not find
//   member 'x' on object of type 'Tunnel'").
// - 401 no or unknown credentials; 403 known credentials without access.
// - 404 no such tunnel/port/endpoint (the SDK maps it to `false` on DELETE).
// - 409 `If-None-Match: *` on an existing tunnel or port (the SDK retries generated ids on it).
// - Limits (tunnels per user, ports per tunnel): the VS Code CLI (microsoft/vscode
//   cli/src/tunnels/dev_tunnels.rs) expects **429** with a problem `detail` naming the limit
//   ("TunnelsPerUserPerLocation") on tunnel create; the ResourceStatus doc comment says
//   limit violations are "generally a 403". The status is an option (default 429).
// - 429 rate limit: "Rate limit exceeded" (the CLI's wording, microsoft/dev-tunnels#648) with Retry-After.
import type { ProblemDetails } from "@microsoft/dev-tunnels-contracts";

export interface ProblemBody extends ProblemDetails {
  type?: string;
  status: number;
}

/** An error the API answers with; handlers throw it, the server renders the problem body. */
export class ManagementError extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string | undefined;
  readonly errors: Record<string, string[]> | undefined;
  /** The request broke the SDK's contract (recorded in `ManagementApi.violations`). */
  readonly violation: boolean;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    title: string,
    detail?: string,
    options: { errors?: Record<string, string[]>; violation?: boolean; headers?: Record<string, string> } = {},
  ) {
    super(detail ? `${title} ${detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.errors = options.errors;
    this.violation = options.violation ?? false;
    this.headers = options.headers ?? {};
  }

  body(): ProblemBody {
    return {
      type: TYPES[this.status] ?? "about:blank",
      title: this.title,
      status: this.status,
      ...(this.detail ? { detail: this.detail } : {}),
      ...(this.errors ? { errors: this.errors } : {}),
    };
  }
}

const TYPES: Record<number, string> = {
  400: "https://tools.ietf.org/html/rfc7231#section-6.5.1",
  401: "https://tools.ietf.org/html/rfc7235#section-3.1",
  403: "https://tools.ietf.org/html/rfc7231#section-6.5.3",
  404: "https://tools.ietf.org/html/rfc7231#section-6.5.4",
  409: "https://tools.ietf.org/html/rfc7231#section-6.5.8",
  429: "https://tools.ietf.org/html/rfc6585#section-4",
};

/** The limit names the service uses in problem details and `/userlimits`. */
export const LimitNames = {
  /** The VS Code CLI matches this in a 429's `detail` to recycle tunnels. */
  tunnelsPerUser: "TunnelsPerUserPerLocation",
  /** The fake's name; the service's is unknown. */
  portsPerTunnel: "PortsPerTunnel",
  /** `RateLimit-Limit: ApiQueryRatePerIPAddress:…` (microsoft/dev-tunnels#651 trace). */
  requestsPerIp: "ApiQueryRatePerIPAddress",
} as const;

const validation = (errors: Record<string, string[]>): ManagementError =>
  new ManagementError(400, "One or more validation errors occurred.", undefined, { errors, violation: true });

export const Problems = {
  validation,
  missingApiVersion: () =>
    new ManagementError(400, "Unspecified API version", "An API version is required, but was not specified.", { violation: true }),
  unsupportedApiVersion: (version: string, supported: readonly string[]) =>
    new ManagementError(400, "Unsupported API version", `The HTTP resource does not support the API version '${version}'. Supported: ${supported.join(", ")}.`, {
      violation: true,
    }),
  unknownQuery: (names: readonly string[], allowed: readonly string[]) =>
    validation(Object.fromEntries(names.map((n) => [n, [`Unknown query parameter '${n}'. Known: ${allowed.join(", ")}.`]]))),
  unparsableBody: (reason: string) => validation({ $: [reason] }),
  bodyRequired: () => validation({ $: ["A non-empty request body is required."] }),

  unauthorized: (why: string) => new ManagementError(401, "Unauthorized", why),
  forbidden: (why: string) => new ManagementError(403, "Forbidden", why),

  tunnelNotFound: (id: string) => new ManagementError(404, "Tunnel not found", `The tunnel '${id}' was not found.`),
  portNotFound: (id: string, port: number) => new ManagementError(404, "Tunnel port not found", `The tunnel '${id}' has no port ${port}.`),
  endpointNotFound: (id: string, endpointId: string) =>
    new ManagementError(404, "Tunnel endpoint not found", `The tunnel '${id}' has no endpoint '${endpointId}'.`),
  routeNotFound: (method: string, path: string) => new ManagementError(404, "Not Found", `No route for ${method} ${path}.`),

  tunnelExists: (id: string) => new ManagementError(409, "Conflict", `A tunnel with ID '${id}' already exists.`),
  tunnelNameTaken: (name: string) => new ManagementError(409, "Conflict", `The tunnel name '${name}' is already in use.`),
  portExists: (id: string, port: number) => new ManagementError(409, "Conflict", `Tunnel '${id}' already has port ${port}.`),

  protocolChange: () => new ManagementError(400, "Bad Request", "The tunnel port protocol cannot be changed."),

  limitExceeded: (status: number, limit: string, max: number, what: string) =>
    new ManagementError(status, "Resource limit exceeded", `Limit ${limit} exceeded: ${what} (maximum ${max}).`),
  rateLimited: (retryAfterSeconds: number, limit: number, windowSeconds: number) =>
    new ManagementError(429, "Rate limit exceeded", "Too many requests in a given amount of time.", {
      headers: {
        "Retry-After": String(retryAfterSeconds),
        "RateLimit-Limit": `${LimitNames.requestsPerIp}:${limit}/${windowSeconds}s`,
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": String(retryAfterSeconds),
      },
    }),

  serverError: (status: number) =>
    new ManagementError(status, status === 503 ? "Service Unavailable" : "Internal Server Error", "An injected fault."),
  injectedRateLimit: () =>
    new ManagementError(429, "Rate limit exceeded", "Too many requests in a given amount of time.", { headers: { "Retry-After": "1" } }),
} as const;
