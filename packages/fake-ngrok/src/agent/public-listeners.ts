// The fake's public side on loopback: one HTTP port routed by Host, one TLS port routed by
// SNI (passthrough, or terminated with the endpoint's own certificate), and one TCP port
// per bound TCP address. Each inbound connection becomes a Proxy stream to an agent.
import { createServer, type Server, type Socket } from "node:net";
import { createSecureContext, TLSSocket } from "node:tls";
import { scanClientHello } from "./sni.ts";
import type { TrafficRouter } from "./traffic-router.ts";

/** Sockets to destroy when the fake stops (a closed server keeps its open connections). */
export class SocketSet {
  private readonly sockets = new Set<Socket>();
  add(socket: Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
  }
  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }
}

export async function listen(server: Server, port: number): Promise<number> {
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

export const closeServer = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

/** Reads from `socket` until `done` says the prefix is enough (or `limit` bytes arrived). */
function readPrefix(socket: Socket, limit: number, done: (data: Buffer) => boolean): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    let data = Buffer.alloc(0);
    const finish = (result: Buffer | undefined): void => {
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.pause();
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      data = Buffer.concat([data, chunk]);
      if (done(data)) finish(data);
      else if (data.length > limit) finish(undefined);
    };
    const onEnd = (): void => finish(undefined);
    socket.on("data", onData);
    socket.on("end", onEnd);
  });
}

const HTTP_HEAD_LIMIT = 64 * 1024;

/**
 * Public connections stay half-open: a client that finishes sending (FIN) still gets the
 * rest of the answer, as through ngrok. Node would otherwise end our side at once.
 */
const HALF_OPEN = { allowHalfOpen: true } as const;

/** The Host of the first request in `head` (lower case, without port). */
export function hostOf(head: Buffer): string | undefined {
  const text = head.toString("latin1");
  const match = /\r\nhost:[ \t]*([^\r\n]*)/i.exec(text.slice(0, text.indexOf("\r\n\r\n")));
  const host = match?.[1]?.trim().toLowerCase();
  return host ? host.replace(/:\d+$/, "") : undefined;
}

function offlinePage(host: string): string {
  const body = `The endpoint ${host} is offline.\n\nERR_NGROK_3200\n`;
  return `HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nNgrok-Error-Code: ERR_NGROK_3200\r\nConnection: close\r\n\r\n${body}`;
}

/**
 * The public HTTP port. Routing is per connection, by the first request's Host: the agent
 * copies raw bytes to its upstream, so a kept-alive connection stays with one agent
 * (send `Connection: close` to spread requests over a pool).
 */
export function publicHttpServer(router: TrafficRouter, sockets: SocketSet): Server {
  return createServer(HALF_OPEN, (socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    void readPrefix(socket, HTTP_HEAD_LIMIT, (data) => data.includes("\r\n\r\n")).then((head) => {
      if (!head) {
        socket.destroy();
        return;
      }
      const host = hostOf(head);
      const route = host ? router.pick({ kind: "http", host }) : undefined;
      if (!route) {
        socket.end(offlinePage(host ?? "(no Host header)"));
        return;
      }
      router.forward(route, socket, socket, head, false);
    });
  });
}

/** The public TLS port: routed by the ClientHello's server name. */
export function publicTlsServer(router: TrafficRouter, sockets: SocketSet): Server {
  return createServer(HALF_OPEN, (socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    void readPrefix(socket, 64 * 1024, (data) => scanClientHello(data).state !== "incomplete").then((hello) => {
      const scan = hello ? scanClientHello(hello) : undefined;
      const serverName = scan?.state === "done" ? scan.serverName : undefined;
      const route = serverName ? router.pick({ kind: "tls", serverName }) : undefined;
      if (!hello || !route) {
        socket.destroy();
        return;
      }
      const termination = route.plan.termination;
      if (!termination) {
        router.forward(route, socket, socket, hello, true);
        return;
      }
      // Terminate with the endpoint's own certificate: replay the ClientHello into a TLS server socket.
      socket.unshift(hello);
      const tls = new TLSSocket(socket, { isServer: true, secureContext: createSecureContext({ cert: termination.certPem, key: termination.keyPem }) });
      tls.on("error", () => socket.destroy());
      tls.once("secure", () => router.forward(route, tls, socket, Buffer.alloc(0), false));
    });
  });
}

/** One listener per port that a bound TCP endpoint uses; opened and closed as endpoints come and go. */
export class TcpPorts {
  private readonly router: TrafficRouter;
  private readonly sockets: SocketSet;
  private readonly servers = new Map<number, Server>();
  private syncing: Promise<void> = Promise.resolve();

  constructor(router: TrafficRouter, sockets: SocketSet) {
    this.router = router;
    this.sockets = sockets;
  }

  get ports(): number[] {
    return [...this.servers.keys()];
  }

  /** Makes the open listeners exactly `wanted`; rejects when one cannot be opened. Calls run in order. */
  sync(wanted: ReadonlySet<number>): Promise<void> {
    const run = this.syncing.then(() => this.apply(wanted));
    this.syncing = run.catch(() => undefined);
    return run;
  }

  private async apply(wanted: ReadonlySet<number>): Promise<void> {
    for (const [port, server] of this.servers) {
      if (!wanted.has(port)) {
        this.servers.delete(port);
        await closeServer(server);
      }
    }
    for (const port of wanted) {
      if (this.servers.has(port)) continue;
      const server = createServer(HALF_OPEN, (socket) => {
        this.sockets.add(socket);
        socket.on("error", () => undefined);
        const route = this.router.pick({ kind: "tcp", port });
        if (!route) {
          socket.destroy();
          return;
        }
        this.router.forward(route, socket, socket, Buffer.alloc(0), false);
      });
      await listen(server, port);
      this.servers.set(port, server);
    }
  }

  async closeAll(): Promise<void> {
    await this.sync(new Set());
  }
}
