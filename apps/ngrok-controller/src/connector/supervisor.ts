// One connector replica's agent: a single ngrok session for the tunnel's authtoken, and the
// endpoints of the route table bound on it. The SDK is not trusted to keep either alive
// (see provider/agent.ts): this supervisor rebuilds the session on its own capped, jittered
// schedule, re-binds every endpoint from the table afterwards, re-creates an endpoint ngrok
// stopped, and touches only the endpoints whose spec changed when the table changes.
import { createHash } from "node:crypto";
import type { AgentEndpoint, AgentOptions, AgentSession, EndpointOptions } from "../provider/agent.ts";
import { NgrokError, retryDelayMs } from "../provider/errors.ts";
import type { AgentReport, EndpointReport, SessionReport } from "../provider/agent-report.ts";
import { REPORT_VERSION } from "../provider/agent-report.ts";
import type { EndpointSpec, RouteTable } from "../provider/route-table.ts";
import { PathRouter } from "./path-router.ts";

export type Connect = (options: AgentOptions) => Promise<AgentSession>;

export interface SupervisorOptions {
  /** This replica's pod name: it binds unpooled endpoints only where `servedBy` names it. */
  pod: string;
  connect: Connect;
  agent: Omit<AgentOptions, "onDead" | "onHeartbeat" | "onReconnecting">;
  bindTimeoutMs: number;
  /** `host:port` → `host:port`: where a Service is reached when not running in its cluster. */
  upstreamOverrides?: Record<string, string>;
  /** Called after every change of what this replica knows (debounced by the caller). */
  onReport(report: AgentReport): void;
  log: (level: "info" | "warn" | "error", message: string, fields?: Record<string, unknown>) => void;
  random?: () => number;
}

interface Bound {
  spec: EndpointSpec;
  hash: string;
  endpoint?: AgentEndpoint;
  router?: { server: PathRouter; url: string };
  report: EndpointReport;
  failures: number;
  retry?: NodeJS.Timeout;
}

const specHash = (spec: EndpointSpec): string => createHash("sha256").update(JSON.stringify(spec)).digest("hex").slice(0, 16);
export const tableHash = (table: RouteTable): string => createHash("sha256").update(JSON.stringify(table)).digest("hex").slice(0, 16);

export class AgentSupervisor {
  private readonly options: SupervisorOptions;
  private table: RouteTable | undefined;
  private tableId = "";
  private session: AgentSession | undefined;
  private connecting: Promise<void> | undefined;
  private sessionReport: SessionReport = { state: "connecting" };
  private sessionFailures = 0;
  private reconnect: NodeJS.Timeout | undefined;
  private readonly bound = new Map<string, Bound>();
  private stopped = false;
  /** Serialises changes to the bound set: one sync at a time, the last table wins. */
  private syncing: Promise<void> = Promise.resolve();

  constructor(options: SupervisorOptions) {
    this.options = options;
  }

  /** Whether the session is up and every endpoint this replica should bind is online. */
  get ready(): boolean {
    return this.sessionReport.state === "online" && [...this.bound.values()].every((b) => b.report.online);
  }

  report(): AgentReport {
    return {
      version: REPORT_VERSION,
      table: this.tableId,
      session: this.sessionReport,
      endpoints: Object.fromEntries([...this.bound].map(([id, b]) => [id, b.report])),
    };
  }

  /** A new route table: endpoints added, changed or removed as needed, the others left alone. */
  setTable(table: RouteTable): void {
    this.table = table;
    this.tableId = tableHash(table);
    this.changed();
    this.start();
    this.schedule();
  }

  /** Opens the session if there is none (the first table, or after it died). */
  private start(): void {
    if (this.session || this.connecting || this.reconnect || this.stopped) return;
    this.connecting = this.open().finally(() => (this.connecting = undefined));
  }

  private async open(): Promise<void> {
    this.setSession({ state: "connecting" });
    let session: AgentSession | undefined;
    let diedEarly: NgrokError | undefined;
    try {
      session = await this.options.connect({
        ...this.options.agent,
        // A session can die before connect() has handed it over (a stop command at once).
        onDead: (error) => (session ? this.lost(session, error) : (diedEarly = error)),
        onReconnecting: (attempt) => this.options.log("warn", "the connection to ngrok dropped; the agent is reconnecting", { attempt }),
      });
    } catch (error) {
      const failure = error instanceof NgrokError ? error : new NgrokError("transport", String(error));
      this.sessionFailures++;
      this.setSession({ state: "offline", reason: failure.reason, message: failure.message });
      this.options.log("warn", "could not open the ngrok session", { reason: failure.reason, code: failure.code, error: failure.message });
      this.retrySession(failure);
      return;
    }
    if (this.stopped) return void session.close().catch(() => undefined);
    this.session = session;
    if (diedEarly) return this.lost(session, diedEarly);
    this.sessionFailures = 0;
    this.setSession({ state: "online" });
    this.options.log("info", "ngrok session online");
    this.schedule();
  }

  /** The session died: every endpoint is offline until a new session has bound it again. */
  private lost(session: AgentSession, error: NgrokError): void {
    if (this.stopped || this.session !== session) return;
    this.options.log("warn", "the ngrok session was lost", { reason: error.reason, error: error.message });
    this.session = undefined;
    void session.close().catch(() => undefined);
    for (const b of this.bound.values()) {
      clearTimeout(b.retry);
      b.retry = undefined;
      b.endpoint = undefined;
      b.report = { online: false, reason: "SessionLost", message: "the agent session is reconnecting" };
    }
    this.sessionFailures++;
    this.setSession({ state: "offline", reason: error.reason, message: error.message });
    this.retrySession(error);
  }

