// An HTTP server that behaves like the Dev Tunnels management API
// (`<cluster>.rel.tunnels.api.visualstudio.com`) for the real TunnelManagementHttpClient,
// on the shared in-memory service. Every request goes through the same pipeline:
//   1. the route (unknown → 404, recorded in `unknownRoutes`)
//   2. the per-client-IP rate limit (`limits.requestsPerWindow` per `limits.windowMs`: 429 + Retry-After)
//   3. `api-version` and the query parameters the route takes (400)
//   4. the caller (`Authorization`: 401 unknown credentials; anonymous only where the SDK is)
//   5. the JSON body against the SDK's contract types (unknown fields, types, constraints: 400)
//   6. injected faults (`before`), the operation, injected faults (`after`)
// with injected latency first. Refusals in 3 and 5, and handler refusals of malformed
// input, are contract violations, kept in `violations` (tests assert none for SDK requests).
//
// Address it as `http://localhost:PORT/` with tunnels in cluster "localhost": the SDK
// leaves a `localhost` host name alone when it builds cluster URLs
// (`replaceTunnelServiceHostnameClusterId`), where `127.0.0.1` would become `localhost.127.0.0.1`.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { DevTunnelsService } from "../service.ts";
import { identify, type Caller } from "./auth.ts";
import { TunnelEndpointSchema, TunnelPortSchema, TunnelSchema, validateObject } from "./contract-schema.ts";
import { Faults, RollingWindows, type ContractViolation, type FaultKind, type FaultSpec, type ManagementRequestRecord, type OperationMatcher } from "./faults.ts";
import { runOperation, type Answer, type HandlerConfig } from "./handlers.ts";
import { ManagementError, Problems } from "./problems.ts";
import { matchRoute, parseQuery, type RouteMatch } from "./routes.ts";

export interface ManagementApiOptions {
  /** The relay's host websocket URI for a tunnel (`hostRelayUri`), supplied by the relay side. */
  relayUri: (tunnelId: string) => string;
  /** The relay's client websocket URI (`clientRelayUri`). Default: `relayUri` with `/Host/` → `/Client/` (the service's shape). */
  clientRelayUri?: (tunnelId: string) => string;
  /**
   * A port's web-forwarding URI (`portForwardingUris[0]`); called with `"{port}"` for an
   * endpoint's `portUriFormat`. Default `https://<tunnelId>-<port>.<clusterId>.devtunnels.ms/`.
   */
  webForwardingBase?: (tunnelId: string, port: number | string) => string;
  /** Added before every answer, in ms. Default 0. */
  latencyMs?: number;
  /** The clock of the rate limit and the request log, in ms. Default the service's clock. */
  now?: () => number;
  /**
   * The status of a tunnels-per-user or ports-per-tunnel refusal. Default 429: what the
   * VS Code CLI handles for the tunnel limit (see problems.ts); 403 is what the contracts'
   * ResourceStatus doc comment suggests.
   */
  limitExceededStatus?: 403 | 429;
  /**
   * Caps the effective lifetime (`expiration`) below what `customExpiration` asks for, as
   * the service was seen to (microsoft/dev-tunnels#651: 30 days asked, ~4 days given). Default: no cap.
   */
  expirationClampMs?: number;
}

/** A request to a route the fake does not know. */
export interface UnknownRoute {
  method: string;
  path: string;
}

interface Outcome {
  operation: string;
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  caller?: Caller;
  fault?: FaultKind;
  hang?: boolean;
}

/**
 * The fake Dev Tunnels management API. `new ManagementApi(service, { relayUri })`,
 * `await start()` for its base URL (`http://localhost:PORT`, the SDK's `tunnelServiceUri`
 * with a trailing `/`), `close()` when done.
 */
export class ManagementApi {
  readonly service: DevTunnelsService;
  /** Every request received, in arrival order. */
  readonly requests: ManagementRequestRecord[] = [];
  /** Requests refused for breaking the SDK's contract. */
  readonly violations: ContractViolation[] = [];
  /** Requests to routes the fake does not serve (answered 404). */
  readonly unknownRoutes: UnknownRoute[] = [];

