// AgentIngress: a stand-in for ngrok's agent ingress (connect.ngrok-agent.com:443) that
// the real, unmodified @ngrok/ngrok SDK connects to, plus the public side that sends
// traffic to the agents' endpoints, plus the faults tests inject.
//
//   const ingress = new AgentIngress(account);
//   await ingress.start();
//   const session = await new SessionBuilder().authtoken(token)
//     .serverAddr(ingress.serverAddr).caCert(ingress.caCert).connect();
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from "node:tls";
import type { Server } from "node:net";
import type { Account, Endpoint } from "../account.ts";
import { AgentConnection } from "./agent-connection.ts";
import { createTestCa, type IssuedCert, type TestCa } from "./certs.ts";
import { closeServer, listen, publicHttpServer, publicTlsServer, SocketSet, TcpPorts } from "./public-listeners.ts";
import { monotonicNow, type ProxyRecord, type RpcRecord, type SessionEvent } from "./rpc-log.ts";
import { SessionRegistry } from "./session-registry.ts";
import { allocateTcpAddr, listenPortOf } from "./tcp-addrs.ts";
import { TrafficRouter } from "./traffic-router.ts";
import { type CommandResponse, StreamType } from "./wire.ts";

export interface AgentIngressStartOptions {
  /** The agent port (TLS). Default: the previous start's port, else a free one. */
  port?: number;
  /** The public HTTP port. Default: the previous start's, else a free one. */
  httpPort?: number;
  /** The public TLS (SNI) port. Default: the previous start's, else a free one. */
  tlsPort?: number;
}

export interface StopEndpointOptions {
  /** Default: "stopped via API". */
  message?: string;
  /** Default: ERR_NGROK_3200 (endpoint offline); null for none. */
  errorCode?: string | null;
}

export interface AgentIngressOptions {
  /** The CA to issue the agent port's certificate from (tests share one to save openssl runs). Default: a new one. */
  ca?: TestCa;
}

export class AgentIngress {
  readonly account: Account;
  /** Every RPC either way, in order. */
  readonly rpcs: RpcRecord[] = [];
  /** Every public connection handed to an agent. */
  readonly proxied: ProxyRecord[] = [];
  /** Connections, authentications, resumptions and closes. */
  readonly events: SessionEvent[] = [];
  /**
   * Protocol breaches and requests the fake refused because it does not implement them.
   * Tests assert this stays empty.
   */
  readonly violations: string[] = [];

  private readonly ca: TestCa;
  private readonly leaf: IssuedCert;
  private readonly sockets = new SocketSet();
  private readonly registry: SessionRegistry;
  private readonly router: TrafficRouter;
  private readonly tcpPorts: TcpPorts;
  private readonly connections = new Set<AgentConnection>();
  private agentServer?: TlsServer;
  private httpServer?: Server;
  private tlsServer?: Server;
  private ports = { agent: 0, http: 0, tls: 0 };
  private connectionCount = 0;
  private silentMode = false;

  constructor(account: Account, options: AgentIngressOptions = {}) {
    this.account = account;
    this.ca = options.ca ?? createTestCa("fake-ngrok agent ingress CA");
    this.leaf = this.ca.issue(["localhost", "127.0.0.1"]);
    this.registry = new SessionRegistry(account, {
      endpointsChanged: () => this.syncTcpPorts(),
      allocateTcpAddr,
      violation: (connection, message) => this.violations.push(connection ? `connection ${connection.id}: ${message}` : message),
      event: (event) => this.events.push(event),
    });
    this.router = new TrafficRouter(this.registry, this.proxied);
    this.tcpPorts = new TcpPorts(this.router, this.sockets);
    account.agentControl = { stopSession: (id) => this.stopSession(id) };
  }

  /** Opens the agent port and the public ports on 127.0.0.1. */
  async start(options: AgentIngressStartOptions = {}): Promise<this> {
    if (this.agentServer) throw new Error("AgentIngress already started");
    const agentServer = createTlsServer({ cert: this.leaf.certPem, key: this.leaf.keyPem }, (socket) => this.accept(socket));
    // A client that fails the handshake (wrong CA, plain TCP) is its own problem, not a violation.
    agentServer.on("tlsClientError", () => undefined);
    const httpServer = publicHttpServer(this.router, this.sockets);
    const tlsServer = publicTlsServer(this.router, this.sockets);
    this.ports = {
      agent: await listen(agentServer, options.port ?? this.ports.agent),
      http: await listen(httpServer, options.httpPort ?? this.ports.http),
      tls: await listen(tlsServer, options.tlsPort ?? this.ports.tls),
    };
    this.agentServer = agentServer;
    this.httpServer = httpServer;
    this.tlsServer = tlsServer;
    return this;
  }

  /**
   * Stops everything: agents see their transport drop (and start reconnecting), public
   * connections are cut, sessions and endpoints leave the account. `start()` again
   * reopens the same ports with the same CA.
   */
  async close(): Promise<void> {
    const servers = [this.agentServer, this.httpServer, this.tlsServer];
    this.agentServer = this.httpServer = this.tlsServer = undefined;
    for (const connection of this.connections) connection.kill("agent ingress stopped");
    this.sockets.destroyAll();
    await Promise.all(servers.map((s) => (s ? closeServer(s) : undefined)));
    await this.tcpPorts.closeAll();
  }

  /** The CA the agent must trust: `SessionBuilder.caCert(ingress.caCert)`. */
  get caCert(): Buffer {
    return Buffer.from(this.ca.caPem);
  }

  get caPem(): string {
    return this.ca.caPem;
  }

