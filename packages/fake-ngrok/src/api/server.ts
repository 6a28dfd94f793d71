// An HTTP server that behaves like api.ngrok.com for the operations a tunnel controller
// uses, on the account the agent side shares. Every request goes through the same
// pipeline, in this order:
//   1. the route: method + path template from ngrok's OpenAPI document (none → 404)
//   2. the `ngrok-version` header (must be 2: ERR_NGROK_218 / 217)
//   3. the API key (`Authorization: Bearer …` in `account.apiKeys`: ERR_NGROK_200-207, 401)
//   4. the rate limit (`account.limits.apiRequestsPerMinute` per rolling 60 s: 429, ERR_NGROK_226)
//   5. query parameters and body against the operation's schemas (400, ERR_NGROK_21x/231)
//   6. the operation, if the fake implements it (else 501, recorded in `unimplemented`)
// with injected latency and faults around it. Requests that break the document's contract
// are recorded in `schemaViolations`; the answers themselves are checked against the
// document too and any mismatch (a bug in the fake) lands in `responseViolations`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { type AddressInfo, createServer as createTcpServer } from "node:net";
import { performance } from "node:perf_hooks";
import type { Account } from "../account.ts";
import { ApiErrors, errorEnvelope, NgrokApiError } from "./errors.ts";
import { type ApiRequestRecord, type FaultKind, Faults, type FaultSpec, keyFingerprint, type OperationMatcher } from "./faults.ts";
import { CreationOrder } from "./pagination.ts";
import { RollingWindow } from "./rate-limit.ts";
import type { ApiState, CertPolicy, Handler } from "./resources/context.ts";
import { endpointHandlers } from "./resources/endpoints.ts";
import { reservedAddrHandlers } from "./resources/reserved-addrs.ts";
import { reservedDomainHandlers } from "./resources/reserved-domains.ts";
import { tunnelSessionHandlers } from "./resources/tunnel-sessions.ts";
import { NgrokOpenApi, type SpecOperation } from "./spec.ts";

export interface NgrokApiOptions {
  /** Added before every answer, in ms. Default 0. */
  latencyMs?: number;
  /** The clock of the rate limit and the request log, in ms. Default `performance.now()`. Tests pass their own to move time. */
  now?: () => number;
  /** Allocates `host:port` for a new reserved TCP address. Default `allocateLoopbackTcpAddr`. */
  allocateTcpAddr?: () => Promise<string>;
  /** Domains reserved by "another account" (ERR_NGROK_414); more can be added to `takenDomains` later. */
  takenDomains?: Iterable<string>;
  /** Check every answer against the document's response schema (into `responseViolations`). Default true. */
  checkResponses?: boolean;
  /** Where ngrok's OpenAPI document is; default shared/specs/ngrok-openapi.yaml beside the repository, or $KTUBE_NGROK_SPEC. */
  specPath?: string;
}

/** A request that broke the document's contract, and how the fake answered it. */
export interface SchemaViolation {
  method: string;
  path: string;
  /** The operationId, or `METHOD path` where the document has no such route. */
  operation: string;
  /** The code answered (absent for an unknown route, answered 404 without one). */
  errorCode?: string;
  violations: string[];
}

/** A call to an operation the document has and the fake does not implement (answered 501). */
export interface UnimplementedCall {
  method: string;
  path: string;
  operation: string;
  /** What is missing: the operation, or an option of an implemented one (`certificate_id`...). */
  what: string;
}

/** An answer of the fake that does not match the document (a bug in the fake). */
export interface ResponseViolation {
  operation: string;
  status: number;
  problems: string[];
}

const HANDLERS: ReadonlyMap<string, Handler> = new Map(
  Object.entries({ ...reservedDomainHandlers, ...reservedAddrHandlers, ...endpointHandlers, ...tunnelSessionHandlers }),
);

/** The operationIds the fake implements. */
export const IMPLEMENTED_OPERATIONS: readonly string[] = [...HANDLERS.keys()];

/** How a request ends. */
interface Outcome {
  operation: string;
  status: number;
  body?: unknown;
  errorCode?: string;
  fault?: FaultKind;
  /** Never answer (a `timeout` fault). */
  hang?: boolean;
}

/**
 * The default TCP address allocator: a free loopback port, found by listening on port 0
 * and closing again, as `localhost:PORT`.
 */
export async function allocateLoopbackTcpAddr(): Promise<string> {
  const server = createTcpServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `localhost:${port}`;
}

/**
 * The fake api.ngrok.com. `new NgrokApi(account, options)`, `await start()` for its base
 * URL (http://127.0.0.1:PORT, what a client uses in place of https://api.ngrok.com),
 * `close()` when done.
 */
