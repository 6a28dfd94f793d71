// The server end of a muxado session over one agent's TLS connection: routes frames to
// streams, accepts the agent's streams (odd ids), opens the fake's own (even ids), and
// reports anything the agent does that muxado forbids.
import type { Duplex } from "node:stream";
import {
  encodeFrame,
  FLAG_SYN,
  type Frame,
  FRAME_DATA,
  FRAME_GOAWAY,
  FRAME_RST,
  FRAME_WNDINC,
  FrameDecoder,
  frameTypeName,
  goAwayFrame,
  headerProblem,
  MAX_STREAM_ID,
  MuxError,
  rstFrame,
} from "./frame.ts";
import { MuxStream, type StreamHost } from "./mux-stream.ts";

export interface MuxSessionHooks {
  /** The agent opened a stream. */
  onStream(stream: MuxStream): void;
  /** The transport is gone (either side closed it, or a GOAWAY came). Called once. */
  onClose(reason: string): void;
  /** The agent broke the muxado protocol. */
  onViolation(message: string): void;
}

export class MuxSession implements StreamHost {
  private readonly socket: Duplex;
  private readonly hooks: MuxSessionHooks;
  private readonly decoder = new FrameDecoder();
  private readonly streams = new Map<number, MuxStream>();
  /** Server-opened streams are even (muxado: the client's are odd). */
  private nextLocalId = 2;
  private lastRemoteId = 0;
  private closed = false;

  constructor(socket: Duplex, hooks: MuxSessionHooks) {
    this.socket = socket;
    this.hooks = hooks;
    socket.on("data", (chunk: Buffer) => {
      for (const frame of this.decoder.push(chunk)) {
        if (this.closed) return;
        this.handle(frame);
      }
    });
    socket.on("error", () => this.shutdown("transport error"));
    socket.on("end", () => this.shutdown("transport closed by the agent"));
    socket.on("close", () => this.shutdown("transport closed"));
  }

  get alive(): boolean {
    return !this.closed;
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** Opens a stream to the agent; its first write (the stream type) carries SYN. */
  open(): MuxStream {
    if (this.closed) throw new Error("muxado session closed");
    const id = this.nextLocalId;
    this.nextLocalId += 2;
    const stream = new MuxStream(this, id, "local");
    this.streams.set(id, stream);
    return stream;
  }

  send(frame: Frame): void {
    if (this.closed || this.socket.destroyed) return;
    this.socket.write(encodeFrame(frame));
  }

  release(stream: MuxStream): void {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
  }

  violation(message: string): void {
    this.hooks.onViolation(message);
  }

  /** Says GOAWAY (muxado's orderly close), then drops the transport. */
  goAway(code: number = MuxError.None, message = ""): void {
    if (this.closed) return;
    this.send(goAwayFrame(this.lastRemoteId, code, message));
    // end(), not destroy(): the GOAWAY must reach the agent before the transport goes.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.shutdown("closed by the fake (GOAWAY)", false);
  }

  /** Drops the transport without a word: what a network failure looks like to the agent. */
  kill(reason = "transport killed"): void {
    this.socket.destroy();
    this.shutdown(reason);
  }

  private handle(frame: Frame): void {
    const problem = headerProblem(frame);
    if (problem) {
      this.hooks.onViolation(`invalid muxado frame: ${problem}`);
      this.goAway(MuxError.Protocol, problem);
      return;
    }
    if (frame.type === FRAME_GOAWAY) {
      this.shutdown(`GOAWAY from the agent (code ${frame.body.readUInt32BE(4)})`);
      this.socket.end();
      return;
    }
    const existing = this.streams.get(frame.streamId);
    if (frame.type === FRAME_DATA && (frame.flags & FLAG_SYN) !== 0) {
      if (existing || frame.streamId <= this.lastRemoteId) {
        this.hooks.onViolation(`SYN for stream ${frame.streamId}, which was already opened`);
        this.send(rstFrame(frame.streamId, MuxError.Protocol));
        return;
      }
      if (frame.streamId % 2 !== 1 || frame.streamId > MAX_STREAM_ID) {
        this.hooks.onViolation(`the agent opened stream ${frame.streamId}; client stream ids are odd`);
        this.send(rstFrame(frame.streamId, MuxError.Protocol));
        return;
      }
      this.lastRemoteId = frame.streamId;
      const stream = new MuxStream(this, frame.streamId, "remote");
      this.streams.set(frame.streamId, stream);
      this.hooks.onStream(stream);
      stream.receive(frame);
      return;
    }
    if (!existing) {
      // Frames racing a stream this side already reset or finished are normal; muxado
      // answers stray DATA with RST and ignores the rest.
      if (frame.type === FRAME_DATA && frame.body.length > 0) this.send(rstFrame(frame.streamId, MuxError.StreamClosed));
      return;
    }
    switch (frame.type) {
      case FRAME_DATA:
        existing.receive(frame);
        return;
      case FRAME_WNDINC:
        existing.grow(frame.body.readUInt32BE(0) & MAX_STREAM_ID);
        return;
      case FRAME_RST:
        existing.resetByPeer(frame.body.readUInt32BE(0));
        return;
      default:
        this.hooks.onViolation(`unexpected ${frameTypeName(frame.type)} on stream ${frame.streamId}`);
    }
  }

  private shutdown(reason: string, destroySocket = true): void {
    if (this.closed) return;
    this.closed = true;
    for (const stream of [...this.streams.values()]) stream.sessionGone();
    this.streams.clear();
    if (destroySocket && !this.socket.destroyed) this.socket.destroy();
    this.hooks.onClose(reason);
  }
}
