// The one adapter to the `websocket` npm package (the SDK's own websocket library, which
// ships no types): its server, typed to the few members the relay uses, and a transport
// that lets the SSH library run over an accepted connection, with the faults the relay
// injects (a cut transport, a stalled one).
import { createRequire } from "node:module";
import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Socket } from "node:net";
import { WebSocketStream } from "@microsoft/dev-tunnels-ssh";

export interface WsMessage {
  type: "utf8" | "binary";
  binaryData?: Buffer;
  utf8Data?: string;
}

export interface WsConnection {
  readonly protocol: string | undefined;
  readonly socket: Socket;
  readonly connected: boolean;
  on(event: "message", listener: (message: WsMessage) => void): this;
  on(event: "close", listener: (code: number, description: string) => void): this;
  on(event: "error", listener: (error: Error) => void): this;
  sendBytes(data: Buffer): void;
  close(code?: number, description?: string): void;
  drop(code?: number, description?: string): void;
}

export interface WsRequest {
  readonly httpRequest: IncomingMessage;
  /** The request path with its query. */
  readonly resource: string;
  /** Sec-WebSocket-Protocol values, lower-cased, in the client's order. */
  readonly requestedProtocols: string[];
  accept(protocol: string | null, allowedOrigin?: string): WsConnection;
  reject(status?: number, reason?: string, extraHeaders?: Record<string, string>): void;
}

interface WsServerConfig {
  httpServer: HttpServer;
  autoAcceptConnections: boolean;
  keepalive: boolean;
  maxReceivedFrameSize: number;
  maxReceivedMessageSize: number;
}

export interface WsServer {
  on(event: "request", listener: (request: WsRequest) => void): this;
  shutDown(): void;
}

interface WebsocketModule {
  server: new (config: WsServerConfig) => WsServer;
}

const websocket = createRequire(import.meta.url)("websocket") as WebsocketModule;

/**
 * A websocket server on `httpServer` that leaves accepting to the caller. WS-level keepalive
 * pings are off: the hosted service's relay behaviour is unknown, and with pings a stalled
 * (silent) host would be dropped by the library rather than left half-open.
 */
export function createWsServer(httpServer: HttpServer): WsServer {
  return new websocket.server({
    httpServer,
    autoAcceptConnections: false,
    keepalive: false,
    maxReceivedFrameSize: 16 * 1024 * 1024,
    maxReceivedMessageSize: 16 * 1024 * 1024,
  });
}

/**
 * A host's websocket as an SSH transport. `stall(true)` stops reading from the socket and
 * queues what the relay would send, as a network partition does; `stall(false)` delivers the
 * queue and resumes. `cut()` destroys the TCP socket without a close frame.
 */
export class HostTransport {
  readonly stream: WebSocketStream;
  private readonly connection: WsConnection;
  private stalled = false;
  private queued: Buffer[] = [];

  constructor(connection: WsConnection) {
    this.connection = connection;
    connection.on("error", () => undefined);
    const transport = this;
    this.stream = new WebSocketStream({
      get protocol() {
        return connection.protocol;
      },
      set onmessage(handler: ((e: { data: ArrayBuffer }) => void) | null) {
        if (!handler) return;
        connection.on("message", (message) => {
          const data = message.binaryData;
          if (data) handler({ data: Uint8Array.from(data).buffer });
        });
      },
      get onmessage() {
        return null;
      },
      set onclose(handler: ((e: { code: number; reason: string; wasClean: boolean }) => void) | null) {
        if (!handler) return;
        connection.on("close", (code, reason) => handler({ code, reason, wasClean: code === 1000 }));
      },
      get onclose() {
        return null;
      },
      send(data: ArrayBuffer) {
        transport.send(Buffer.isBuffer(data) ? data : Buffer.from(data));
      },
      close(code?: number, reason?: string) {
        if (!connection.connected) return;
        if (code !== undefined || reason) connection.drop(code, reason);
        else connection.close();
      },
    });
  }

  get remoteAddress(): string {
    return `${this.connection.socket.remoteAddress ?? "?"}:${this.connection.socket.remotePort ?? "?"}`;
  }

  stall(on: boolean): void {
    if (on === this.stalled) return;
    this.stalled = on;
    if (on) {
      this.connection.socket.pause();
      return;
    }
    const queued = this.queued;
    this.queued = [];
    for (const data of queued) this.sendNow(data);
    this.connection.socket.resume();
  }

  /** Destroys the TCP connection: the host sees the transport drop (no close frame). */
  cut(): void {
    this.connection.socket.destroy();
  }

  /** A clean websocket close. */
  close(): void {
    if (this.connection.connected) this.connection.close();
  }

  private send(data: Buffer): void {
    if (this.stalled) this.queued.push(Buffer.from(data));
    else this.sendNow(data);
  }

  private sendNow(data: Buffer): void {
    if (this.connection.connected) this.connection.sendBytes(data);
  }
}
