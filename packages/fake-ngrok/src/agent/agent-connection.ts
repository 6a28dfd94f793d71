// One agent's TLS connection, at the protocol level: typed streams over muxado, RPC
// requests read and answered, heartbeats echoed, and the streams the fake opens to the
// agent (Proxy for inbound traffic; Stop, Restart, Update, StopTunnel commands). What the
// RPCs mean for the account is the handler's business (see session-registry.ts).
import type { TLSSocket } from "node:tls";
import { MuxError } from "./frame.ts";
import { MuxSession } from "./mux-session.ts";
import type { MuxStream } from "./mux-stream.ts";
import { NgrokRpcError } from "./ngrok-errors.ts";
import { monotonicNow, redact, type RpcRecord } from "./rpc-log.ts";
import { StreamReader } from "./stream-reader.ts";
import { type CommandResponse, type ProxyHeader, StreamType, streamTypeName } from "./wire.ts";

/** What a connection asks of the ingress. */
export interface ConnectionHandler {
  /** Answers an RPC the agent called (Auth, Bind, Unbind); throws NgrokRpcError to answer with an error. */
  rpc(connection: AgentConnection, type: number, request: unknown): Promise<unknown>;
  /** Silent mode: Auth is read and never answered. */
  isSilent(): boolean;
  record(record: RpcRecord): void;
  violation(connection: AgentConnection, message: string): void;
  closed(connection: AgentConnection, reason: string): void;
}

const typeBytes = (type: number): Buffer => {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(type >>> 0, 0);
  return bytes;
};

export class AgentConnection {
  readonly id: number;
  /** The agent's `ip:port` as seen here. */
  readonly remoteAddr: string;
  /** Set by the handler once Auth succeeded. */
  sessionId?: string;
  /** Fault: read heartbeats and never echo them. */
  dropHeartbeats = false;
  private readonly mux: MuxSession;
  private readonly handler: ConnectionHandler;
  private closeReason?: string;
  private lastHeartbeat = monotonicNow();
  private livenessTimer?: NodeJS.Timeout;

