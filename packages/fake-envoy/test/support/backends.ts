// Real backends on 127.0.0.1 for the data-path tests: TCP servers that record what they got
// (and the PROXY protocol header, if any), HTTP readiness servers whose answer a test flips,
// a UDP echo server, and clients that retry until a listener is bound.
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { parseProxyProtocolHeader } from "../../src/data/proxy-protocol.ts";

export interface Received {
  proxy: ReturnType<typeof parseProxyProtocolHeader>;
  data: Buffer;
}

export interface TcpBackend {
  port: number;
  tag: string;
  connections: Received[];
  close(): Promise<void>;
}

/**
 * A TCP backend. `mode` "echo": every chunk is echoed back as `<tag>:<chunk>` at once;
 * "reply-at-end": everything is answered with `<tag>:<all bytes>` after the client half-closes;
 * "first": answers `<tag>\n` to the first bytes (SNI passthrough, the bytes are a ClientHello).
 */
export async function tcpBackend(tag: string, mode: "echo" | "reply-at-end" | "first", expectProxy = false): Promise<TcpBackend> {
  const connections: Received[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    const received: Received = { proxy: undefined, data: Buffer.alloc(0) };
    connections.push(received);
    let pending = Buffer.alloc(0);
    let headerDone = !expectProxy;
    socket.on("data", (chunk: Buffer) => {
      if (!headerDone) {
        pending = Buffer.concat([pending, chunk]);
        const header = parseProxyProtocolHeader(pending);
        if (!header) return;
        received.proxy = header;
        headerDone = true;
        chunk = pending.subarray(header.length);
        if (chunk.length === 0) return;
      }
      const first = received.data.length === 0;
      received.data = Buffer.concat([received.data, chunk]);
      if (mode === "echo") socket.write(`${tag}:${chunk.toString("latin1")}`);
      if (mode === "first" && first) socket.write(`${tag}\n`);
    });
    socket.on("end", () => {
      if (mode === "reply-at-end") socket.end(`${tag}:${received.data.toString("latin1")}`);
      else socket.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    tag,
    connections,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface ReadinessServer {
  port: number;
  ready: boolean;
  requests: Array<{ path: string; host: string }>;
  close(): Promise<void>;
}

/** GET /ready → 200 while `ready`, else 503 (any other path 404). A PROXY header would make Node answer 400. */
export async function readinessServer(): Promise<ReadinessServer> {
  const state: ReadinessServer = { port: 0, ready: true, requests: [], close: async () => undefined };
  const server: HttpServer = createHttpServer((req, res) => {
    state.requests.push({ path: req.url ?? "", host: req.headers.host ?? "" });
    res.statusCode = req.url === "/ready" ? (state.ready ? 200 : 503) : 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.port = (server.address() as AddressInfo).port;
  state.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

export async function udpEchoBackend(tag: string): Promise<{ port: number; sources: Set<string>; close(): Promise<void> }> {
  const socket: UdpSocket = createSocket("udp4");
  const sources = new Set<string>();
  socket.on("message", (message, remote) => {
    sources.add(`${remote.address}:${remote.port}`);
    socket.send(`${tag}:${message.toString()}`, remote.port, remote.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return { port: socket.address().port, sources, close: () => new Promise((resolve) => socket.close(() => resolve())) };
}

/** A free TCP (and, by luck of the draw, UDP) port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Connects to 127.0.0.1:port, retrying while the port refuses (the listener is being bound). */
export async function connectWhenBound(port: number, timeoutMs = 10_000): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const socket = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
        socket.once("connect", () => {
          socket.off("error", reject);
          resolve(socket);
        });
        socket.once("error", reject);
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ECONNREFUSED" || Date.now() > deadline) throw error;
      await sleep(50);
    }
  }
}

/** Polls until 127.0.0.1:port refuses connections (the listener was closed). */
export async function waitUntilRefused(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port });
      socket.once("connect", () => {
        socket.destroy();
        resolve(false);
      });
      socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code === "ECONNREFUSED"));
    });
    if (refused) return;
    if (Date.now() > deadline) throw new Error(`127.0.0.1:${port} still accepts connections`);
    await sleep(50);
  }
}

/** Everything the socket sends until it ends or closes. */
export function readAll(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    const done = (): void => resolve(Buffer.concat(chunks).toString("latin1"));
    socket.once("end", done);
    socket.once("close", done);
    socket.on("error", () => undefined);
  });
}

/** The next chunk the socket sends. */
export function nextData(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once("data", (chunk: Buffer) => resolve(chunk.toString("latin1")));
    socket.once("close", () => reject(new Error("closed before data")));
  });
}

/** A real ClientHello for `serverName` (node:tls writes it to a recording server). */
export async function clientHello(serverName: string): Promise<Buffer> {
  const { connect: tlsConnect } = await import("node:tls");
  let resolveHello: (hello: Buffer) => void;
  const hello = new Promise<Buffer>((resolve) => (resolveHello = resolve));
  const server = createServer((socket) => {
    socket.once("data", (chunk: Buffer) => {
      resolveHello(chunk);
      socket.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const client = tlsConnect({ host: "127.0.0.1", port: (server.address() as AddressInfo).port, servername: serverName, rejectUnauthorized: false });
  client.on("error", () => undefined);
  const bytes = await hello;
  client.destroy();
  server.close();
  return bytes;
}
