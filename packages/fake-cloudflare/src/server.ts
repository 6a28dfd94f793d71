// An HTTP server that behaves like api.cloudflare.com/client/v4 for the endpoints a
// tunnel controller uses: envelopes, pagination, error codes, a per-token rate limit,
// latency and 5xx faults. Every request is checked against the published schema; a
// request the schema rejects gets a 400 and is recorded in `schemaViolations`.
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { OpenApiSchema } from "./schema.ts";

export interface FakeCloudflareOptions {
  /** Added to every response. */
  latencyMs?: number;
  /** Fraction of requests answered with a 5xx; half of them after the change was made. */
  faultRate?: number;
  /** Requests per token per window before 429 (Cloudflare: 1200 per 5 minutes). */
  rateLimit?: { limit: number; windowMs: number };
  specPath?: string;
}

export interface Tunnel {
  id: string;
  account_tag: string;
  name: string;
  created_at: string;
  deleted_at: string | null;
  config_src: "local" | "cloudflare";
  remote_config: boolean;
  status: "inactive" | "healthy" | "degraded" | "down";
  tun_type: "cfd_tunnel";
  connections: Connection[];
  conns_active_at: string | null;
  conns_inactive_at: string | null;
  metadata: Record<string, unknown>;
  secret: string;
}

export interface Connection {
  id: string;
  colo_name: string;
  is_pending_reconnect: boolean;
  opened_at: string;
  origin_ip: string;
  uuid: string;
  client_id: string;
  client_version: string;
}

export interface Zone {
  id: string;
  name: string;
  account: { id: string; name: string };
  status: "active";
  type: "full";
}

export interface DnsRecord {
  id: string;
  zone_id: string;
  zone_name: string;
  name: string;
  type: string;
  content: string;
  proxied: boolean;
  proxiable: boolean;
  ttl: number;
  comment: string | null;
  tags: string[];
  created_on: string;
  modified_on: string;
  meta: Record<string, unknown>;
  settings: Record<string, unknown>;
}

export interface AccessApp {
  id: string;
  uid: string;
  type: string;
  name: string;
  domain: string;
  [key: string]: unknown;
}

export interface AccessPolicy {
  id: string;
  uid: string;
  name: string;
  decision: string;
  include: unknown[];
  precedence: number;
  [key: string]: unknown;
}

export interface RequestRecord {
  method: string;
  path: string;
  operation: string;
  status: number;
}

class CfError extends Error {
  readonly status: number;
  readonly code: number;