  private readonly windows = new RollingWindows();
  private readonly faults = new Faults();
  private readonly hanging = new Set<ServerResponse>();
  private readonly now: () => number;
  private readonly config: HandlerConfig;
  private latencyMs: number;
  private server?: Server;

  constructor(service: DevTunnelsService, options: ManagementApiOptions) {
    this.service = service;
    this.now = options.now ?? service.now;
    this.latencyMs = options.latencyMs ?? 0;
    const clusterId = service.clusterId;
    this.config = {
      service,
      baseUrl: () => this.baseUrl,
      relayUri: options.relayUri,
      clientRelayUri: options.clientRelayUri ?? ((id) => options.relayUri(id).replace("/Host/", "/Client/")),
      webForwardingBase: options.webForwardingBase ?? ((id, port) => `https://${id}-${port}.${clusterId}.devtunnels.ms/`),
      limitExceededStatus: options.limitExceededStatus ?? 429,
      expirationClampMs: options.expirationClampMs,
    };
  }

  /** Changes the latency of later requests. */
  configure(options: { latencyMs?: number }): void {
    if (options.latencyMs !== undefined) this.latencyMs = options.latencyMs;
  }

  /**
   * The next `spec.count` (default 1) requests for `operation` (an SDK method name such as
   * `createTunnel`, or `*`) that pass the rate limit, auth and validation fail: 5xx, 429, or never answered.
   */
  injectFault(operation: OperationMatcher, spec: FaultSpec = {}): void {
    this.faults.inject(operation, spec);
  }

