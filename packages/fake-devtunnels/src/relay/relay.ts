// Relay: a stand-in for the Dev Tunnels relay (`<cluster>-data.rel.tunnels.api.visualstudio.com`)
// that the real, unmodified `TunnelRelayTunnelHost` connects to, plus the public web-forwarding
// side, plus the faults tests inject.
//
//   const relay = new Relay(service);
//   await relay.start();
//   // the management API answers updateTunnelEndpoint with { hostRelayUri: relay.hostRelayUri(id) }
//   await host.connect(tunnel);
//   await fetch(`http://127.0.0.1:${relay.publicHttpPort}/`, { headers: { host: webForwardingHost(id, 8080, service.clusterId) } });
import { createServer, type Server } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { SshDisconnectReason } from "@microsoft/dev-tunnels-ssh";
import type { DevTunnelsService } from "../service.ts";
import { HOST_PROTOCOL_V1, HOST_PROTOCOL_V2, type HostConnection, HostConnectionV1, HostConnectionV2, type HostConnectionHooks, type HostProtocol } from "./host-connection.ts";
import { createWebForwardingServer, DEFAULT_WEB_FORWARDING_DOMAIN, type WebForwardRecord, webForwardingHost } from "./web-forwarding.ts";
import { createWsServer, HostTransport, type WsRequest, type WsServer } from "./websocket.ts";

export interface RelayOptions {
  /** Subprotocols the relay accepts from hosts, in its order of preference. Default: V2, then V1 (as the service). */
  hostProtocols?: HostProtocol[];
  /** The web-forwarding domain: hosts are `<tunnelId>-<port>.<clusterId>.<domain>`. Default `devtunnels.ms`. */
  webForwardingDomain?: string;
  /** Web-forwarding request timeout unless the port or tunnel sets `requestTimeoutSeconds`. Default 100 s (the service's). */
  requestTimeoutMs?: number;
  /** How long a client waits for the host to forward a port it does not forward yet. Default 2 s. */
  portWaitMs?: number;
}

export interface RelayStartOptions {
  /** The host (websocket) port. Default: the previous start's, else a free one. */
  port?: number;
  /** The public web-forwarding port. Default: the previous start's, else a free one. */
  publicHttpPort?: number;
}

export type RelayEventKind =
  | "host-connected"
  | "host-disconnected"
  | "host-replaced"
  | "host-rejected"
  | "host-dropped"
  | "host-silenced"
  | "host-resumed"
  | "port-forwarded"
  | "port-unforwarded";

export interface RelayEvent {
  at: number;
  tunnelId: string;
  /** The host connection (1, 2, …); 0 for a websocket refused before one existed. */
  connection: number;
  event: RelayEventKind;
  protocol?: HostProtocol;
  /** A port number, an HTTP status, a disconnect reason, an error. */
  detail?: string;
}

const HOST_PATH = /^\/api\/v1\/Host\/Connect\/([^/]+)\/?$/i;
const CLIENT_PATH = /^\/api\/v1\/Client\/Connect\/([^/]+)\/?$/i;
const REJECTION_REASONS: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  429: "Too Many Requests",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

export class Relay {
  readonly service: DevTunnelsService;
  /** Requests and behaviour the fake does not implement, and protocol breaches. Tests assert this stays empty. */
  readonly violations: string[] = [];
  /** Host connections, replacements, faults and forwarded ports, in order. */
  readonly events: RelayEvent[] = [];
  /** Every web-forwarding request. */
  readonly webRequests: WebForwardRecord[] = [];
  /** Subprotocols accepted from hosts, in preference order (change it to force V1 or V2). */
  hostProtocols: HostProtocol[];
  readonly webForwardingDomain: string;
  /** Web-forwarding request timeout (changeable at any time). */
  requestTimeoutMs: number;
  /** How long a client waits for the host to forward its port (changeable at any time). */
  portWaitMs: number;

