// An HTTP server that behaves like api.cloudflare.com/client/v4 for the endpoints a
// tunnel controller uses: envelopes, per-endpoint pagination, error codes, a per-token
// rate limit, latency, 5xx faults and held answers. Every request is checked against the
// published schema; a request the schema rejects gets a 400 and is recorded in
// `schemaViolations`. The endpoints themselves live in tunnels.ts, dns.ts, zones.ts and
// access-*.ts; this file is the request pipeline and the test-facing API.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { accessAppHandlers } from "./access-apps.ts";
import { effectivePolicies, reusablePolicyHandlers } from "./access-policies.ts";
import { seedRecords, dnsHandlers } from "./dns.ts";
import { type HeldRequest, type Hold, type HoldOptions, Holds, RandomFaults, type RequestMatcher } from "./faults.ts";
import { type EdgeOptions, FakeCloudflareEdge } from "./edge.ts";
import { identityProviderHandlers, createIdentityProvider } from "./identity-providers.ts";
import {
  type Body,
  CfError,
  cfId,
  type DnsRecord,
  type DnsRecordSeed,
  type IdentityProvider,
  type StoredAccessApp,
  type StoredReusablePolicy,
  type Tunnel,
  type TunnelConfiguration,
  type Zone,
} from "./model.ts";
import { canonicalName, operationName } from "./operation-names.ts";
import { paginate } from "./pagination.ts";
import { CLOUDFLARE_RATE_LIMIT, type RateLimit, RateLimited, TokenWindow } from "./rate-limit.ts";
import { type BlockedWindow, monotonicNow, type RequestRecord, requestsWhileBlocked, tokenFingerprint } from "./request-log.ts";
import { type MatchedRequest, OpenApiSchema } from "./schema.ts";
import { type Answer, type Handler, type Settings, Store, type TokenInfo } from "./store.ts";
import { setConnections, tunnelHandlers } from "./tunnels.ts";
import { createZone, type ZoneOptions, zoneHandlers } from "./zones.ts";

export interface FakeCloudflareOptions {
  /** Added to every response. */
  latencyMs?: number;
  /** Fraction of requests answered with a 5xx; half of them after the change was made. */
  faultRate?: number;
  /** Requests per token per window before 429 (Cloudflare: 1200 per 5 minutes, then blocked for 5 minutes). */
  rateLimit?: RateLimit;
  /**
   * The most a list operation (short name, e.g. "dns.records.list", or operationId)
   * serves per page, below what its schema allows; see pagination.ts. Default: none,
   * every list serves up to its documented maximum.
   */
  pageSizeCaps?: Record<string, number>;
  /** May two Access applications of an account share a domain? Default "allow" (see access-apps.ts). */
  duplicateAccessDomains?: Settings["duplicateAccessDomains"];
  specPath?: string;
}

type Options = Required<Omit<FakeCloudflareOptions, "specPath">>;

export interface SchemaViolation {
  method: string;
  path: string;
  operation: string;
  violations: string[];
}

const HANDLERS = new Map<string, Handler>(
  Object.entries({ ...zoneHandlers, ...tunnelHandlers, ...dnsHandlers, ...accessAppHandlers, ...reusablePolicyHandlers, ...identityProviderHandlers }),
);

/** How a request ends: its answer, and the hold that withholds it, if one took it. */
interface Outcome {
  operation: string;
  name: string;
  status: number;
  payload: unknown;
  retryAfterSeconds?: number;
  hold?: Hold;
}

export class FakeCloudflare {
  readonly requests: RequestRecord[] = [];
  readonly schemaViolations: SchemaViolation[] = [];
  private readonly store = new Store();
  private readonly schema: OpenApiSchema;
  private readonly holds = new Holds();
  private readonly faults = new RandomFaults();
  private options: Options;
  private server?: Server;
  private edgeServer?: FakeCloudflareEdge;

  constructor(options: FakeCloudflareOptions = {}) {
    const { specPath, ...rest } = options;
    this.schema = new OpenApiSchema(specPath);
    this.options = { latencyMs: 0, faultRate: 0, rateLimit: CLOUDFLARE_RATE_LIMIT, pageSizeCaps: {}, duplicateAccessDomains: "allow", ...rest };
  }