export class NgrokApi {
  /** Every request received, in arrival order. */
  readonly requests: ApiRequestRecord[] = [];
  /** Requests that broke the document's contract (tests assert this stays empty). */
  readonly schemaViolations: SchemaViolation[] = [];
  /** Calls to operations (or options) the fake does not implement. */
  readonly unimplemented: UnimplementedCall[] = [];
  /** Answers that did not match the document's response schemas. */
  readonly responseViolations: ResponseViolation[] = [];
  /** Domains reserved by "another account": reserving one is ERR_NGROK_414. */
  readonly takenDomains: Set<string>;

  private readonly spec: NgrokOpenApi;
  private readonly state: ApiState;
  private readonly window = new RollingWindow();
  private readonly faults = new Faults();
  private readonly hanging = new Set<ServerResponse>();
  private readonly now: () => number;
  private readonly checkResponses: boolean;
  private latencyMs: number;
  private server?: Server;
  /** The account served (shared with the agent side). */
  readonly account: Account;

  constructor(account: Account, options: NgrokApiOptions = {}) {
    this.account = account;
    this.spec = NgrokOpenApi.load(options.specPath);
    this.now = options.now ?? (() => performance.now());
    this.latencyMs = options.latencyMs ?? 0;
    this.checkResponses = options.checkResponses ?? true;
    this.takenDomains = new Set([...(options.takenDomains ?? [])].map((d) => d.toLowerCase()));
    this.state = {
      takenDomains: this.takenDomains,
      order: {
        reservedDomains: new CreationOrder(),
        reservedAddrs: new CreationOrder(),
        endpoints: new CreationOrder(),
        tunnelSessions: new CreationOrder(),
      },
      certPolicies: new Map<string, CertPolicy | null>(),
      allocateTcpAddr: options.allocateTcpAddr ?? allocateLoopbackTcpAddr,
    };
  }

  /** Changes the latency of later requests. */
  configure(options: { latencyMs?: number }): void {
    if (options.latencyMs !== undefined) this.latencyMs = options.latencyMs;
  }

  /**
   * The next `spec.count` (default 1) requests for `operation` (an operationId, or `*`)
   * that pass validation, authentication and the rate limit fail: with a 5xx, or by never
   * being answered; before or after taking effect (see FaultSpec).
   */
  injectFault(operation: OperationMatcher, spec: FaultSpec = {}): void {
    this.faults.inject(operation, spec);
  }

