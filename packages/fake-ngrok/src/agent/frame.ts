// muxado frames (ngrok-rust muxado/PROTOCOL.md, frame.rs, codec.rs): an 8-byte header
// `uint24 length | uint4 type | uint4 flags | uint32 streamId`, big-endian, then the body.

export const FRAME_RST = 0;
export const FRAME_DATA = 1;
export const FRAME_WNDINC = 2;
export const FRAME_GOAWAY = 3;

export const FLAG_FIN = 0x1;
export const FLAG_SYN = 0x2;

export const HEADER_LENGTH = 8;
/** The largest body a 24-bit length can describe. */
export const MAX_FRAME_BODY = 0xffffff;
/** Stream ids and window increments are 31-bit on the wire (the top bit is masked off). */
export const MAX_STREAM_ID = 0x7fffffff;

/** muxado's error codes (muxado/src/errors.rs), carried by RST and GOAWAY. */
export const MuxError = {
  None: 0x00,
  Protocol: 0x01,
  Internal: 0x02,
  FlowControl: 0x03,
  StreamClosed: 0x04,
  StreamRefused: 0x05,
  StreamCancelled: 0x06,
  StreamReset: 0x07,
  FrameSizeError: 0x08,
  AcceptQueueFull: 0x09,
  EnhanceYourCalm: 0x0a,
  RemoteGoneAway: 0x0b,
  StreamsExhausted: 0x0c,
  WriteTimeout: 0x0d,
  SessionClosed: 0x0e,
  PeerEOF: 0x0f,
} as const;

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  body: Buffer;
}

export function encodeFrame(frame: Frame): Buffer {
  if (frame.body.length > MAX_FRAME_BODY) throw new RangeError(`muxado frame body of ${frame.body.length} bytes exceeds 24 bits`);
  const header = Buffer.alloc(HEADER_LENGTH);
  header.writeUInt32BE(((frame.body.length << 8) | ((frame.type & 0xf) << 4) | (frame.flags & 0xf)) >>> 0, 0);
  header.writeUInt32BE(frame.streamId & MAX_STREAM_ID, 4);
  return Buffer.concat([header, frame.body]);
}

export const dataFrame = (streamId: number, body: Buffer, flags = 0): Frame => ({ type: FRAME_DATA, flags, streamId, body });

export function wndIncFrame(streamId: number, increment: number): Frame {
  const body = Buffer.alloc(4);
  body.writeUInt32BE(increment & MAX_STREAM_ID, 0);
  return { type: FRAME_WNDINC, flags: 0, streamId, body };
}

export function rstFrame(streamId: number, code: number): Frame {
  const body = Buffer.alloc(4);
  body.writeUInt32BE(code >>> 0, 0);
  return { type: FRAME_RST, flags: 0, streamId, body };
}

export function goAwayFrame(lastStreamId: number, code: number, message = ""): Frame {
  const text = Buffer.from(message);
  const body = Buffer.alloc(8 + text.length);
  body.writeUInt32BE(lastStreamId & MAX_STREAM_ID, 0);
  body.writeUInt32BE(code >>> 0, 4);
  text.copy(body, 8);
  return { type: FRAME_GOAWAY, flags: 0, streamId: 0, body };
}

/**
 * What is wrong with a decoded header, mirroring muxado's `validate_header`: the client
 * treats these as protocol errors, so the fake reports them as violations too.
 */
export function headerProblem(frame: Frame): string | undefined {
  switch (frame.type) {
    case FRAME_RST:
    case FRAME_WNDINC:
      if (frame.streamId === 0) return `${frameTypeName(frame.type)} on stream 0`;
      if (frame.body.length !== 4) return `${frameTypeName(frame.type)} with length ${frame.body.length} (must be 4)`;
      return undefined;
    case FRAME_DATA:
      return frame.streamId === 0 ? "DATA on stream 0" : undefined;
    case FRAME_GOAWAY:
      if (frame.streamId !== 0) return `GOAWAY on stream ${frame.streamId}`;
      return frame.body.length < 8 ? `GOAWAY with length ${frame.body.length} (must be at least 8)` : undefined;
    default:
      return `unknown frame type ${frame.type}`;
  }
}

export function frameTypeName(type: number): string {
  return ["RST", "DATA", "WNDINC", "GOAWAY"][type] ?? `TYPE${type}`;
}

/** Splits a byte stream into frames; keeps a partial frame until the rest arrives. */
export class FrameDecoder {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Frame[] = [];
    let offset = 0;
    while (this.pending.length - offset >= HEADER_LENGTH) {
      const word = this.pending.readUInt32BE(offset);
      const length = word >>> 8;
      if (this.pending.length - offset - HEADER_LENGTH < length) break;
      const start = offset + HEADER_LENGTH;
      frames.push({
        type: (word >>> 4) & 0xf,
        flags: word & 0xf,
        streamId: this.pending.readUInt32BE(offset + 4) & MAX_STREAM_ID,
        // Copy: the body outlives this chunk (it is queued on a stream).
        body: Buffer.from(this.pending.subarray(start, start + length)),
      });
      offset = start + length;
    }
    this.pending = this.pending.subarray(offset);
    return frames;
  }
}
