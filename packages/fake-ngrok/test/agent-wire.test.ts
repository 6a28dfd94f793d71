// The wire layer on its own: muxado frame encoding, the ClientHello scanner, and the
// ingress catching an agent that breaks muxado's rules (checked with a raw client, since
// the real SDK never does).
import { afterEach, describe, expect, it } from "@jest/globals";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { dataFrame, encodeFrame, FLAG_SYN, type Frame, FRAME_RST, FrameDecoder, MuxError, wndIncFrame } from "../src/agent/frame.ts";
import { scanClientHello } from "../src/agent/sni.ts";
import { eventually, type Harness, startHarness } from "./support/agent.ts";

describe("muxado frames", () => {
  it("packs length, type (upper nibble), flags (lower nibble) and stream id big-endian", () => {
    const bytes = encodeFrame(dataFrame(5, Buffer.from("hey"), FLAG_SYN));
    expect([...bytes.subarray(0, 8)]).toEqual([0, 0, 3, 0x12, 0, 0, 0, 5]);
    expect([...encodeFrame(wndIncFrame(7, 0x40000))]).toEqual([0, 0, 4, 0x20, 0, 0, 0, 7, 0, 4, 0, 0]);
  });

  it("decodes frames split at any byte", () => {
    const frames: Frame[] = [dataFrame(1, Buffer.from("hello")), wndIncFrame(1, 5), dataFrame(3, Buffer.alloc(0), 0x1)];
    const wire = Buffer.concat(frames.map(encodeFrame));
    const decoder = new FrameDecoder();
    const out: Frame[] = [];
    for (const byte of wire) out.push(...decoder.push(Buffer.from([byte])));
    expect(out).toEqual(frames);
  });
});

describe("ClientHello scanner", () => {
  it("reads the server name a TLS client sends, and says when it needs more bytes", async () => {
    const hello = await new Promise<Buffer>((resolve) => {
      // Capture the first flight of a real client against a socket that never answers.
      import("node:net").then(({ createServer }) => {
        const server = createServer((socket) => {
          socket.once("data", (data: Buffer) => {
            resolve(data);
            socket.destroy();
            server.close();
          });
        }).listen(0, "127.0.0.1", () => {
          const port = (server.address() as { port: number }).port;
          tlsConnect({ port, host: "127.0.0.1", servername: "App.Example.com" }).on("error", () => undefined);
        });
      });
    });
    expect(scanClientHello(hello)).toEqual({ state: "done", serverName: "app.example.com" });
    expect(scanClientHello(hello.subarray(0, 20))).toEqual({ state: "incomplete" });
    expect(scanClientHello(Buffer.from("GET / HTTP/1.1\r\n"))).toEqual({ state: "not-tls" });
  });
});

describe("protocol breaches", () => {
  let h: Harness;
  afterEach(async () => {
    h.ingress.violations.length = 0; // this test breaks the protocol on purpose
    await h.teardown();
  });

  it("an agent that overruns a stream's window is reset (FlowControl) and recorded", async () => {
    h = await startHarness();
    const socket: TLSSocket = tlsConnect({ port: h.ingress.port, host: "127.0.0.1", servername: "localhost", ca: h.ingress.caPem });
    await new Promise((resolve) => socket.once("secureConnect", resolve));
    const received: Frame[] = [];
    const decoder = new FrameDecoder();
    socket.on("data", (chunk: Buffer) => received.push(...decoder.push(chunk)));
    // An Auth stream whose "request" is one 300 KiB frame: more than the 256 KiB window.
    // (Bytes count against the window until the receiver credits them back with WNDINC,
    // as in muxado's stream manager, so only more than a window in flight is an overrun.)
    socket.write(encodeFrame(dataFrame(1, Buffer.alloc(4), FLAG_SYN)));
    socket.write(encodeFrame(dataFrame(1, Buffer.alloc(300 * 1024, 0x20))));
    await eventually(() => expect(received.find((f) => f.type === FRAME_RST)?.body.readUInt32BE(0)).toBe(MuxError.FlowControl));
    expect(h.ingress.violations).toEqual([expect.stringMatching(/stream 1: 307200 bytes exceed the window/)]);
    socket.destroy();
  });
});
