// What the agent-ingress tests share: a started ingress on a fresh account, the real SDK
// pointed at it, local upstreams the agent forwards to, and clients for the public side.
import { expect } from "@jest/globals";
import type { Session, SessionBuilder } from "@ngrok/ngrok";
import { createServer as createHttpServer, request, type Server as HttpServer } from "node:http";
import { connect as netConnect, createServer as createNetServer, type Server } from "node:net";
import { connect as tlsConnect, createServer as createTlsServer } from "node:tls";
import { Account, type PlanLimits } from "../../src/account.ts";
import { AgentIngress, createTestCa, newAuthtoken, type TestCa } from "../../src/agent/index.ts";
import { ngrok } from "./ngrok-sdk.ts";

let sharedCa: TestCa | undefined;
/** One CA for a whole test file: each openssl run costs tens of milliseconds. */
const testCa = (): TestCa => (sharedCa ??= createTestCa("fake-ngrok tests CA"));

export interface Harness {
  account: Account;
  ingress: AgentIngress;
  /** A valid authtoken of the account. */
  token: string;
  /** Closes every session, upstream and the ingress; checks nothing was refused or broke the protocol. */
  teardown(): Promise<void>;
  /** A SessionBuilder aimed at the ingress (the caller adds handlers and calls `connect`). */
  builder(token?: string): SessionBuilder;
  /** `builder().connect()` raced against a timeout (a silent server never answers); the session is closed at teardown. */
  connect(builder?: SessionBuilder, timeoutMs?: number): Promise<Session>;
  /** An HTTP server on loopback answering `name path` (and echoing a POST body); closed at teardown. */
  httpUpstream(name: string): Promise<Upstream>;
  /** A TCP server echoing `name:` + what it receives; closed at teardown. */
  tcpEchoUpstream(name: string): Promise<Upstream>;
  /** A TLS server for `serverName` (certificate from the test CA) echoing `name:` + data; closed at teardown. */
  tlsEchoUpstream(name: string, serverName: string): Promise<Upstream>;
  ca: TestCa;
}

export interface Upstream {
  port: number;
  /** How many connections (TCP/TLS) or requests (HTTP) it served. */
  served: () => number;
}

export async function startHarness(limits: Partial<PlanLimits> = {}): Promise<Harness> {
  const account = new Account({ limits });
  const token = newAuthtoken();
  account.authtokens.add(token);
  const ca = testCa();
  const ingress = await new AgentIngress(account, { ca }).start();
  const sessions: Array<Promise<Session>> = [];
  const servers: Array<Server | HttpServer> = [];

  const listening = async (server: Server | HttpServer): Promise<number> => {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return (server.address() as { port: number }).port;
  };

  const harness: Harness = {
    account,
    ingress,
    token,
    ca,
    builder: (t = token) => new ngrok.SessionBuilder().authtoken(t).serverAddr(ingress.serverAddr).caCert(ingress.caCert),
    connect(builder = harness.builder(), timeoutMs = 5000) {
      const connecting = builder.connect();
      sessions.push(connecting);
      return withTimeout(connecting, timeoutMs, "SessionBuilder.connect()");
    },
    async httpUpstream(name) {
      let served = 0;
      const server = createHttpServer((req, res) => {
        served++;
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          const body = Buffer.concat(chunks);
          res.setHeader("x-upstream", name);
          res.end(req.method === "POST" ? body : `${name} ${req.url}`);
        });
      });
      return { port: await listening(server), served: () => served };
    },
    async tcpEchoUpstream(name) {
      let served = 0;
      const server = createNetServer((socket) => {
        served++;
        socket.write(`${name}:`);
        socket.pipe(socket);
        socket.on("error", () => undefined);
      });
      return { port: await listening(server), served: () => served };
    },
    async tlsEchoUpstream(name, serverName) {
      let served = 0;
      const leaf = ca.issue([serverName]);
      const server = createTlsServer({ cert: leaf.certPem, key: leaf.keyPem }, (socket) => {
        served++;
        socket.write(`${name}:`);
        socket.pipe(socket);
        socket.on("error", () => undefined);
      });
      return { port: await listening(server), served: () => served };
    },
    async teardown() {
      // Sessions still connecting (silent server) are closed whenever they resolve.
      await Promise.all(
        sessions.map((s) =>
          withTimeout(
            s.then((session) => session.close()),
            2000,
            "Session.close()",
          ).catch(() => undefined),
        ),
      );
      await ingress.close();
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      for (const s of servers) if ("closeAllConnections" in s) s.closeAllConnections();
      expect(ingress.violations).toEqual([]);
    },
  };
  return harness;
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The rejection of `promise` (fails the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error & { errorCode?: string }> {
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error as Error & { errorCode?: string },
  );
  if (!outcome) throw new Error("expected a rejection");
  return outcome;
}

/** The ERR_NGROK code at the end of an SDK error message (set as `errorCode` only by connect/listen). */
export const codeOf = (error: Error): string | undefined => /error_code: (ERR_NGROK_\d+)\s*$/.exec(error.message)?.[1];

export interface HttpReply {
  status: number;
  body: string;
  upstream: string | undefined;
}

/**
 * One request through the public HTTP port to `host` on a fresh connection (`Connection:
 * close`; fetch() cannot set Host).
 */
export function httpVia(ingress: AgentIngress, host: string, path = "/", body?: Buffer): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: ingress.publicHttpPort,
        path,
        method: body ? "POST" : "GET",
        agent: false,
        headers: { host, connection: "close", ...(body ? { "content-length": body.length } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("latin1"), upstream: res.headers["x-upstream"] as string | undefined }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** Sends `data` over TCP, half-closes, and resolves with everything received until the server closes. */
export function tcpRoundTrip(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, "127.0.0.1", () => socket.end(data));
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("end", () => resolve(Buffer.concat(chunks).toString()));
    socket.on("error", reject);
  });
}

/** Same over TLS with SNI `serverName`, trusting `caPem`; resolves with what came back and the peer certificate's subject CN. */
export function tlsRoundTrip(port: number, serverName: string, caPem: string, data: string): Promise<{ received: string; certCn: string | undefined }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ port, host: "127.0.0.1", servername: serverName, ca: caPem }, () => socket.end(data));
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("end", () => {
      const cn = socket.getPeerCertificate().subject?.CN;
      resolve({ received: Buffer.concat(chunks).toString(), certCn: Array.isArray(cn) ? cn[0] : cn });
      socket.destroy();
    });
    socket.on("error", reject);
  });
}

/** Polls until `check` stops throwing (for effects in the SDK's threads or sockets, never for timing). */
export async function eventually(check: () => void, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** A domain reservation as the REST side would record it. */
export function reserveDomain(account: Account, domain: string): void {
  const id = account.newId("rd");
  account.reservedDomains.set(id, { id, domain, region: account.region, description: "", metadata: "", createdAt: new Date().toISOString(), cnameTarget: null });
}

/** A TCP address reservation as the REST side would record it. */
export function reserveAddr(account: Account, addr: string): void {
  const id = account.newId("ra");
  account.reservedAddrs.set(id, { id, addr, region: account.region, description: "", metadata: "", createdAt: new Date().toISOString() });
}

export const hostOf = (url: string | null | undefined): string => new URL(url ?? "").host;
