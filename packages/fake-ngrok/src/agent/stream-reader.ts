// Reads the start of a stream the agent opened: the 4-byte stream type, then (for RPCs)
// one JSON document. The agent does not half-close after its request, so the document
// ends where it first parses.
import type { Readable } from "node:stream";

/** Larger than any RPC the SDK sends (a Bind with a traffic policy and a certificate). */
const MAX_DOCUMENT = 1 << 20;

export class StreamReader {
  private readonly stream: Readable;
  private buffered: Buffer = Buffer.alloc(0);
  private ended = false;
  private failure?: Error;
  private wake?: () => void;
  private readonly onData = (chunk: Buffer): void => {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    this.notify();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.notify();
  };
  private readonly onError = (error: Error): void => {
    this.failure = error;
    this.notify();
  };

  constructor(stream: Readable) {
    this.stream = stream;
    stream.on("data", this.onData);
    stream.on("end", this.onEnd);
    stream.on("error", this.onError);
    stream.on("close", this.onEnd);
  }

  /** Exactly `n` bytes; rejects when the stream ends first. */
  async exactly(n: number): Promise<Buffer> {
    for (;;) {
      if (this.buffered.length >= n) {
        const out = this.buffered.subarray(0, n);
        this.buffered = this.buffered.subarray(n);
        return out;
      }
      await this.more(`stream ended after ${this.buffered.length} of ${n} bytes`);
    }
  }

  /** One JSON document; rejects when the stream ends before it is complete or it grows past 1 MiB. */
  async json(): Promise<unknown> {
    for (;;) {
      if (this.buffered.length > 0) {
        try {
          const value: unknown = JSON.parse(this.buffered.toString("utf8"));
          this.buffered = Buffer.alloc(0);
          return value;
        } catch {
          if (this.buffered.length > MAX_DOCUMENT) throw new Error(`RPC document larger than ${MAX_DOCUMENT} bytes`);
        }
      }
      await this.more(this.buffered.length > 0 ? `incomplete JSON: ${this.buffered.toString("utf8").slice(0, 200)}` : "stream ended before its JSON document");
    }
  }

  /** Everything read so far and not yet returned, through the end of the stream. */
  async rest(): Promise<Buffer> {
    while (!this.ended && !this.failure) await this.more("");
    const out = this.buffered;
    this.buffered = Buffer.alloc(0);
    return out;
  }

  /** Stops reading; returns what was read and not yet taken. */
  detach(): Buffer {
    this.stream.off("data", this.onData);
    this.stream.off("end", this.onEnd);
    this.stream.off("error", this.onError);
    this.stream.off("close", this.onEnd);
    this.stream.pause();
    const out = this.buffered;
    this.buffered = Buffer.alloc(0);
    return out;
  }

  private more(endedMessage: string): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.reject(new Error(endedMessage));
    return new Promise((resolve) => (this.wake = resolve));
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