  constructor(id: number, socket: TLSSocket, handler: ConnectionHandler) {
    this.id = id;
    this.remoteAddr = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`;
    this.handler = handler;
    this.mux = new MuxSession(socket, {
      onStream: (stream) => void this.accept(stream),
      onClose: (reason) => {
        this.closeReason = reason;
        clearInterval(this.livenessTimer);
        handler.closed(this, reason);
      },
      onViolation: (message) => handler.violation(this, message),
    });
  }

  get alive(): boolean {
    return this.mux.alive;
  }

  get closedBecause(): string | undefined {
    return this.closeReason;
  }

  /**
   * Ends the session when the agent's heartbeats stop for longer than the interval plus
   * tolerance it announced in Auth, as ngrok's cloud does. This is how a session the SDK
   * closed goes away: `Session.close()` stops the agent's heartbeats but leaves the TCP
   * connection open. Suspended while heartbeats are being dropped (that fault models a
   * path broken only in the agent's direction).
   */
  watchHeartbeats(intervalMs: number, toleranceMs: number): void {
    const limit = intervalMs + toleranceMs;
    this.lastHeartbeat = monotonicNow();
    clearInterval(this.livenessTimer);
    this.livenessTimer = setInterval(() => {
      if (this.dropHeartbeats) this.lastHeartbeat = monotonicNow();
      else if (monotonicNow() - this.lastHeartbeat > limit) this.kill(`no heartbeat from the agent for ${limit} ms`);
    }, Math.min(500, limit / 4));
    this.livenessTimer.unref();
  }

  /** Drops the transport without a word (what a network failure looks like). */
  kill(reason = "transport killed by the test"): void {
    this.mux.kill(reason);
  }

  /** Closes the muxado session in order (GOAWAY), as ngrok does when it ends a session. */
  goAway(message = ""): void {
    this.mux.goAway(MuxError.None, message);
  }

  /** Opens a Proxy stream for one inbound connection; the caller pipes bytes both ways. */
  openProxy(header: ProxyHeader): MuxStream {
    const stream = this.mux.open();
    const json = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(8);
    length.writeBigInt64LE(BigInt(json.length), 0);
    stream.write(Buffer.concat([typeBytes(StreamType.Proxy), length, json]));
    return stream;
  }

  /**
   * Sends a dashboard command (Stop, Restart, Update) and resolves with the agent's
   * CommandResp: `{}` when it ran its handler, `{Error}` when it has none.
   */
  async command(type: typeof StreamType.Stop | typeof StreamType.Restart | typeof StreamType.Update, request: object): Promise<CommandResponse> {
    const record: RpcRecord = { at: monotonicNow(), connection: this.id, sessionId: this.sessionId, from: "fake", type: streamTypeName(type), request };
    this.handler.record(record);
    const stream = this.mux.open();
    const reader = new StreamReader(stream);
    stream.write(Buffer.concat([typeBytes(type), Buffer.from(JSON.stringify(request))]));
    try {
      const reply = (await reader.json()) as CommandResponse;
      record.reply = reply;
      if (reply.Error) record.error = { message: reply.Error };
      return reply;
    } finally {
      stream.end();
    }
  }

  /** Tells the agent one of its tunnels was stopped server-side; the agent does not answer. */
  stopTunnel(tunnelId: string, message: string, errorCode: string | null): void {
    const request = { Id: tunnelId, Message: message, ErrorCode: errorCode };
    this.handler.record({ at: monotonicNow(), connection: this.id, sessionId: this.sessionId, from: "fake", type: "StopTunnel", request });
    const stream = this.mux.open();
    stream.on("error", () => undefined);
    stream.end(Buffer.concat([typeBytes(StreamType.StopTunnel), Buffer.from(JSON.stringify(request))]));
    stream.resume(); // the agent only closes its side
  }

  private async accept(stream: MuxStream): Promise<void> {
    stream.on("error", () => undefined); // resets and session loss end streams; nothing to report
    const reader = new StreamReader(stream);
    let type: number;
    try {
      type = (await reader.exactly(4)).readUInt32BE(0);
    } catch {
      return; // the agent opened and closed a stream without typing it
    }
    if (type === StreamType.Heartbeat) {
      this.echoHeartbeats(stream, reader.detach());
      return;
    }
    if (type !== StreamType.Auth && type !== StreamType.Bind && type !== StreamType.Unbind && type !== StreamType.BindLabeled) {
      this.handler.violation(this, `the agent opened a stream of type ${streamTypeName(type)}, which only the server opens`);
      stream.abort(MuxError.StreamRefused);
      return;
    }
    let request: unknown;
    try {
      request = await reader.json();
    } catch (error) {
      // A stream already reset (for a breach reported when it happened) or a lost session is no news.
      if (this.alive && !stream.destroyed) this.handler.violation(this, `${streamTypeName(type)} request unreadable: ${(error as Error).message}`);
      stream.abort(MuxError.Protocol);
      return;
    }
    reader.detach();
    stream.resume();
    const record: RpcRecord = { at: monotonicNow(), connection: this.id, sessionId: this.sessionId, from: "agent", type: streamTypeName(type), request: redact(request) };
    this.handler.record(record);
    if (type === StreamType.Auth && this.handler.isSilent()) return; // never answered: connect() hangs
    let reply: unknown;
    try {
      reply = await this.handler.rpc(this, type, request);
      record.reply = redact(reply);
    } catch (error) {
      const rpcError = error instanceof NgrokRpcError ? error : new NgrokRpcError(`internal error in fake-ngrok: ${(error as Error).message}`);
      reply = rpcError.toWire();
      record.error = { ...(rpcError.code ? { code: rpcError.code } : {}), message: rpcError.message };
    }
    record.sessionId ??= this.sessionId;
    if (this.alive) stream.end(Buffer.from(JSON.stringify(reply)));
  }

  /** The agent writes 4-byte ids on its heartbeat stream; the server echoes each. */
  private echoHeartbeats(stream: MuxStream, already: Buffer): void {
    const echo = (chunk: Buffer): void => {
      this.lastHeartbeat = monotonicNow();
      if (!this.dropHeartbeats && this.alive) stream.write(chunk);
    };
    if (already.length > 0) echo(already);
    stream.on("data", echo);
    stream.resume();
  }
}
