// The account side of agent sessions: what Auth, Bind and Unbind do to the shared
// Account (sessions and endpoints recorded there for the REST side to serve), which live
// connection serves which session, and what ending a session or an endpoint removes.
import { randomBytes } from "node:crypto";
import type { Account, Endpoint } from "../account.ts";
import type { AgentConnection } from "./agent-connection.ts";
import { isWellFormedAuthtoken } from "./authtoken.ts";
import { type BindPlan, planBind, unimplementedInBind } from "./bind-rules.ts";
import {
  authtokenInvalid,
  authtokenMalformed,
  authtokenMissing,
  NgrokRpcError,
  notImplemented,
  sessionLimit,
  unsupportedProtocolVersion,
} from "./ngrok-errors.ts";
import { monotonicNow, type SessionEvent } from "./rpc-log.ts";
import { shapeProblems } from "./shape-check.ts";
import {
  AUTH_RULE,
  type AuthRequest,
  type AuthResponse,
  type BindRequest,
  type BindResponse,
  PROTOCOL_VERSIONS,
  StreamType,
  UNBIND_RULE,
  type UnbindRequest,
} from "./wire.ts";

export interface RegistryHooks {
  /** Endpoints were added or removed: open or close public TCP listeners to match. */
  endpointsChanged(): Promise<void>;
  allocateTcpAddr(): Promise<string>;
  violation(connection: AgentConnection | undefined, message: string): void;
  event(event: SessionEvent): void;
}

/** A bound endpoint as the router needs it: the account's record plus how to carry its traffic. */
export interface Route {
  endpoint: Endpoint;
  plan: BindPlan;
  connection: AgentConnection;
}

export const ACCOUNT_NAME = "fake-ngrok";

export class SessionRegistry {
  private readonly account: Account;
  private readonly hooks: RegistryHooks;
  private readonly bySession = new Map<string, AgentConnection>();
  private readonly plans = new Map<string, BindPlan>(); // by endpoint id
  /** A random TCP endpoint keeps its address across reconnects, as its URL must. */
  private readonly tcpAddrByTunnel = new Map<string, string>();

  constructor(account: Account, hooks: RegistryHooks) {
    this.account = account;
    this.hooks = hooks;
  }

  /** The live connection serving a session. */
  connectionOf(sessionId: string): AgentConnection | undefined {
    const connection = this.bySession.get(sessionId);
    return connection?.alive ? connection : undefined;
  }

  get liveConnections(): AgentConnection[] {
    return [...this.bySession.values()].filter((c) => c.alive);
  }

  /** Every online endpoint whose session is connected here, with how to reach it. */
  routes(): Route[] {
    const out: Route[] = [];
    for (const endpoint of this.account.endpoints.values()) {
      const plan = this.plans.get(endpoint.id);
      const connection = this.connectionOf(endpoint.sessionId);
      if (plan && connection) out.push({ endpoint, plan, connection });
    }
    return out;
  }

  async rpc(connection: AgentConnection, type: number, request: unknown): Promise<unknown> {
    if (type === StreamType.Auth) return this.auth(connection, request as AuthRequest);
    if (!connection.sessionId) {
      this.hooks.violation(connection, "an RPC before Auth");
      throw new NgrokRpcError("Authenticate first.");
    }
    if (type === StreamType.Bind) return this.bind(connection, request as BindRequest);
    if (type === StreamType.Unbind) return this.unbind(connection, request as UnbindRequest);
    this.refuse(connection, ["labeled tunnels (BindLabeled): the legacy edges model"]);
  }

  private refuse(connection: AgentConnection, what: string[]): never {
    for (const problem of what) this.hooks.violation(connection, problem);
    throw notImplemented(what);
  }

  private async auth(connection: AgentConnection, request: AuthRequest): Promise<AuthResponse> {
    const problems = shapeProblems(request, AUTH_RULE, "Auth");
    if (problems.length > 0) this.refuse(connection, problems);
    if (connection.sessionId) this.refuse(connection, ["a second Auth on one connection"]);
    const offered = request.Version ?? [];
    const version = offered.find((v) => (PROTOCOL_VERSIONS as readonly string[]).includes(v));
    if (!version) throw unsupportedProtocolVersion(offered);
    const extra = request.Extra ?? {};
    const token = extra.AuthToken ?? "";
    if (token === "") throw authtokenMissing();
    if (!isWellFormedAuthtoken(token)) throw authtokenMalformed();
    if (!this.account.authtokens.has(token)) throw authtokenInvalid();

    // Reconnects present the old session id (ClientId). ngrok resumes it, so the session
    // keeps its id; a connection still holding it is a dead one the agent gave up on.
    const clientId = request.ClientId ?? "";
    const known = this.account.sessions.get(clientId);
    const resumes = clientId !== "" && (known ? known.authtoken === token : clientId.startsWith("ts_"));
    if (resumes) {
      const stale = this.bySession.get(clientId);
      if (stale && stale !== connection) {
        stale.kill("replaced: the agent resumed this session on a new connection");
        this.removeSession(clientId, stale);
      }
    }
    if (this.account.sessions.size >= this.account.limits.maxSessions) throw sessionLimit(this.account.limits.maxSessions);

    const sessionId = resumes ? clientId : this.account.newId("ts");
    this.account.sessions.set(sessionId, {
      id: sessionId,
      authtoken: token,
      metadata: extra.Metadata ?? "",
      agentVersion: extra.Version ?? "",
      os: extra.OS ?? "",
      ip: connection.remoteAddr,
      region: this.account.region,
      startedAt: known?.startedAt ?? new Date().toISOString(),
    });
    this.bySession.set(sessionId, connection);
    connection.sessionId = sessionId;
    // The SDK sends nanoseconds (defaults 10 s and 15 s).
    const nanos = (value: number | undefined, fallbackMs: number): number => (value && value > 0 ? value / 1e6 : fallbackMs);
    connection.watchHeartbeats(nanos(extra.HeartbeatInterval, 10_000), nanos(extra.HeartbeatTolerance, 15_000));
    this.hooks.event({ at: monotonicNow(), connection: connection.id, sessionId, event: resumes ? "resumed" : "authenticated" });
    return {
      Version: version,
      ClientId: sessionId,
      Extra: {
        Version: "fake-ngrok",
        Region: this.account.region,
        Cookie: randomBytes(16).toString("hex"),
        AccountName: ACCOUNT_NAME,
        SessionDuration: 0,
        PlanName: this.account.limits.pooling && this.account.limits.tlsEndpoints ? "Pay-as-you-go" : "Free",
        Banner: null,
      },
    };
  }