  configure(options: Omit<FakeCloudflareOptions, "specPath">): void {
    this.options = { ...this.options, ...options };
    if (options.rateLimit) for (const token of this.store.tokens.values()) token.window.reset();
  }

  // --- state, for tests to read --------------------------------------------------

  get tunnels(): Map<string, Tunnel> {
    return this.store.tunnels;
  }
  get configurations(): Map<string, TunnelConfiguration> {
    return this.store.configurations;
  }
  get zones(): Map<string, Zone> {
    return this.store.zones;
  }
  get records(): Map<string, DnsRecord> {
    return this.store.records;
  }
  get apps(): Map<string, StoredAccessApp> {
    return this.store.apps;
  }
  /** Access reusable policies, by id. */
  get accessPolicies(): Map<string, StoredReusablePolicy> {
    return this.store.reusablePolicies;
  }
  get identityProviders(): Map<string, IdentityProvider> {
    return this.store.identityProviders;
  }

  liveTunnels(): Tunnel[] {
    return [...this.store.tunnels.values()].filter((t) => !t.deleted_at);
  }

  /** The policies an Access application enforces, linked reusable ones included, by precedence (as its GET shows them). */
  appPolicies(appId: string): Array<Record<string, unknown>> {
    const app = this.store.apps.get(appId);
    if (!app) throw new Error(`no Access application ${appId}`);
    return effectivePolicies(this.store, app);
  }

  /** Requests answered, by operation id (or only those `filter` keeps). */
  callsByOperation(filter: (r: RequestRecord) => boolean = () => true): Record<string, number> {
    return countBy(this.requests.filter(filter), (r) => r.operation);
  }

  /** Requests answered, by short name ("tunnels.create"...). */
  callsByName(filter: (r: RequestRecord) => boolean = () => true): Record<string, number> {
    return countBy(this.requests.filter(filter), (r) => r.name);
  }

  /** Each block a 429 announced, per token, and the requests that token made during it (see request-log.ts). */
  requestsWhileBlocked(): BlockedWindow[] {
    return requestsWhileBlocked(this.requests);
  }

  // --- test set-up -----------------------------------------------------------------

  addAccount(id: string = cfId(), name = "Test account"): string {
    this.store.accounts.set(id, name);
    return id;
  }

  /** A valid API token for the given accounts; returns its fingerprint, as `RequestRecord.token` shows it. */
  addToken(token: string, accounts: string[]): string {
    const fingerprint = tokenFingerprint(token);
    this.store.tokens.set(token, { id: cfId(), accounts: new Set(accounts), fingerprint, window: new TokenWindow() });
    return fingerprint;
  }

  /** A zone of the account, active unless `options.status` says otherwise. */
  addZone(name: string, accountId: string, options: ZoneOptions = {}): Zone {
    return createZone(this.store, name, accountId, options);
  }

  /** Adds a DNS record as if a person had made it in the dashboard. */
  addRecord(zoneId: string, record: DnsRecordSeed): DnsRecord {
    return seedRecords(this.store, zoneId, [record])[0]!;
  }

  /** Adds many DNS records at once (thousands in milliseconds), as `addRecord` does. */
  addDnsRecords(zoneId: string, records: readonly DnsRecordSeed[]): DnsRecord[] {
    return seedRecords(this.store, zoneId, records);
  }

  /** Adds a login method to the account, as if made in the dashboard (one-time PIN at most once). */
  addIdentityProvider(accountId: string, idp: { type: string; name?: string; config?: Record<string, unknown> }): IdentityProvider {
    return createIdentityProvider(this.store, accountId, idp);
  }

  /** Simulates cloudflared connectors (none run here): `n` healthy connections. */
  setConnections(tunnelId: string, n: number): void {
    const tunnel = this.store.tunnels.get(tunnelId);
    if (!tunnel) throw new Error(`no tunnel ${tunnelId}`);
    setConnections(tunnel, n);
  }