  private readonly hosts = new Map<string, HostConnection>();
  private readonly connections = new Set<HostConnection>();
  private readonly rejections = new Map<string, number[]>();
  private readonly publicSockets = new Set<Socket>();
  private hostServer?: Server;
  private wsServer?: WsServer;
  private publicServer?: Server;
  private ports = { host: 0, public: 0 };
  private connectionCount = 0;

  constructor(service: DevTunnelsService, options: RelayOptions = {}) {
    this.service = service;
    this.hostProtocols = options.hostProtocols ?? [HOST_PROTOCOL_V2, HOST_PROTOCOL_V1];
    this.webForwardingDomain = options.webForwardingDomain ?? DEFAULT_WEB_FORWARDING_DOMAIN;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 100_000;
    this.portWaitMs = options.portWaitMs ?? 2_000;
    service.relay = { dropHost: (id) => this.dropHost(id), hostConnected: (id) => this.hostConnected(id) };
  }

  /** Opens the host (websocket) port and the public web-forwarding port on 127.0.0.1. */
  async start(options: RelayStartOptions = {}): Promise<void> {
    if (this.hostServer) throw new Error("Relay already started");
    const hostServer = createServer((_req, res) => {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("This is the relay's host endpoint: connect with a websocket.\n");
    });
    const wsServer = createWsServer(hostServer);
    wsServer.on("request", (request) => this.onHostRequest(request));
    const relay = this;
    const publicServer = createWebForwardingServer({
      service: this.service,
      domain: this.webForwardingDomain,
      get requestTimeoutMs() {
        return relay.requestTimeoutMs;
      },
      get portWaitMs() {
        return relay.portWaitMs;
      },
      records: this.webRequests,
      hostOf: (tunnelId) => this.hosts.get(tunnelId),
      violation: (message) => this.violations.push(message),
    });
    publicServer.on("connection", (socket: Socket) => {
      this.publicSockets.add(socket);
      socket.once("close", () => this.publicSockets.delete(socket));
    });
    this.ports = {
      host: await listen(hostServer, options.port ?? this.ports.host),
      public: await listen(publicServer, options.publicHttpPort ?? this.ports.public),
    };
    this.hostServer = hostServer;
    this.wsServer = wsServer;
    this.publicServer = publicServer;
  }

  /**
   * Stops the relay as a crash would: every host's transport is cut (the SDK sees
   * `connectionLost` and keeps reconnecting), public connections are dropped, the ports close.
   * `start()` again reopens the same ports.
   */
  async close(): Promise<void> {
    const servers = [this.hostServer, this.publicServer];
    this.hostServer = this.publicServer = undefined;
    this.wsServer = undefined;
    this.hosts.clear();
    for (const connection of this.connections) connection.transport.cut();
    this.connections.clear();
    for (const socket of this.publicSockets) socket.destroy();
    this.publicSockets.clear();
    await Promise.all(
      servers.map((server) =>
        server
          ? new Promise<void>((resolve) => {
              server.close(() => resolve());
              server.closeAllConnections();
            })
          : undefined,
      ),
    );
  }

  get port(): number {
    return this.ports.host;
  }

  /** The public web-forwarding port (plain HTTP on 127.0.0.1; route with the Host header). */
  get publicHttpPort(): number {
    return this.ports.public;
  }

  get publicHttpUrl(): string {
    return `http://127.0.0.1:${this.ports.public}`;
  }

  /** What the management API returns as the endpoint's `hostRelayUri`. */
  hostRelayUri(tunnelId: string): string {
    return `ws://localhost:${this.requirePort()}/api/v1/Host/Connect/${encodeURIComponent(tunnelId)}`;
  }

  /** The endpoint's `clientRelayUri` (SDK clients through the relay are not implemented: they get 501 and a violation). */
  clientRelayUri(tunnelId: string): string {
    return `ws://localhost:${this.requirePort()}/api/v1/Client/Connect/${encodeURIComponent(tunnelId)}`;
  }