  private retrySession(error: NgrokError): void {
    // Even "never" errors (a revoked token) are tried again slowly: the Secret may be fixed.
    const delay = retryDelayMs(error.retryable ? (error.reason === "SessionLimitExceeded" ? "slow" : "backoff") : "slow", this.sessionFailures - 1, this.options.random);
    clearTimeout(this.reconnect);
    this.reconnect = setTimeout(() => {
      this.reconnect = undefined;
      this.start();
    }, delay ?? 600_000);
  }

  private schedule(): void {
    this.syncing = this.syncing.then(() => this.sync()).catch((error: unknown) => this.options.log("error", "endpoint sync failed", { error: String(error) }));
  }

  /** Brings the bound endpoints to the table's. */
  private async sync(): Promise<void> {
    if (this.stopped || !this.table) return;
    const wanted = new Map(this.table.endpoints.filter((e) => e.pooling || e.servedBy === this.options.pod).map((e) => [e.id, e]));
    for (const [id, b] of this.bound) {
      if (wanted.has(id)) continue;
      await this.unbind(b);
      this.bound.delete(id);
      this.changed();
    }
    for (const spec of wanted.values()) {
      const hash = specHash(spec);
      const current = this.bound.get(spec.id);
      if (current && current.hash === hash) {
        if (!current.endpoint && !current.retry && this.session) await this.bind(current);
        continue;
      }
      // Changed: an unpooled endpoint must go before its successor can take the URL.
      if (current) await this.unbind(current);
      const b: Bound = { spec, hash, report: { online: false, reason: "Pending", message: "binding" }, failures: 0 };
      this.bound.set(spec.id, b);
      if (this.session) await this.bind(b);
      this.changed();
    }
  }

  private async bind(b: Bound): Promise<void> {
    const session = this.session;
    if (!session || this.stopped) return;
    try {
      const forwardTo = await this.forwardTarget(b);
      const options: EndpointOptions = {
        proto: b.spec.proto,
        pooling: b.spec.pooling,
        metadata: b.spec.metadata,
        forwardTo,
        ...(b.spec.domain ? { domain: b.spec.domain } : {}),
        ...(b.spec.remoteAddr ? { remoteAddr: b.spec.remoteAddr } : {}),
        ...(b.spec.proxyProto ? { proxyProto: b.spec.proxyProto } : {}),
      };
      const endpoint = await session.bind(options, this.options.bindTimeoutMs);
      if (this.bound.get(b.spec.id) !== b || this.session !== session) {
        await endpoint.close();
        return;
      }
      b.endpoint = endpoint;
      b.failures = 0;
      b.report = { online: true, url: endpoint.url };
      this.changed();
      void endpoint.closed.then((why) => this.endpointClosed(b, endpoint, why));
    } catch (error) {
      const failure = error instanceof NgrokError ? error : new NgrokError("bind", String(error));
      b.failures++;
      b.report = { online: false, reason: failure.reason, message: failure.message };
      this.options.log("warn", "could not start an endpoint", { endpoint: b.spec.id, reason: failure.reason, code: failure.code, error: failure.message });
      this.changed();
      this.retryBind(b, failure);
    }
  }

  /** ngrok stopped the endpoint (or the session went): re-create it, with backoff. */
  private endpointClosed(b: Bound, endpoint: AgentEndpoint, why: NgrokError): void {
    if (this.stopped || b.endpoint !== endpoint || this.bound.get(b.spec.id) !== b) return;
    b.endpoint = undefined;
    b.failures++;
    b.report = { online: false, reason: why.code ? why.reason : "EndpointStopped", message: why.message };
    this.options.log("warn", "an endpoint was closed by ngrok", { endpoint: b.spec.id, code: why.code, error: why.message });
    this.changed();
    this.retryBind(b, why);
  }

  private retryBind(b: Bound, failure: NgrokError): void {
    const delay = retryDelayMs(failure.retryable ? "backoff" : "slow", b.failures - 1, this.options.random) ?? 600_000;
    clearTimeout(b.retry);
    b.retry = setTimeout(() => {
      b.retry = undefined;
      if (this.bound.get(b.spec.id) === b && !b.endpoint) this.syncing = this.syncing.then(() => this.bind(b)).catch(() => undefined);
    }, delay);
  }

  private async unbind(b: Bound): Promise<void> {
    clearTimeout(b.retry);
    b.retry = undefined;
    const endpoint = b.endpoint;
    b.endpoint = undefined;
    await endpoint?.close();
    await b.router?.server.close();
    b.router = undefined;
  }

  /** Where the agent forwards: the Service itself, or the local path router for several paths. */
  private async forwardTarget(b: Bound): Promise<string> {
    const routes = b.spec.routes.map((r) => ({ path: r.path, upstream: this.override(r.upstream) }));
    if (b.spec.proto !== "http" || (routes.length === 1 && routes[0]!.path === "/")) return routes[0]!.upstream;
    if (!b.router) {
      const server = new PathRouter(routes);
      b.router = { server, url: await server.listen() };
    }
    return b.router.url;
  }

  private override(upstream: string): string {
    const url = new URL(upstream);
    const port = url.port || (url.protocol === "https:" ? "443" : "80");
    const to = this.options.upstreamOverrides?.[`${url.hostname}:${port}`];
    return to ? `${url.protocol}//${to}` : upstream;
  }

  private setSession(report: SessionReport): void {
    this.sessionReport = report;
    this.changed();
  }

  private changed(): void {
    this.options.onReport(this.report());
  }

  /** Closes every endpoint and the session (SIGTERM: ngrok moves the traffic to the other replicas at once). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnect);
    await this.syncing.catch(() => undefined);
    for (const b of this.bound.values()) await this.unbind(b);
    await this.session?.close();
    this.session = undefined;
  }
}