  private async bind(connection: AgentConnection, request: BindRequest): Promise<BindResponse> {
    const problems = unimplementedInBind(request);
    if (problems.length > 0) this.refuse(connection, problems);
    const sessionId = connection.sessionId!;
    const tunnelId = request.Id || this.account.newId("tun");
    const plan = await planBind(request, {
      account: this.account,
      accountName: ACCOUNT_NAME,
      tunnelId,
      previousTcpAddr: request.Opts?.Addr ? undefined : this.tcpAddrByTunnel.get(tunnelId),
      allocateTcpAddr: () => this.hooks.allocateTcpAddr(),
    });
    if (!connection.alive) throw new NgrokRpcError("session closed while binding");
    for (const old of this.account.endpoints.values()) if (old.tunnelId === tunnelId) this.dropEndpoint(old);
    const endpoint: Endpoint = {
      id: this.account.newId("ep"),
      tunnelId,
      sessionId,
      url: plan.url,
      proto: plan.proto,
      hostport: plan.hostport,
      pooling: plan.pooling,
      binding: "public",
      metadata: request.Extra?.Metadata ?? "",
      forwardsTo: request.ForwardsTo ?? "",
      createdAt: new Date().toISOString(),
    };
    this.account.endpoints.set(endpoint.id, endpoint);
    this.plans.set(endpoint.id, plan);
    if (plan.proto === "tcp" && !request.Opts?.Addr) this.tcpAddrByTunnel.set(tunnelId, plan.hostport);
    try {
      await this.hooks.endpointsChanged();
    } catch (error) {
      this.dropEndpoint(endpoint);
      throw new NgrokRpcError(`fake-ngrok could not listen for ${plan.url}: ${(error as Error).message}`);
    }
    return { Id: tunnelId, URL: plan.url, Proto: request.Proto ?? plan.proto, Opts: request.Opts ?? {}, Extra: { Token: "" } };
  }

  private async unbind(connection: AgentConnection, request: UnbindRequest): Promise<Record<string, never>> {
    const problems = shapeProblems(request, UNBIND_RULE, "Unbind");
    if (problems.length > 0) this.refuse(connection, problems);
    for (const endpoint of this.account.endpoints.values()) {
      if (endpoint.tunnelId === request.Id && endpoint.sessionId === connection.sessionId) this.dropEndpoint(endpoint);
    }
    this.tcpAddrByTunnel.delete(request.Id ?? "");
    await this.hooks.endpointsChanged();
    return {};
  }

  /** A connection's transport is gone: its session ends (unless a newer connection already took it over). */
  connectionClosed(connection: AgentConnection, reason: string): void {
    this.hooks.event({ at: monotonicNow(), connection: connection.id, sessionId: connection.sessionId, event: "closed", detail: reason });
    if (connection.sessionId) this.removeSession(connection.sessionId, connection);
  }

  /** Stops one endpoint server-side (StopTunnel to its agent) and takes it offline. */
  stopEndpoint(endpoint: Endpoint, message: string, errorCode: string | null): boolean {
    const connection = this.connectionOf(endpoint.sessionId);
    if (!connection) return false;
    connection.stopTunnel(endpoint.tunnelId, message, errorCode);
    this.dropEndpoint(endpoint);
    this.tcpAddrByTunnel.delete(endpoint.tunnelId);
    void this.hooks.endpointsChanged().catch(() => undefined);
    return true;
  }

  private removeSession(sessionId: string, connection: AgentConnection): void {
    if (this.bySession.get(sessionId) !== connection) return;
    this.bySession.delete(sessionId);
    this.account.sessions.delete(sessionId);
    for (const endpoint of this.account.endpoints.values()) if (endpoint.sessionId === sessionId) this.dropEndpoint(endpoint);
    void this.hooks.endpointsChanged().catch(() => undefined);
  }

  private dropEndpoint(endpoint: Endpoint): void {
    this.account.endpoints.delete(endpoint.id);
    this.plans.delete(endpoint.id);
  }
}