  /** The web-forwarding host name of a port (what `portForwardingUris` name). */
  webForwardingHost(tunnelId: string, port: number): string {
    return webForwardingHost(tunnelId, port, this.service.clusterId, this.webForwardingDomain);
  }

  /** A URL that reaches the port through this fake: `http://<webForwardingHost>:<publicHttpPort>/` (resolve the name to 127.0.0.1, or send it as Host). */
  portForwardingUri(tunnelId: string, port: number): string {
    return `http://${this.webForwardingHost(tunnelId, port)}:${this.ports.public}/`;
  }

  hostConnected(tunnelId: string): boolean {
    return this.hosts.has(tunnelId);
  }

  /** The active host connection of a tunnel. */
  hostInfo(tunnelId: string): { connection: number; protocol: HostProtocol; connectedAt: number } | undefined {
    const host = this.hosts.get(tunnelId);
    return host && { connection: host.id, protocol: host.protocol, connectedAt: host.connectedAt };
  }

  /** The ports the active host forwards to the relay (V1: opens the relay's client session first). */
  async hostedPorts(tunnelId: string): Promise<number[]> {
    return this.requireHost(tunnelId).hostedPorts();
  }

  /** A raw byte stream to a hosted port, bypassing web forwarding and access control (for tests). */
  connectToPort(tunnelId: string, port: number): Promise<Duplex> {
    return this.requireHost(tunnelId).openPort(port, { portWaitMs: this.portWaitMs, openTimeoutMs: this.requestTimeoutMs });
  }

  // ---- faults ----

  /** Cuts the active host's transport (no SSH disconnect, no close frame): the SDK reconnects. */
  dropHost(tunnelId: string): boolean {
    const host = this.hosts.get(tunnelId);
    if (!host) return false;
    this.hosts.delete(tunnelId);
    this.event(host, "host-dropped");
    host.transport.cut();
    return true;
  }

  /**
   * Silences (or revives) the active host's connection: the relay stops reading from it and
   * holds what it would send, as a network partition would; the SDK notices nothing (no
   * keep-alive on the host connection). Web requests time out with 504. Turning it off
   * delivers what was held.
   */
  silentHost(tunnelId: string, on: boolean): boolean {
    const host = this.hosts.get(tunnelId);
    if (!host) return false;
    host.transport.stall(on);
    this.event(host, on ? "host-silenced" : "host-resumed");
    return true;
  }

  /**
   * Refuses the next `times` host websocket upgrades for a tunnel with `status` (429, 502 and
   * 503 make the SDK retry, waiting at least 6.5 s unless its retrying event shortens it; 404
   * and 403 make it give up; 401 makes it refresh its token once).
   */
  rejectNextHost(tunnelId: string, status: number, times = 1): void {
    const queue = this.rejections.get(tunnelId) ?? [];
    for (let i = 0; i < times; i++) queue.push(status);
    this.rejections.set(tunnelId, queue);
  }

  // ---- internals ----

  private requirePort(): number {
    if (!this.ports.host) throw new Error("Relay not started");
    return this.ports.host;
  }

  private requireHost(tunnelId: string): HostConnection {
    const host = this.hosts.get(tunnelId);
    if (!host) throw new Error(`no host connected for tunnel ${tunnelId}`);
    return host;
  }

  private event(host: HostConnection | { id: number; tunnelId: string; protocol?: HostProtocol }, event: RelayEventKind, detail?: string): void {
    this.events.push({ at: Date.now(), tunnelId: host.tunnelId, connection: host.id, event, protocol: host.protocol, ...(detail === undefined ? {} : { detail }) });
  }

  private reject(request: WsRequest, tunnelId: string, status: number, message: string): void {
    this.event({ id: 0, tunnelId }, "host-rejected", `${status} ${message}`);
    request.reject(status, REJECTION_REASONS[status] ?? "Error", { "content-type": "text/plain" });
  }