  pendingFaults(): Array<{ operation: string; remaining: number }> {
    return this.faults.pending();
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** Requests received, counted by operation (or only those `filter` keeps). */
  callsByOperation(filter: (r: ManagementRequestRecord) => boolean = () => true): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const r of this.requests.filter(filter)) counts[r.operation] = (counts[r.operation] ?? 0) + 1;
    return counts;
  }

  /** Forgets the rate limit's windows. */
  resetRateLimit(): void {
    this.windows.reset();
  }

  /** Requests the rate limit holds against a client IP right now. */
  requestsInWindow(clientIp = "127.0.0.1"): number {
    return this.windows.inWindow(clientIp, this.now(), this.service.limits.windowMs);
  }

  /** Listens on loopback (`port` 0: any free port); resolves with `http://localhost:PORT`. */
  async start(port = 0): Promise<string> {
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "localhost", resolve);
    });
    return this.baseUrl;
  }

  /** `http://localhost:PORT`; the SDK's `tunnelServiceUri` is this with a trailing `/`. */
  get baseUrl(): string {
    const address = this.server?.address() as AddressInfo | null | undefined;
    return `http://localhost:${address?.port ?? 0}`;
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
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const clientIp = normalizeIp(req.socket.remoteAddress);
    let raw: string;
    try {
      raw = await readBody(req);
    } catch {
      return; // the client went away before its request arrived whole
    }
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    let outcome: Outcome;
    try {
      outcome = this.process(req, method, path, url.searchParams, raw, clientIp);
    } catch (error) {
      const failure = error instanceof ManagementError ? error : new ManagementError(500, "Internal Server Error", String(error));
      outcome = { operation: `${method} ${path}`, status: failure.status, body: failure };
    }
    if (outcome.body instanceof ManagementError) {
      const error = outcome.body;
      outcome = { ...outcome, status: error.status, body: error.body(), headers: { ...error.headers, ...outcome.headers } };
    }
    this.requests.push({
      at,
      method,
      path,
      query: url.search.replace(/^\?/, ""),
      operation: outcome.operation,
      status: outcome.hang ? 0 : outcome.status,
      ...(outcome.caller ? { caller: describeCaller(outcome.caller) } : {}),
      clientIp,
      ...(outcome.fault ? { fault: outcome.fault } : {}),
    });
    if (outcome.hang) {
      this.hanging.add(res);
      res.on("close", () => this.hanging.delete(res));
      return;
    }
    if (res.destroyed) return;
    const headers: Record<string, string> = {
      "X-Served-By": `tunnels-fake-${this.service.clusterId}`,
      "VsSaaS-Request-Id": randomUUID(),
      ...outcome.headers,
    };
    if (outcome.body === undefined) {
      res.writeHead(outcome.status, headers);
      res.end();
      return;
    }
    const problem = outcome.status >= 400;
    res.writeHead(outcome.status, { ...headers, "Content-Type": problem ? "application/problem+json; charset=utf-8" : "application/json; charset=utf-8" });
    res.end(JSON.stringify(outcome.body));
  }

  private process(req: IncomingMessage, method: string, path: string, query: URLSearchParams, raw: string, clientIp: string): Outcome {
    const route = matchRoute(method, path, { ifNoneMatch: header(req, "if-none-match"), ifMatch: header(req, "if-match") });
    if (!route) {
      this.unknownRoutes.push({ method, path });
      return { operation: `${method} ${path}`, status: 404, body: Problems.routeNotFound(method, path) };
    }
    const operation = route.operation;
    const refuse = (error: ManagementError, caller?: Caller): Outcome => {
      if (error.violation) this.recordViolation(method, path, operation, error);
      return { operation, status: error.status, body: error, ...(caller ? { caller } : {}) };
    };

    const { requestsPerWindow, windowMs } = this.service.limits;
    const admission = this.windows.tryAdmit(clientIp, this.now(), requestsPerWindow, windowMs);
    if (!admission.admitted) {
      return refuse(Problems.rateLimited(Math.max(1, Math.ceil(admission.retryAfterMs / 1000)), requestsPerWindow, Math.round(windowMs / 1000)));
    }

    const options = parseQuery(query, route);
    if (options instanceof ManagementError) return refuse(options);

    const caller = identify(this.service, header(req, "authorization"));
    if (caller instanceof ManagementError) return refuse(caller);
    if (caller.kind === "anonymous" && !route.anonymous) return refuse(Problems.unauthorized("This operation requires authentication."));

    const body = parseBody(route, raw);
    if (body instanceof ManagementError) return refuse(body, caller);

    const fault = this.faults.take(operation);
    const faulted = (): Outcome => {
      if (fault!.kind === "timeout") return { operation, status: 0, hang: true, fault: "timeout", caller };
      const error = fault!.kind === "429" ? Problems.injectedRateLimit() : Problems.serverError(fault!.status);
      return { operation, status: error.status, body: error, fault: fault!.kind, caller };
    };
    if (fault?.when === "before") return faulted();

    let answer: Answer;
    try {
      answer = runOperation(this.config, { route, options, caller, body }, query);
    } catch (error) {
      if (!(error instanceof ManagementError)) throw error;
      return refuse(error, caller);
    }
    if (fault) return faulted();
    return { operation, status: answer.status, ...(answer.body === undefined ? {} : { body: answer.body }), caller };
  }

  private recordViolation(method: string, path: string, operation: string, error: ManagementError): void {
    const problems = error.errors
      ? Object.entries(error.errors).flatMap(([at, messages]) => messages.map((m) => `${at}: ${m}`))
      : [`${error.title}: ${error.detail ?? ""}`];
    this.violations.push({ method, path, operation, status: error.status, problems });
  }
}

/** The JSON body a route takes, checked against its contract type. */
function parseBody(route: RouteMatch, raw: string): unknown {
  if (route.body === "none") {
    return raw.trim() === "" ? undefined : Problems.validation({ $: [`${route.operation} takes no request body.`] });
  }
  if (raw.trim() === "") return Problems.bodyRequired();
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch (error) {
    return Problems.unparsableBody(`The request body is not valid JSON: ${(error as Error).message}`);
  }
  if (route.body === "events") {
    return Array.isArray(body) ? body : Problems.validation({ $: ["Expected an array of TunnelEvent."] });
  }
  const schema = route.body === "tunnel" ? TunnelSchema : route.body === "port" ? TunnelPortSchema : TunnelEndpointSchema;
  const errors = validateObject(body, schema);
  return Object.keys(errors).length > 0 ? Problems.validation(errors) : body;
}

function describeCaller(caller: Caller): string | undefined {
  if (caller.kind === "user") return caller.identity;
  if (caller.kind === "tunnel") return `tunnel:${caller.tunnelId}`;
  return undefined;
}

function normalizeIp(address: string | undefined): string {
  if (!address) return "unknown";
  if (address === "::1") return "127.0.0.1";
  return address.replace(/^::ffff:/, "");
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
