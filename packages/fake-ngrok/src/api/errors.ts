// ngrok's REST API errors: the envelope and the codes the fake answers with.
//
// The envelope is documented (ngrok-docs api/index.mdx, "Errors"):
//   {"error_code":"ERR_NGROK_218","status_code":400,"msg":"…","details":{"operation_id":"op_…"}}
// The messages are the templates of ngrok-docs errors/err_ngrok_NNN.mdx with the
// placeholders filled in. The HTTP status of each code is not documented except for 226
// (429); the rest are this fake's reading (400 for a bad request, 401 for credentials).

/** An error the API answers with; handlers throw it, the server turns it into the envelope. */
export class NgrokApiError extends Error {
  readonly status: number;
  /** `ERR_NGROK_nnn`, or undefined where the fake does not know ngrok's code (see NOT_FOUND). */
  readonly code: string | undefined;
  /**
   * The request broke the API's contract (the document, or a documented parameter rule
   * such as `limit` ≤ 100), as opposed to asking for something the account's state
   * refuses. The server records these in `schemaViolations`.
   */
  readonly schemaViolation: boolean;

  constructor(status: number, code: string | undefined, message: string, options: { schemaViolation?: boolean } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.schemaViolation = options.schemaViolation ?? false;
  }
}

/** The body ngrok sends with an error. `error_code` is left out where there is none. */
export interface ErrorEnvelope {
  error_code?: string;
  status_code: number;
  msg: string;
  details: { operation_id: string };
}

export function errorEnvelope(error: NgrokApiError, operationId: string): ErrorEnvelope {
  return {
    ...(error.code ? { error_code: error.code } : {}),
    status_code: error.status,
    msg: error.message,
    details: { operation_id: operationId },
  };
}

/** A 400 for a request that breaks the API's contract (recorded as a schema violation). */
const violation = (code: string, message: string): NgrokApiError => new NgrokApiError(400, code, message, { schemaViolation: true });

const API_KEYS_HINT = "API keys and instructions are available on your dashboard: https://dashboard.ngrok.com/api-keys";
const DOCS_HINT = "Check your API client implementation and review the API documentation: https://ngrok.com/docs/api-reference/.";