  /**
   * Commit-then-hang: the next request `matcher` selects is applied (Cloudflare's state
   * changes, as if it committed) but its answer is withheld until `release()`, or for
   * good with `{ neverAnswer: true }`, so its client times out. A client that dies
   * meanwhile only closes its socket; the fake carries on. Holds match in the order
   * they were made, one request each.
   */
  hold(matcher: RequestMatcher, options: HoldOptions = {}): HeldRequest {
    return this.holds.add(matcher, options);
  }

  // --- server ----------------------------------------------------------------------

  async start(port = 0): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => this.server!.listen(port, "127.0.0.1", resolve));
    return this.baseUrl;
  }

  get baseUrl(): string {
    const address = this.server?.address() as AddressInfo | undefined;
    return `http://127.0.0.1:${address?.port ?? 0}/client/v4`;
  }

  /**
   * Starts the edge (see edge.ts): where connectors register and the public side answers
   * for the account's tunnels. Only the local demo and data-path tests need it.
   */
  async startEdge(options: EdgeOptions = {}): Promise<FakeCloudflareEdge> {
    if (this.edgeServer) throw new Error("the edge is already started");
    const edge = new FakeCloudflareEdge(this.store, options);
    await edge.start();
    this.edgeServer = edge;
    return edge;
  }

  /** Stops serving; connections still open, held ones included, are closed. */
  async stop(): Promise<void> {
    await this.edgeServer?.stop();
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = monotonicNow();
    const url = new URL(req.url ?? "/", "http://fake");
    const path = url.pathname.replace(/^\/client\/v4/, "");
    const method = req.method ?? "GET";
    const bearer = req.headers.authorization?.replace(/^Bearer /, "");
    // A client that goes away (killed, timed out) must not take the fake down with it.
    let record: RequestRecord | undefined;
    let abandoned = false;
    let dropped = false;
    res.on("error", () => undefined);
    res.on("close", () => {
      if (res.writableFinished || dropped) return;
      abandoned = true;
      if (record) record.abandoned = true;
    });
    let outcome: Outcome;
    try {
      outcome = await this.process(req, at, method, path, url.searchParams, bearer);
    } catch (error) {
      if (error instanceof ClientGone || abandoned) return; // the request never arrived whole
      outcome = { operation: `${method} ${path}`, name: `${method} ${path}`, status: 500, payload: envelopeError(10000, String(error)) };
    }
    record = {
      at, method, path, operation: outcome.operation, name: outcome.name, status: outcome.status,
      ...(bearer ? { token: tokenFingerprint(bearer) } : {}),
      ...(outcome.retryAfterSeconds !== undefined ? { retryAfterSeconds: outcome.retryAfterSeconds } : {}),
      ...(outcome.hold ? { held: true } : {}),
      ...(abandoned ? { abandoned: true } : {}),
    };
    this.requests.push(record);
    const answered = record;
    const answer = (): void => {
      if (res.destroyed || res.writableEnded) return;
      answered.answeredAt = monotonicNow();
      res.writeHead(outcome.status, {
        "Content-Type": "application/json",
        ...(outcome.retryAfterSeconds !== undefined ? { "Retry-After": String(outcome.retryAfterSeconds) } : {}),
      });
      res.end(JSON.stringify(outcome.payload));
    };
    const drop = (): void => {
      dropped = true;
      res.destroy();
    };
    if (outcome.hold) outcome.hold.take({ record, answer, drop });
    else answer();
  }

  /** Validation, authentication, rate limit, faults and the endpoint itself: what to answer. */
  private async process(req: IncomingMessage, at: number, method: string, path: string, query: URLSearchParams, bearer: string | undefined): Promise<Outcome> {
    const raw = await readBody(req);
    const unrouted = { operation: `${method} ${path}`, name: `${method} ${path}` };
    let body: Body | undefined;
    try {
      body = raw ? (JSON.parse(raw) as Body) : undefined;
    } catch {
      return { ...unrouted, status: 400, payload: envelopeError(6007, "Malformed JSON in request body") };
    }
    const match = this.schema.match(method, path, query, body);
    if (this.options.latencyMs > 0) await sleep(this.options.latencyMs);
    if (!match) return { ...unrouted, status: 404, payload: envelopeError(7003, `Could not route to ${path}, perhaps your object identifier is invalid?`) };
    const named = { operation: match.operation, name: operationName(match.method, match.template) };
    if (match.violations.length > 0) {
      this.schemaViolations.push({ method, path, operation: match.operation, violations: match.violations });
      return { ...named, status: 400, payload: envelopeError(9999, `request rejected by the OpenAPI schema: ${match.violations.join("; ")}`) };
    }
    let hold: Hold | undefined;
    try {
      const token = this.authenticate(bearer, match.params);
      // Counted at arrival, the instant the log records, so a block in the log is the block the server kept.
      token.window.admit(at, this.options.rateLimit);
      hold = this.holds.take({ ...named, method, path, params: match.params, body });
      // A held request is the test's chosen fault; random ones stay off it so it commits.
      const fault = hold ? undefined : this.faults.next(this.options.faultRate);
      if (fault === "before") throw new CfError(503, 10013, "Service temporarily unavailable");
      const answer = this.route(named.name, match, query, body, token);
      if (fault === "after") throw new CfError(502, 10013, "Bad gateway");
      return { ...named, status: 200, payload: { success: true, errors: [], messages: [], ...answer }, ...(hold ? { hold } : {}) };
    } catch (error) {
      const held = hold ? { hold } : {};
      if (error instanceof RateLimited) return { ...named, status: 429, payload: envelopeError(error.code, error.message), retryAfterSeconds: error.retryAfterSeconds };
      if (error instanceof CfError) return { ...named, ...held, status: error.status, payload: envelopeError(error.code, error.message) };
      return { ...named, ...held, status: 500, payload: envelopeError(10000, String(error)) };
    }
  }

  private authenticate(bearer: string | undefined, params: Record<string, string>): TokenInfo {
    const token = this.store.tokens.get(bearer ?? "");
    if (!token) throw new CfError(403, 10000, "Authentication error");
    const scoped = params.accounts_or_zones;
    const account = params.account_id ?? (scoped === "accounts" ? params.account_or_zone_id : undefined);
    if (account && !token.accounts.has(account)) throw new CfError(403, 10000, "Authentication error");
    const zoneId = params.zone_id ?? (scoped === "zones" ? params.account_or_zone_id : undefined);
    if (zoneId) {
      const zone = this.store.zones.get(zoneId);
      if (!zone) throw new CfError(404, 7003, `Could not route to /zones/${zoneId}, perhaps your object identifier is invalid?`);
      if (!token.accounts.has(zone.account.id)) throw new CfError(403, 10000, "Authentication error");
    }
    return token;
  }

  private route(name: string, match: MatchedRequest, query: URLSearchParams, body: Body | undefined, token: TokenInfo): Answer {
    const handler = HANDLERS.get(name);
    if (!handler) throw new CfError(501, 10000, `the fake does not implement ${match.operation}`);
    const cap = this.pageSizeCap(name, match.operation);
    return handler({
      store: this.store,
      settings: { duplicateAccessDomains: this.options.duplicateAccessDomains },
      params: match.params,
      query,
      body: body ?? {},
      token,
      page: (items) => paginate(items, query, match.pageSize, cap),
    });
  }

  private pageSizeCap(name: string, operation: string): number | undefined {
    for (const [key, cap] of Object.entries(this.options.pageSizeCaps)) if (canonicalName(key) === name || key === operation) return cap;
    return undefined;
  }
}

function countBy(records: readonly RequestRecord[], key: (r: RequestRecord) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) counts[key(r)] = (counts[key(r)] ?? 0) + 1;
  return counts;
}

function envelopeError(code: number, message: string): unknown {
  return { success: false, errors: [{ code, message }], messages: [], result: null };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (data += chunk));
    req.on("end", () => resolve(data));
    req.on("error", () => reject(new ClientGone()));
    req.on("aborted", () => reject(new ClientGone()));
  });
}

/** The client went away before its request arrived whole: there is nothing to answer or record. */
class ClientGone extends Error {}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