  /** Faults still armed. */
  pendingFaults(): Array<{ operation: string; remaining: number }> {
    return this.faults.pending();
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** Requests received, counted by operation (or only those `filter` keeps). */
  callsByOperation(filter: (r: ApiRequestRecord) => boolean = () => true): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const r of this.requests.filter(filter)) counts[r.operation] = (counts[r.operation] ?? 0) + 1;
    return counts;
  }

  /** Forgets the rate limit's window (e.g. after a test used the budget up). */
  resetRateLimit(): void {
    this.window.reset();
  }

  /** Requests the rate limit holds against the account right now. */
  requestsInWindow(): number {
    return this.window.inWindow(this.now());
  }

  /** Listens on 127.0.0.1 (`port` 0: any free port); resolves with the base URL. */
  async start(port = 0): Promise<string> {
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", resolve);
    });
    return this.baseUrl;
  }

  /** http://127.0.0.1:PORT, what a client uses in place of https://api.ngrok.com. */
  get baseUrl(): string {
    const address = this.server?.address() as AddressInfo | null | undefined;
    return `http://127.0.0.1:${address?.port ?? 0}`;
  }

  /** Stops serving; open connections, unanswered ones included, are closed. */
  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    this.server = undefined;
  }

  // --- the pipeline ----------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on("error", () => undefined);
    const at = this.now();
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", "http://fake");
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const bearer = bearerOf(req.headers.authorization);
    let raw: string;
    try {
      raw = await readBody(req);
    } catch {
      return; // the client went away before its request arrived whole
    }
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    const operationId = this.account.newId("op");
    let outcome: Outcome;
    try {
      outcome = await this.process(req, method, path, url.searchParams, raw);
    } catch (error) {
      outcome = { operation: `${method} ${path}`, status: 500, body: errorEnvelope(new NgrokApiError(500, undefined, String(error)), operationId) };
    }
    if (outcome.body instanceof NgrokApiError) {
      const error = outcome.body;
      outcome = { ...outcome, status: error.status, body: errorEnvelope(error, operationId), ...(error.code ? { errorCode: error.code } : {}) };
    }
    this.requests.push({
      at,
      method,
      path,
      operation: outcome.operation,
      status: outcome.hang ? 0 : outcome.status,
      ...(outcome.errorCode ? { errorCode: outcome.errorCode } : {}),
      ...(outcome.fault ? { fault: outcome.fault } : {}),
      ...(bearer ? { apiKey: keyFingerprint(bearer) } : {}),
    });
    if (outcome.hang) {
      this.hanging.add(res);
      res.on("close", () => this.hanging.delete(res));
      return;
    }
    if (res.destroyed) return;
    if (outcome.body === undefined) {
      res.writeHead(outcome.status);
      res.end();
      return;
    }
    res.writeHead(outcome.status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(outcome.body));
  }

  /** What to answer: a success body, or an NgrokApiError in `body` for the envelope. */
  private async process(req: IncomingMessage, method: string, path: string, query: URLSearchParams, raw: string): Promise<Outcome> {
    const match = this.spec.match(method, path);
    if (!match) {
      const operation = `${method} ${path}`;
      this.schemaViolations.push({ method, path, operation, violations: [`ngrok's OpenAPI document has no operation ${method} ${path}`] });
      return { operation, status: 404, body: ApiErrors.notFound() };
    }
    const { operation: op, params } = match;
    const refuse = (error: NgrokApiError): Outcome => {
      if (error.schemaViolation) this.recordViolations(method, path, op, [error]);
      return { operation: op.id, status: error.status, body: error };
    };

    const versionError = this.spec.checkVersion(header(req, "ngrok-version"));
    if (versionError) return refuse(versionError);
    const authError = this.authenticate(req.headers.authorization);
    if (authError) return refuse(authError);
    const limit = this.account.limits.apiRequestsPerMinute;
    if (!this.window.tryAdmit(this.now(), limit)) return refuse(ApiErrors.rateLimited(limit));

    const queryErrors = this.spec.checkQuery(op, query);
    const checked = this.spec.checkBody(op, header(req, "content-type"), raw);
    const shapeErrors = [...queryErrors, ...("errors" in checked ? checked.errors : [])];
    if (shapeErrors.length > 0) {
      this.recordViolations(method, path, op, shapeErrors);
      return { operation: op.id, status: 400, body: shapeErrors[0] };
    }
    const body = "body" in checked ? checked.body : {};

    const handler = HANDLERS.get(op.id);
    if (!handler) {
      this.unimplemented.push({ method, path, operation: op.id, what: op.id });
      return { operation: op.id, status: 501, body: ApiErrors.notImplemented(op.id) };
    }

    const fault = this.faults.take(op.id);
    const faulted = (): Outcome =>
      fault!.kind === "timeout"
        ? { operation: op.id, status: 0, hang: true, fault: "timeout" }
        : { operation: op.id, status: fault!.status, body: ApiErrors.serverError(fault!.status), fault: "5xx" };
    if (fault?.when === "before") return faulted();

    let answer: unknown;
    try {
      answer = await handler({ account: this.account, state: this.state, params, query, body, baseUrl: this.baseUrl, path });
    } catch (error) {
      if (!(error instanceof NgrokApiError)) throw error;
      if (error.status === 501) this.unimplemented.push({ method, path, operation: op.id, what: error.message.replace(/^the fake ngrok API does not implement /, "") });
      return refuse(error);
    }
    if (fault) return faulted();

    if (this.checkResponses) {
      const problems = this.spec.checkResponse(op, op.successStatus, answer);
      if (problems.length > 0) this.responseViolations.push({ operation: op.id, status: op.successStatus, problems });
    }
    return { operation: op.id, status: op.successStatus, ...(answer === undefined ? {} : { body: answer }) };
  }

  private recordViolations(method: string, path: string, op: SpecOperation, errors: NgrokApiError[]): void {
    this.schemaViolations.push({
      method,
      path,
      operation: op.id,
      ...(errors[0]!.code ? { errorCode: errors[0]!.code } : {}),
      violations: errors.map((e) => `${e.code ?? e.status}: ${e.message}`),
    });
  }

  /** The API key check: undefined when the key is one of the account's. */
  private authenticate(authorization: string | undefined): NgrokApiError | undefined {
    if (authorization === undefined || authorization.trim() === "") return ApiErrors.missingAuthorization();
    const key = bearerOf(authorization);
    if (key === undefined) return ApiErrors.unparsableAuthorization(authorization);
    if (this.account.apiKeys.has(key)) return undefined;
    if (this.account.authtokens.has(key)) return ApiErrors.authtokenAsKey(key);
    // ngrok API keys have the form FIRSTPART_SECONDPART.
    if (/^[A-Za-z0-9]+_[A-Za-z0-9]+$/.test(key)) return ApiErrors.invalidKey(key);
    return ApiErrors.malformedKey(key);
  }
}

/** The key in `Bearer KEY` (or the user of `Basic base64(user:password)`), if the header parses. */
function bearerOf(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization);
  if (!basic) return undefined;
  const [user, password] = Buffer.from(basic[1]!, "base64").toString("utf8").split(":");
  return user || password || undefined;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (data += chunk));
    req.on("end", () => resolve(data));
    req.on("error", reject);
    req.on("aborted", () => reject(new Error("aborted")));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