/** The codes the fake answers with, each a function of what its message names. */
export const ApiErrors = {
  // --- credentials (401) -------------------------------------------------------------
  /** No Authorization header. */
  missingAuthorization: () =>
    new NgrokApiError(401, "ERR_NGROK_200", "The ngrok API requires that you set the Authorization header for authentication. Your API keys and instructions are available on your dashboard: https://dashboard.ngrok.com/api-keys"),
  /** An Authorization header that is neither `Bearer …` nor `Basic …`. */
  unparsableAuthorization: (header: string) =>
    new NgrokApiError(401, "ERR_NGROK_201", `The ngrok API requires that you use Basic or Bearer authentication via the Authorization header. It could not parse the header in this request. Authorization Header: ${header}. ${API_KEYS_HINT}`),
  /** A bearer value that does not have an API key's shape (FIRSTPART_SECONDPART). */
  malformedKey: (key: string) =>
    new NgrokApiError(401, "ERR_NGROK_202", `The API authentication you specified does not look like a valid credential. Your credential: ${key}. ${API_KEYS_HINT}`),
  /** A well-formed API key that is not one of the account's. */
  invalidKey: (key: string) =>
    new NgrokApiError(401, "ERR_NGROK_203", `The API authentication you specified is properly formed, but it is invalid. Your authentication: ${key}. ${API_KEYS_HINT}`),
  /** An agent authtoken presented as an API key. */
  authtokenAsKey: (key: string) =>
    new NgrokApiError(401, "ERR_NGROK_207", `The authentication you specified is actually an authtoken, not an API key token. Your key: ${key}. Check your records for an API key with the form FIRSTPART_SECONDPART. ${API_KEYS_HINT}`),

  // --- request shape (400) -----------------------------------------------------------
  unsupportedVersion: (version: string) =>
    violation("ERR_NGROK_217", `The provided API version ${version} is invalid or unsupported. Supported versions: 2. Check your API client implementation.`),
  missingVersion: () =>
    violation("ERR_NGROK_218", "Your request has not specified an API version. Include the version you wish to use in the Ngrok-Version header. Supported versions: 2."),
  unsupportedContentType: (contentType: string) =>
    violation("ERR_NGROK_210", `The content type you specified ${contentType} is not supported by the API. Check your API client implementation and see the list of supported content types: https://ngrok.com/docs/api#content-types`),
  bodyNotExpected: (method: string) =>
    violation("ERR_NGROK_211", `The ${method} request you made does not expect a body, but you provided one. ${DOCS_HINT}`),
  unparsableBody: (contentType: string) =>
    violation("ERR_NGROK_213", `The ${contentType} request body could not be parsed. ${DOCS_HINT}`),
  unknownField: (name: string, supported: readonly string[]) =>
    violation("ERR_NGROK_214", `The request parameter ${name} is unknown and not expected. The supported fields are: ${supported.join(", ")}. ${DOCS_HINT}`),
  invalidValue: (name: string) =>
    new NgrokApiError(400, "ERR_NGROK_215", `The value provided for the request parameter ${name} is invalid. Check your request and review the API documentation: https://ngrok.com/docs/api#service-api.`),
  /** ERR_NGROK_215 for a parameter the document or the API docs constrain (a schema violation). */
  invalidParameter: (name: string) =>
    new NgrokApiError(400, "ERR_NGROK_215", `The value provided for the request parameter ${name} is invalid. Check your request and review the API documentation: https://ngrok.com/docs/api#service-api.`, { schemaViolation: true }),
  missingContentType: () =>
    violation("ERR_NGROK_216", "You did not provide a Content-Type with your request. Check your API client implementation and use one of the supported content types: https://ngrok.com/docs/api#content-types"),
  unknownQueryParameters: (unknown: readonly string[], supported: readonly string[]) =>
    violation("ERR_NGROK_231", `The query part of the requested URI includes unknown parameters: ${unknown.join(", ")}. The supported parameters are: ${supported.join(", ")}. ${DOCS_HINT}`),

  // --- limits ------------------------------------------------------------------------
  rateLimited: (max: number) => new NgrokApiError(429, "ERR_NGROK_226", `Your account is rate limited to ${max} API requests per minute.`),

  // --- resources ---------------------------------------------------------------------
  /**
   * A resource (or a path) that does not exist. ngrok's clients recognise it by the 404
   * status (ngrok-api-go `IsNotFound`, the Python client's `NotFoundError`); the docs name
   * no error code for it, so the envelope carries none.
   */
  notFound: () => new NgrokApiError(404, undefined, "Resource not found"),
  ngrokComName: (domain: string) =>
    new NgrokApiError(400, "ERR_NGROK_404", `You may not reserve names on ngrok.com. Use an ngrok.io suffix. Failed to reserve ${domain}.`),
  domainReservedByYou: (domain: string) =>
    new NgrokApiError(400, "ERR_NGROK_413", `This domain is already reserved for your account. Failed to reserve ${domain}.`),
  domainReservedByOther: (domain: string) =>
    new NgrokApiError(400, "ERR_NGROK_414", `This domain is already reserved for another account. Failed to reserve ${domain}.`),
  metadataTooLong: (max: number, length: number) =>
    new NgrokApiError(400, "ERR_NGROK_421", `Metadata is limited to ${max} characters; you have entered ${length} characters.`),
  domainInUse: (domain: string) =>
    new NgrokApiError(400, "ERR_NGROK_446", `The domain ${domain} could not be deleted because it is still referenced by an edge or cloud endpoint.`),

  // --- the fake's own ----------------------------------------------------------------
  /** An operation (or an option of one) the spec has and the fake does not implement. */
  notImplemented: (what: string) => new NgrokApiError(501, undefined, `the fake ngrok API does not implement ${what}`),
  /** An injected server fault. */
  serverError: (status: number) => new NgrokApiError(status, undefined, "An internal server error occurred. Please try again."),
} as const;