  /** The CA, for tests that need certificates of their own (TLS upstreams, termination). */
  get testCa(): TestCa {
    return this.ca;
  }

  /** `localhost:PORT`: `SessionBuilder.serverAddr(ingress.serverAddr)` (the certificate names localhost). */
  get serverAddr(): string {
    return `localhost:${this.ports.agent}`;
  }

  get port(): number {
    return this.ports.agent;
  }

  /** The public HTTP listener; send requests with a Host header naming the endpoint's domain. */
  get publicHttpUrl(): string {
    return `http://127.0.0.1:${this.ports.http}`;
  }

  get publicHttpPort(): number {
    return this.ports.http;
  }

  /** The public TLS port; connect with `servername` set to the endpoint's domain. */
  get publicTlsPort(): number {
    return this.ports.tls;
  }

  /** Ports open for TCP endpoints right now. */
  get publicTcpPorts(): number[] {
    return this.tcpPorts.ports;
  }

  /** Session ids with a live connection here. */
  get liveSessions(): string[] {
    return this.registry.liveConnections.map((c) => c.sessionId).filter((id): id is string => id !== undefined);
  }

  // ---- faults ----

  /**
   * Silent mode: TLS is accepted and muxado spoken, but Auth is never answered (connect()
   * never settles). Applies to Auth requests that arrive while it is on.
   */
  setSilent(on: boolean): void {
    this.silentMode = on;
  }

  /** Drops the transport of one session (or of every connection) without a word; returns how many. */
  killTransport(sessionId?: string): number {
    const targets = [...this.connections].filter((c) => c.alive && (sessionId === undefined || c.sessionId === sessionId));
    for (const connection of targets) connection.kill("transport killed by the test");
    return targets.length;
  }

  /** Stops (or resumes) echoing a session's heartbeats: the agent sees `handleHeartbeat(null)`. */
  dropHeartbeats(sessionId: string, on: boolean): void {
    this.connectionOf(sessionId).dropHeartbeats = on;
  }

  /**
   * Stops one endpoint server-side, as ngrok's API or dashboard does: a StopTunnel with
   * ERR_NGROK_3200 reaches the agent (its `listener.join()` rejects) and the endpoint goes
   * offline. SDK 1.7.0 ignores StopTunnel once its session has resumed after a reconnect
   * (see the README): `join()` then never settles. `which` is an endpoint id (`ep_…`), a tunnel id or a URL (the first match).
   */
  stopEndpoint(which: string, options: StopEndpointOptions = {}): Endpoint {
    const endpoint = [...this.account.endpoints.values()].find((e) => e.id === which || e.tunnelId === which || e.url === which);
    if (!endpoint) throw new Error(`no online endpoint ${which}`);
    const errorCode = options.errorCode === undefined ? "ERR_NGROK_3200" : options.errorCode;
    if (!this.registry.stopEndpoint(endpoint, options.message ?? "stopped via API", errorCode)) throw new Error(`endpoint ${which} has no live session`);
    return endpoint;
  }

  /** Sends the dashboard's Stop command; resolves with the agent's answer. */
  sendStop(sessionId: string): Promise<CommandResponse> {
    return this.connectionOf(sessionId).command(StreamType.Stop, {});
  }

  /** Sends the dashboard's Restart command; resolves with the agent's answer. */
  sendRestart(sessionId: string): Promise<CommandResponse> {
    return this.connectionOf(sessionId).command(StreamType.Restart, {});
  }

  /** Sends the dashboard's Update command; resolves with the agent's answer. */
  sendUpdate(sessionId: string, version = "", permitMajorVersion = false): Promise<CommandResponse> {
    return this.connectionOf(sessionId).command(StreamType.Update, { Version: version, PermitMajorVersion: permitMajorVersion });
  }

  /**
   * What POST /tunnel_sessions/{id}/stop does (installed as `account.agentControl`): the
   * Stop command, then the session is closed (GOAWAY). False when the session is not live.
   */
  stopSession(sessionId: string): boolean {
    const connection = this.registry.connectionOf(sessionId);
    if (!connection) return false;
    const answered = connection.command(StreamType.Stop, {}).catch(() => undefined);
    const timeout = new Promise((resolve) => setTimeout(resolve, 5000).unref());
    void Promise.race([answered, timeout]).then(() => connection.goAway("stopped"));
    return true;
  }

  // ---- internals ----

  private connectionOf(sessionId: string): AgentConnection {
    const connection = this.registry.connectionOf(sessionId);
    if (!connection) throw new Error(`no live session ${sessionId}`);
    return connection;
  }

  private accept(socket: TLSSocket): void {
    this.sockets.add(socket);
    const id = ++this.connectionCount;
    const connection = new AgentConnection(id, socket, {
      rpc: (c, type, request) => this.registry.rpc(c, type, request),
      isSilent: () => this.silentMode,
      record: (record) => this.rpcs.push(record),
      violation: (c, message) => this.violations.push(`connection ${c.id}: ${message}`),
      closed: (c, reason) => {
        this.connections.delete(c);
        this.registry.connectionClosed(c, reason);
      },
    });
    this.connections.add(connection);
    this.events.push({ at: monotonicNow(), connection: id, event: "connected", detail: connection.remoteAddr });
  }

  private async syncTcpPorts(): Promise<void> {
    if (!this.agentServer) return;
    const wanted = new Set<number>();
    for (const endpoint of this.account.endpoints.values()) {
      const port = endpoint.proto === "tcp" ? listenPortOf(endpoint.hostport) : undefined;
      if (port !== undefined && this.registry.connectionOf(endpoint.sessionId)) wanted.add(port);
    }
    await this.tcpPorts.sync(wanted);
  }
}
