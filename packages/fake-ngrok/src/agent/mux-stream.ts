// One muxado stream as a Node Duplex, with muxado's per-stream flow control both ways:
// the fake never sends more than the agent's window allows (it waits for WNDINC), and it
// returns window to the agent as the bytes are consumed (pushed to the reader).
import { Duplex } from "node:stream";
import { dataFrame, FLAG_FIN, FLAG_SYN, type Frame, MuxError, rstFrame, wndIncFrame } from "./frame.ts";

/** muxado's default per-stream window (muxado/src/session.rs DEFAULT_WINDOW), used by both sides. */
export const STREAM_WINDOW = 0x40000;
/** The largest DATA frame the fake sends: smaller than a window so several streams interleave. */
const MAX_DATA_FRAME = 0x10000;

/** What a stream needs from its session. */
export interface StreamHost {
  send(frame: Frame): void;
  /** The stream is done both ways (or reset): forget it. */
  release(stream: MuxStream): void;
  violation(message: string): void;
  readonly alive: boolean;
}

export class MuxStreamResetError extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`muxado stream reset by the agent (code ${code})`);
    this.code = code;
  }
}

export class MuxStream extends Duplex {
  readonly id: number;
  private readonly host: StreamHost;
  /** Set on streams this side opens: the first frame sent carries SYN. */
  private needsSyn: boolean;
  /** How many more bytes the agent has room for on this stream. */
  private sendWindow = STREAM_WINDOW;
  /** Bytes received and not yet returned to the agent with WNDINC. */
  private unacknowledged = 0;
  private readonly received: Buffer[] = [];
  private wantsData = false;
  private remoteFin = false;
  private localFin = false;
  private reset = false;
  private pendingWrite?: { chunk: Buffer; callback: (error?: Error | null) => void };

  constructor(host: StreamHost, id: number, opener: "local" | "remote") {
    super({ allowHalfOpen: true });
    this.host = host;
    this.id = id;
    this.needsSyn = opener === "local";
  }

  /** A DATA frame from the agent. */
  receive(frame: Frame): void {
    if (this.reset) return;
    if (this.remoteFin && frame.body.length > 0) {
      this.host.violation(`stream ${this.id}: DATA after FIN`);
      this.abort(MuxError.StreamClosed);
      return;
    }
    if (this.unacknowledged + frame.body.length > STREAM_WINDOW) {
      this.host.violation(`stream ${this.id}: ${frame.body.length} bytes exceed the window (${STREAM_WINDOW - this.unacknowledged} left)`);
      this.abort(MuxError.FlowControl);
      return;
    }
    if (frame.body.length > 0) {
      this.unacknowledged += frame.body.length;
      this.received.push(frame.body);
    }
    if ((frame.flags & FLAG_FIN) !== 0) this.remoteFin = true;
    this.drain();
  }

  /** A WNDINC from the agent: it consumed bytes the fake sent. */
  grow(increment: number): void {
    this.sendWindow += increment;
    this.flushWrite();
  }

  /** An RST from the agent: the stream is gone both ways. */
  resetByPeer(code: number): void {
    if (this.reset) return;
    this.reset = true;
    this.host.release(this);
    this.destroy(new MuxStreamResetError(code));
  }

  /** Resets the stream from this side (RST with `code`) and destroys it. */
  abort(code: number = MuxError.StreamCancelled): void {
    if (this.reset) return;
    this.reset = true;
    if (this.host.alive) this.host.send(rstFrame(this.id, code));
    this.host.release(this);
    this.destroy();
  }

  /** The session died under the stream. */
  sessionGone(): void {
    if (this.reset) return;
    this.reset = true;
    this.destroy(new Error("muxado session closed"));
  }

  override _read(): void {
    this.wantsData = true;
    this.drain();
  }

  private drain(): void {
    while (this.wantsData && this.received.length > 0) {
      const chunk = this.received.shift()!;
      this.unacknowledged -= chunk.length;
      // The bytes now belong to the reader: give the agent its window back.
      if (!this.remoteFin && this.host.alive) this.host.send(wndIncFrame(this.id, chunk.length));
      this.wantsData = this.push(chunk);
    }
    if (this.remoteFin && this.received.length === 0 && this.wantsData) {
      this.wantsData = false;
      this.push(null);
      this.releaseIfDone();
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.reset || !this.host.alive) {
      callback(new Error("muxado stream closed"));
      return;
    }
    this.pendingWrite = { chunk, callback };
    this.flushWrite();
  }

  private flushWrite(): void {
    const pending = this.pendingWrite;
    if (!pending) return;
    while (pending.chunk.length > 0 && this.sendWindow > 0) {
      const size = Math.min(pending.chunk.length, this.sendWindow, MAX_DATA_FRAME);
      this.host.send(dataFrame(this.id, pending.chunk.subarray(0, size), this.takeSyn()));
      this.sendWindow -= size;
      pending.chunk = pending.chunk.subarray(size);
    }
    if (pending.chunk.length === 0) {
      this.pendingWrite = undefined;
      pending.callback();
    }
  }

  private takeSyn(): number {
    if (!this.needsSyn) return 0;
    this.needsSyn = false;
    return FLAG_SYN;
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.reset && this.host.alive) {
      this.host.send(dataFrame(this.id, Buffer.alloc(0), FLAG_FIN | this.takeSyn()));
      this.localFin = true;
      this.releaseIfDone();
    }
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Destroyed before both sides finished (a public client went away, a test killed it):
    // tell the agent so it stops sending, as muxado does for a dropped stream.
    if (!this.reset && !(this.localFin && this.remoteFin)) {
      this.reset = true;
      if (this.host.alive) this.host.send(rstFrame(this.id, MuxError.StreamCancelled));
    }
    this.host.release(this);
    const pending = this.pendingWrite;
    this.pendingWrite = undefined;
    pending?.callback(error ?? new Error("muxado stream destroyed"));
    callback(error);
  }

  private releaseIfDone(): void {
    if (this.localFin && this.remoteFin && this.received.length === 0) this.host.release(this);
  }
}