  private onHostRequest(request: WsRequest): void {
    const path = new URL(request.resource, "http://relay").pathname;
    const client = CLIENT_PATH.exec(path);
    if (client) {
      this.violations.push(`an SDK client connected to ${path}: client connections through the relay are not implemented (use web forwarding or connectToPort)`);
      request.reject(501, REJECTION_REASONS[501]);
      return;
    }
    const match = HOST_PATH.exec(path);
    if (!match) {
      request.reject(404, REJECTION_REASONS[404]);
      return;
    }
    let tunnelId: string;
    try {
      tunnelId = decodeURIComponent(match[1]!);
    } catch {
      request.reject(400, REJECTION_REASONS[400]);
      return;
    }
    const injected = this.rejections.get(tunnelId)?.shift();
    if (injected !== undefined) {
      this.reject(request, tunnelId, injected, "injected by the test");
      return;
    }
    const stored = this.service.tunnels.get(tunnelId);
    if (!stored) {
      this.reject(request, tunnelId, 404, "tunnel not found");
      return;
    }
    const token = /^tunnel\s+(\S+)\s*$/i.exec(request.httpRequest.headers.authorization ?? "")?.[1];
    if (!token || !this.service.tokenGrants(stored, token, "host")) {
      const grant = token === undefined ? undefined : stored.tokens.get(token);
      const known = grant !== undefined && grant.expires > this.service.now();
      this.reject(request, tunnelId, known ? 403 : 401, known ? "token lacks the host scope" : "no valid host token");
      return;
    }
    const requested = request.requestedProtocols;
    const protocol = this.hostProtocols.find((p) => requested.includes(p));
    if (!protocol) {
      if (!requested.some((p) => p === HOST_PROTOCOL_V1 || p === HOST_PROTOCOL_V2)) {
        this.violations.push(`host for ${tunnelId} offered subprotocols [${requested.join(", ")}], none of which the relay knows`);
      }
      this.reject(request, tunnelId, 400, `no acceptable subprotocol in [${requested.join(", ")}] (relay accepts [${this.hostProtocols.join(", ")}])`);
      return;
    }
    const transport = new HostTransport(request.accept(protocol));
    const id = ++this.connectionCount;
    const hooks: HostConnectionHooks = {
      isHostToken: (t) => {
        const current = this.service.tunnels.get(tunnelId);
        return current !== undefined && this.service.tokenGrants(current, t, "host");
      },
      violation: (message) => this.violations.push(`host connection ${id} (${tunnelId}): ${message}`),
      portForwarded: (port) => this.event(host, "port-forwarded", String(port)),
      portUnforwarded: (port) => this.event(host, "port-unforwarded", String(port)),
      closed: (reason, message) => {
        this.connections.delete(host);
        if (this.hosts.get(tunnelId) === host) this.hosts.delete(tunnelId);
        this.event(host, "host-disconnected", `${SshDisconnectReason[reason] ?? reason}: ${message}`);
      },
    };
    const host: HostConnection =
      protocol === HOST_PROTOCOL_V1 ? new HostConnectionV1(id, tunnelId, transport, hooks) : new HostConnectionV2(id, tunnelId, transport, hooks);
    this.connections.add(host);
    // The host counts as connected once its websocket is accepted (clients wait for its
    // handshake); a handshake that fails cuts the connection.
    const previous = this.hosts.get(tunnelId);
    this.hosts.set(tunnelId, host);
    this.event(host, "host-connected", transport.remoteAddress);
    host.connect().catch(() => host.transport.cut()); // reported as host-disconnected
    if (previous) {
      // One host per tunnel: the newest wins; the SDK then refuses to reconnect the older one.
      this.event(previous, "host-replaced", `by connection ${host.id}`);
      void this.replace(previous);
    }
  }

  private async replace(previous: HostConnection): Promise<void> {
    try {
      await previous.connect();
      await previous.disconnect(SshDisconnectReason.tooManyConnections, "Another host for the tunnel has connected.");
    } catch {
      previous.transport.cut();
    }
  }
}

async function listen(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("server has no TCP address");
  return address.port;
}