  constructor(status: number, code: number, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const now = (): string => new Date().toISOString();
const cfId = (): string => randomBytes(16).toString("hex");

interface TokenInfo {
  id: string;
  accounts: Set<string>;
  window: { start: number; count: number; blockedUntil: number };
}

export class FakeCloudflare {
  readonly tunnels = new Map<string, Tunnel>();
  readonly configurations = new Map<string, { version: number; config: Record<string, unknown>; created_at: string }>();
  readonly zones = new Map<string, Zone>();
  readonly records = new Map<string, DnsRecord>();
  readonly apps = new Map<string, AccessApp & { account: string; policies: Map<string, AccessPolicy> }>();
  readonly identityProviders = new Map<string, { id: string; name: string; type: string; config: Record<string, unknown>; account: string }>();
  readonly requests: RequestRecord[] = [];
  readonly schemaViolations: Array<{ method: string; path: string; operation: string; violations: string[] }> = [];
  private readonly tokens = new Map<string, TokenInfo>();
  private readonly accounts = new Map<string, string>();
  private readonly schema: OpenApiSchema;
  private options: Required<Omit<FakeCloudflareOptions, "specPath">>;
  private server?: Server;
  private faultCounter = 0;

  constructor(options: FakeCloudflareOptions = {}) {
    this.schema = new OpenApiSchema(options.specPath);
    this.options = { latencyMs: 0, faultRate: 0, rateLimit: { limit: 1200, windowMs: 5 * 60_000 }, ...options };
  }

  configure(options: Omit<FakeCloudflareOptions, "specPath">): void {
    this.options = { ...this.options, ...options };
    if (options.rateLimit) for (const token of this.tokens.values()) token.window = { start: 0, count: 0, blockedUntil: 0 };
  }

  // --- test set-up -------------------------------------------------------------

  addAccount(id: string = cfId(), name = "Test account"): string {
    this.accounts.set(id, name);
    return id;
  }

  /** A valid API token for the given accounts. */
  addToken(token: string, accounts: string[]): void {
    this.tokens.set(token, { id: cfId(), accounts: new Set(accounts), window: { start: 0, count: 0, blockedUntil: 0 } });
  }

  addZone(name: string, accountId: string): Zone {
    const zone: Zone = { id: cfId(), name, account: { id: accountId, name: this.accounts.get(accountId) ?? "" }, status: "active", type: "full" };
    this.zones.set(zone.id, zone);
    return zone;
  }

  /** Adds a DNS record as if a person had made it in the dashboard. */
  addRecord(zoneId: string, record: Pick<DnsRecord, "name" | "type" | "content"> & Partial<DnsRecord>): DnsRecord {
    const zone = this.zones.get(zoneId)!;
    const full: DnsRecord = {
      id: cfId(), zone_id: zoneId, zone_name: zone.name, proxied: false, proxiable: true, ttl: 1, comment: null, tags: [],
      created_on: now(), modified_on: now(), meta: {}, settings: {}, ...record,
    };
    this.records.set(full.id, full);
    return full;
  }

  /** Simulates cloudflared connectors (none run here): `n` healthy connections. */
  setConnections(tunnelId: string, n: number): void {
    const tunnel = this.tunnels.get(tunnelId);
    if (!tunnel) throw new Error(`no tunnel ${tunnelId}`);
    tunnel.connections = Array.from({ length: n }, (_, i) => ({
      id: randomUUID(), colo_name: ["ams", "fra", "lhr", "cdg"][i % 4]!, is_pending_reconnect: false, opened_at: now(),
      origin_ip: "198.51.100.7", uuid: randomUUID(), client_id: randomUUID(), client_version: "2025.11.1",
    }));
    tunnel.status = n > 0 ? "healthy" : "inactive";
    if (n > 0) tunnel.conns_active_at = now();
    else tunnel.conns_inactive_at = now();
  }

  liveTunnels(): Tunnel[] {
    return [...this.tunnels.values()].filter((t) => !t.deleted_at);
  }

  /** Requests answered, by operation id (or only those with the given status). */
  callsByOperation(filter: (r: RequestRecord) => boolean = () => true): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const r of this.requests.filter(filter)) counts[r.operation] = (counts[r.operation] ?? 0) + 1;
    return counts;
  }

  // --- server ------------------------------------------------------------------

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

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    const path = url.pathname.replace(/^\/client\/v4/, "");
    const method = req.method ?? "GET";
    const raw = await readBody(req);
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      return this.reply(res, { method, path, operation: "?" }, 400, envelopeError(6007, "Malformed JSON in request body"));
    }
    const match = this.schema.match(method, path, url.searchParams, body);
    const record = { method, path, operation: match?.operation ?? `${method} ${path}` };
    if (this.options.latencyMs > 0) await sleep(this.options.latencyMs);
    if (!match) return this.reply(res, record, 404, envelopeError(7003, "Could not route to " + path + ", perhaps your object identifier is invalid?"));
    if (match.violations.length > 0) {
      this.schemaViolations.push({ ...record, violations: match.violations });
      return this.reply(res, record, 400, envelopeError(9999, `request rejected by the OpenAPI schema: ${match.violations.join("; ")}`));
    }
    try {
      const token = this.authenticate(req, match.params);
      this.rateLimit(token, res);
      const fault = this.nextFault();
      if (fault === "before") throw new CfError(503, 10013, "Service temporarily unavailable");
      const result = this.route(match.operation, match.params, url.searchParams, body, token);
      if (fault === "after") throw new CfError(502, 10013, "Bad gateway");
      this.reply(res, record, 200, { success: true, errors: [], messages: [], ...result });
    } catch (error) {
      if (error instanceof CfError) this.reply(res, record, error.status, envelopeError(error.code, error.message));
      else this.reply(res, record, 500, envelopeError(10000, String(error)));
    }
  }

  private reply(res: ServerResponse, record: Omit<RequestRecord, "status">, status: number, payload: unknown): void {
    this.requests.push({ ...record, status });
    if (!res.headersSent) res.writeHead(status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(payload));
  }

  private nextFault(): "before" | "after" | undefined {
    if (this.options.faultRate <= 0 || Math.random() >= this.options.faultRate) return undefined;
    return this.faultCounter++ % 2 === 0 ? "before" : "after";
  }

  private authenticate(req: IncomingMessage, params: Record<string, string>): TokenInfo {
    const header = req.headers.authorization ?? "";
    const token = this.tokens.get(header.replace(/^Bearer /, ""));
    if (!token) throw new CfError(403, 10000, "Authentication error");
    const account = params.account_id ?? (params.accounts_or_zones === "accounts" ? params.account_or_zone_id : undefined);
    if (account && !token.accounts.has(account)) throw new CfError(403, 10000, "Authentication error");
    const zoneId = params.zone_id;
    if (zoneId) {
      const zone = this.zones.get(zoneId);
      if (!zone) throw new CfError(404, 7003, "Could not route to /zones/" + zoneId + ", perhaps your object identifier is invalid?");
      if (!token.accounts.has(zone.account.id)) throw new CfError(403, 10000, "Authentication error");
    }
    return token;
  }

  /** 1200 requests per 5 minutes per token; past that, every call fails until the window ends. */
  private rateLimit(token: TokenInfo, res: ServerResponse): void {
    const { limit, windowMs } = this.options.rateLimit;
    const t = Date.now();
    const w = token.window;
    if (t < w.blockedUntil) {
      res.setHeader("Retry-After", String(Math.ceil((w.blockedUntil - t) / 1000)));
      throw new CfError(429, 971, "Please wait and consider throttling your request speed");
    }
    if (t - w.start >= windowMs) {
      w.start = t;
      w.count = 0;
    }
    w.count++;
    if (w.count > limit) {
      w.blockedUntil = w.start + windowMs;
      res.setHeader("Retry-After", String(Math.ceil((w.blockedUntil - t) / 1000)));
      throw new CfError(429, 971, "Please wait and consider throttling your request speed");
    }
  }

  private route(operation: string, p: Record<string, string>, q: URLSearchParams, body: unknown, token: TokenInfo): { result: unknown; result_info?: unknown } {
    const b = (body ?? {}) as Record<string, unknown>;
    switch (operation) {
      case "user-api-tokens-verify-token":
      case "account-api-tokens-verify-token":
        return { result: { id: token.id, status: "active" } };
      case "zones-get":
        return paginate(
          [...this.zones.values()].filter(
            (z) => token.accounts.has(z.account.id) && (!q.get("name") || z.name === q.get("name")) && (!q.get("account.id") || z.account.id === q.get("account.id")),
          ),
          q,
        );
      case "cloudflare-tunnel-list-cloudflare-tunnels":
        return paginate(
          [...this.tunnels.values()]
            .filter((t) => t.account_tag === p.account_id)
            .filter((t) => q.get("is_deleted") !== "false" || !t.deleted_at)
            .filter((t) => !q.get("name") || t.name === q.get("name"))
            .filter((t) => !q.get("uuid") || t.id === q.get("uuid"))
            .map(publicTunnel),
          q,
        );
      case "cloudflare-tunnel-create-a-cloudflare-tunnel":
        return { result: publicTunnel(this.createTunnel(p.account_id!, b)) };
      case "cloudflare-tunnel-get-a-cloudflare-tunnel":
        return { result: publicTunnel(this.tunnel(p)) };
      case "cloudflare-tunnel-update-a-cloudflare-tunnel": {
        const tunnel = this.tunnel(p);
        if (typeof b.name === "string") tunnel.name = b.name;
        return { result: publicTunnel(tunnel) };
      }
      case "cloudflare-tunnel-delete-a-cloudflare-tunnel": {
        const tunnel = this.tunnel(p);
        if (tunnel.connections.length > 0) throw new CfError(400, 1022, "Cannot delete a tunnel with active connections");
        tunnel.deleted_at = now();
        return { result: publicTunnel(tunnel) };
      }
      case "cloudflare-tunnel-configuration-get-configuration": {
        const tunnel = this.tunnel(p);
        const config = this.configurations.get(tunnel.id);
        return { result: { tunnel_id: tunnel.id, account_id: tunnel.account_tag, version: config?.version ?? 0, config: config?.config ?? null, source: "cloudflare", created_at: config?.created_at ?? tunnel.created_at } };
      }
      case "cloudflare-tunnel-configuration-put-configuration": {
        const tunnel = this.tunnel(p);
        const version = (this.configurations.get(tunnel.id)?.version ?? 0) + 1;
        const entry = { version, config: (b.config ?? {}) as Record<string, unknown>, created_at: now() };
        this.configurations.set(tunnel.id, entry);
        return { result: { tunnel_id: tunnel.id, account_id: tunnel.account_tag, source: "cloudflare", ...entry } };
      }
      case "cloudflare-tunnel-list-cloudflare-tunnel-connections":
        return { result: this.tunnel(p).connections.length ? [{ id: randomUUID(), features: [], version: "2025.11.1", arch: "linux_amd64", run_at: now(), conns: this.tunnel(p).connections }] : [] };
      case "cloudflare-tunnel-clean-up-cloudflare-tunnel-connections":
        this.setConnections(this.tunnel(p).id, 0);
        return { result: null };
      case "cloudflare-tunnel-get-a-cloudflare-tunnel-token": {
        const tunnel = this.tunnel(p);
        return { result: Buffer.from(JSON.stringify({ a: tunnel.account_tag, t: tunnel.id, s: tunnel.secret })).toString("base64") };
      }
      case "dns-records-for-a-zone-list-dns-records":
        return paginate(this.listRecords(p.zone_id!, q), q);
      case "dns-records-for-a-zone-create-dns-record":
        return { result: this.createRecord(p.zone_id!, b) };
      case "dns-records-for-a-zone-dns-record-details":
        return { result: this.record(p) };
      case "dns-records-for-a-zone-patch-dns-record":
        return { result: this.updateRecord(p, b, false) };
      case "dns-records-for-a-zone-update-dns-record":
        return { result: this.updateRecord(p, b, true) };
      case "dns-records-for-a-zone-delete-dns-record": {
        const record = this.record(p);
        this.records.delete(record.id);
        return { result: { id: record.id } };
      }
      case "dns-records-for-a-zone-batch-dns-records":
        return { result: this.batch(p.zone_id!, b) };
      default:
        return this.routeAccess(operation, p, q, b);
    }
  }

  private routeAccess(operation: string, p: Record<string, string>, q: URLSearchParams, b: Record<string, unknown>): { result: unknown; result_info?: unknown } {
    const account = p.account_or_zone_id!;
    const [method, template] = operation.split(" ") as [string, string];
    const app = () => {
      const found = this.apps.get(p.app_id!);
      if (!found || found.account !== account) throw new CfError(404, 11021, "access.api.error.not_found");
      return found;
    };
    const publicApp = ({ account: _a, policies, ...rest }: AccessApp & { account: string; policies: Map<string, AccessPolicy> }) => ({ ...rest, policies: [...policies.values()] });
    switch (`${method} ${template.replace("/{accounts_or_zones}/{account_or_zone_id}", "")}`) {
      case "GET /access/apps":
        return paginate([...this.apps.values()].filter((a) => a.account === account).map(publicApp), q);
      case "POST /access/apps": {
        if ([...this.apps.values()].some((a) => a.account === account && a.domain === b.domain)) {
          throw new CfError(400, 12130, "access.api.error.conflict: application with the same domain already exists");
        }
        const id = randomUUID();
        const created = { ...b, id, uid: id, type: String(b.type), name: String(b.name), domain: String(b.domain), account, policies: new Map<string, AccessPolicy>(), created_at: now(), updated_at: now() };
        this.apps.set(id, created);
        return { result: publicApp(created) };
      }
      case "GET /access/apps/{app_id}":
        return { result: publicApp(app()) };
      case "PUT /access/apps/{app_id}": {
        const existing = app();
        Object.assign(existing, b, { updated_at: now() });
        return { result: publicApp(existing) };
      }
      case "DELETE /access/apps/{app_id}":
        this.apps.delete(app().id);
        return { result: { id: p.app_id } };
      case "GET /access/apps/{app_id}/policies":
        return paginate([...app().policies.values()], q);
      case "POST /access/apps/{app_id}/policies": {
        const id = randomUUID();
        const policy: AccessPolicy = { ...b, id, uid: id, name: String(b.name), decision: String(b.decision), include: (b.include as unknown[]) ?? [], precedence: Number(b.precedence ?? 1), created_at: now() };
        app().policies.set(id, policy);
        return { result: policy };
      }
      case "PUT /access/apps/{app_id}/policies/{policy_id}": {
        const policy = app().policies.get(p.policy_id!);
        if (!policy) throw new CfError(404, 11021, "access.api.error.not_found");
        Object.assign(policy, b);
        return { result: policy };
      }
      case "DELETE /access/apps/{app_id}/policies/{policy_id}":
        app().policies.delete(p.policy_id!);
        return { result: { id: p.policy_id } };
      case "GET /access/identity_providers":
        return paginate([...this.identityProviders.values()].filter((i) => i.account === account).map(({ account: _a, ...rest }) => rest), q);
      case "POST /access/identity_providers": {
        const id = randomUUID();
        const idp = { id, name: String(b.name), type: String(b.type), config: (b.config as Record<string, unknown>) ?? {}, account };
        this.identityProviders.set(id, idp);
        return { result: { id, name: idp.name, type: idp.type, config: idp.config } };
      }
      default:
        throw new CfError(501, 10000, `the fake does not implement ${operation}`);
    }
  }

  private tunnel(p: Record<string, string>): Tunnel {
    const tunnel = this.tunnels.get(p.tunnel_id!);
    if (!tunnel || tunnel.account_tag !== p.account_id) throw new CfError(404, 1003, "Tunnel not found");
    return tunnel;
  }

  private createTunnel(account: string, b: Record<string, unknown>): Tunnel {
    const name = String(b.name);
    if ([...this.tunnels.values()].some((t) => t.account_tag === account && t.name === name && !t.deleted_at)) {
      throw new CfError(409, 1013, "You already have a tunnel with this name");
    }
    const configSrc = b.config_src === "cloudflare" ? "cloudflare" : "local";
    const tunnel: Tunnel = {
      id: randomUUID(), account_tag: account, name, created_at: now(), deleted_at: null, config_src: configSrc,
      remote_config: configSrc === "cloudflare", status: "inactive", tun_type: "cfd_tunnel", connections: [],
      conns_active_at: null, conns_inactive_at: null, metadata: {},
      secret: typeof b.tunnel_secret === "string" ? b.tunnel_secret : randomBytes(32).toString("base64"),
    };
    this.tunnels.set(tunnel.id, tunnel);
    return tunnel;
  }

  private record(p: Record<string, string>): DnsRecord {
    const record = this.records.get(p.dns_record_id!);
    if (!record || record.zone_id !== p.zone_id) throw new CfError(404, 81044, "Record does not exist.");
    return record;
  }

  private listRecords(zoneId: string, q: URLSearchParams): DnsRecord[] {
    const name = q.get("name.exact") ?? q.get("name");
    return [...this.records.values()].filter(
      (r) =>
        r.zone_id === zoneId &&
        (!name || r.name === name) &&
        (!q.get("type") || r.type === q.get("type")) &&
        (!q.get("content") || r.content === q.get("content")) &&
        (!q.get("comment.exact") || r.comment === q.get("comment.exact")) &&
        (!q.get("tag") || r.tags.includes(q.get("tag")!)),
    );
  }

  private checkConflicts(zoneId: string, candidate: Pick<DnsRecord, "name" | "type" | "content">, ignoreId?: string): void {
    for (const r of this.records.values()) {
      if (r.zone_id !== zoneId || r.id === ignoreId || r.name !== candidate.name) continue;
      if (r.type === candidate.type && r.content === candidate.content) throw new CfError(400, 81057, "Record already exists.");
      const addressTypes = ["A", "AAAA", "CNAME"];
      if ((candidate.type === "CNAME" && addressTypes.includes(r.type)) || (r.type === "CNAME" && addressTypes.includes(candidate.type))) {
        throw new CfError(400, 81053, "An A, AAAA, or CNAME record with that host already exists.");
      }
    }
  }

  private createRecord(zoneId: string, b: Record<string, unknown>): DnsRecord {
    const zone = this.zones.get(zoneId)!;
    const candidate = { name: String(b.name), type: String(b.type), content: String(b.content) };
    if (candidate.name !== zone.name && !candidate.name.endsWith(`.${zone.name}`)) {
      throw new CfError(400, 9005, "Content for CNAME record is invalid: the name is not in this zone");
    }
    this.checkConflicts(zoneId, candidate);
    return this.addRecord(zoneId, {
      ...candidate,
      proxied: Boolean(b.proxied),
      ttl: Number(b.ttl ?? 1),
      comment: typeof b.comment === "string" ? b.comment : null,
      tags: Array.isArray(b.tags) ? (b.tags as string[]) : [],
    });
  }

  private updateRecord(p: Record<string, string>, b: Record<string, unknown>, replace: boolean): DnsRecord {
    const record = this.record(p);
    const next = replace ? { ...record, comment: null, tags: [], proxied: false, ...b } : { ...record, ...b };
    this.checkConflicts(record.zone_id, next as DnsRecord, record.id);
    Object.assign(record, next, { modified_on: now() });
    return record;
  }

  /** deletes, patches, puts, posts, in that order; all or nothing. */
  private batch(zoneId: string, b: Record<string, unknown>): Record<string, unknown> {
    const snapshot = new Map([...this.records].map(([k, v]) => [k, structuredClone(v)]));
    try {
      const list = (key: string) => (b[key] as Array<Record<string, unknown>> | undefined) ?? [];
      const deletes = list("deletes").map((d) => {
        const record = this.record({ zone_id: zoneId, dns_record_id: String(d.id) });
        this.records.delete(record.id);
        return record;
      });
      const patches = list("patches").map((d) => this.updateRecord({ zone_id: zoneId, dns_record_id: String(d.id) }, d, false));
      const puts = list("puts").map((d) => this.updateRecord({ zone_id: zoneId, dns_record_id: String(d.id) }, d, true));
      const posts = list("posts").map((d) => this.createRecord(zoneId, d));
      return { deletes, patches, puts, posts };
    } catch (error) {
      this.records.clear();
      for (const [k, v] of snapshot) this.records.set(k, v);
      throw error;
    }
  }
}

function publicTunnel({ secret: _secret, ...tunnel }: Tunnel): Omit<Tunnel, "secret"> {
  return tunnel;
}

/** Cloudflare's page/per_page pagination; past the end, an empty page. */
function paginate<T>(items: T[], q: URLSearchParams): { result: T[]; result_info: Record<string, number> } {
  const page = Math.max(1, Number(q.get("page") ?? 1));
  const perPage = Math.min(Math.max(1, Number(q.get("per_page") ?? 20)), 1000);
  const slice = items.slice((page - 1) * perPage, page * perPage);
  return {
    result: slice,
    result_info: { page, per_page: perPage, count: slice.length, total_count: items.length, total_pages: Math.ceil(items.length / perPage) },
  };
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
    req.on("error", reject);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
