// Web forwarding: the public side of the relay. Requests arrive on a plain-HTTP loopback
// listener (the service terminates TLS for `https://<tunnel>-<port>.<cluster>.devtunnels.ms`;
// the fake speaks plain HTTP and sends `X-Forwarded-Proto: https` as if it had), are routed by
// Host, checked against the port's access control, and proxied, one channel per request, to
// the host connection, which dials the port's backend. WebSocket upgrades are piped raw.
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { connect as tlsConnect } from "node:tls";
import type { TunnelPort } from "@microsoft/dev-tunnels-contracts";
import type { DevTunnelsService, StoredTunnel } from "../service.ts";
import { unevaluatedDenyRules, webAccess } from "./access.ts";
import type { HostConnection } from "./host-connection.ts";
import { HostTimeoutError, PortNotForwardedError } from "./port-forwarding.ts";

export const DEFAULT_WEB_FORWARDING_DOMAIN = "devtunnels.ms";

/** The web-forwarding host name of a tunnel port: `<tunnelId>-<port>.<clusterId>.<domain>`. */
export function webForwardingHost(tunnelId: string, port: number, clusterId: string, domain = DEFAULT_WEB_FORWARDING_DOMAIN): string {
  return `${tunnelId}-${port}.${clusterId}.${domain}`.toLowerCase();
}

/** The inverse of `webForwardingHost` (a `:port` suffix is ignored); undefined for any other name. */
export function parseWebForwardingHost(host: string, clusterId: string, domain = DEFAULT_WEB_FORWARDING_DOMAIN): { tunnelId: string; port: number } | undefined {
  const name = host.trim().toLowerCase().replace(/:\d+$/, "");
  const suffix = `.${clusterId}.${domain}`.toLowerCase();
  if (!name.endsWith(suffix)) return undefined;
  const match = /^([a-z0-9][a-z0-9-]*[a-z0-9])-(\d{1,5})$/.exec(name.slice(0, -suffix.length));
  if (!match) return undefined;
  const port = Number(match[2]);
  return port >= 1 && port <= 65535 ? { tunnelId: match[1]!, port } : undefined;
}

export interface WebForwardRecord {
  at: number;
  host: string;
  tunnelId?: string;
  port?: number;
  method: string;
  url: string;
  /** How access was granted, when it was. */
  access?: "anonymous" | "token";
  /** The status the relay answered itself with (404, 401, 502, 504…); absent when the backend answered. */
  relayStatus?: number;
  upgrade: boolean;
}

export interface WebForwardingContext {
  readonly service: DevTunnelsService;
  readonly domain: string;
  /** Default request timeout (the service: 100 s), unless the port or tunnel sets `requestTimeoutSeconds`. */
  readonly requestTimeoutMs: number;
  /** How long a request waits for the host to forward its port. */
  readonly portWaitMs: number;
  readonly records: WebForwardRecord[];
  hostOf(tunnelId: string): HostConnection | undefined;
  violation(message: string): void;
}

class RelayError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

interface Route {
  stored: StoredTunnel;
  tunnelPort: TunnelPort;
  host: HostConnection;
  requestTimeoutMs: number;
}

/** Request headers not passed to the backend. */
const DROPPED_REQUEST_HEADERS = new Set(["x-tunnel-authorization", "x-tunnel-skip-antiphishing-page", "connection", "keep-alive", "proxy-connection"]);
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

export function createWebForwardingServer(ctx: WebForwardingContext): Server {
  const server = createServer((req, res) => void forwardRequest(ctx, req, res));
  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => void forwardUpgrade(ctx, req, socket, head));
  server.on("clientError", (_error, socket: Socket) => socket.destroy());
  return server;
}

function route(ctx: WebForwardingContext, req: IncomingMessage, record: WebForwardRecord): Route {
  const parsed = parseWebForwardingHost(req.headers.host ?? "", ctx.service.clusterId, ctx.domain);
  if (!parsed) throw new RelayError(404, `No tunnel is served at ${req.headers.host ?? "(no Host header)"}.`);
  record.tunnelId = parsed.tunnelId;
  record.port = parsed.port;
  const stored = ctx.service.tunnels.get(parsed.tunnelId);
  if (!stored) throw new RelayError(404, `Tunnel ${parsed.tunnelId} not found.`);
  const tunnelPort = stored.ports.get(parsed.port);
  if (!tunnelPort) throw new RelayError(404, `Tunnel ${parsed.tunnelId} has no port ${parsed.port}.`);
  for (const rule of unevaluatedDenyRules(stored, tunnelPort)) ctx.violation(`web forwarding to ${parsed.tunnelId}:${parsed.port} ignored an ACE the fake cannot evaluate: ${rule}`);
  const access = webAccess(ctx.service, stored, tunnelPort, req.headers["x-tunnel-authorization"]);
  if (!access.allowed) throw new RelayError(access.status, access.message);
  record.access = access.by;
  const host = ctx.hostOf(parsed.tunnelId);
  if (!host) throw new RelayError(502, `The host for tunnel ${parsed.tunnelId} is not connected.`);
  const seconds = tunnelPort.options?.requestTimeoutSeconds ?? stored.tunnel.options?.requestTimeoutSeconds;
  const requestTimeoutMs = seconds === undefined ? ctx.requestTimeoutMs : seconds === 0 ? 0 : seconds * 1000;
  return { stored, tunnelPort, host, requestTimeoutMs };
}

async function openBackend(ctx: WebForwardingContext, r: Route): Promise<Duplex> {
  const openTimeoutMs = r.requestTimeoutMs === 0 ? 2 ** 31 - 1 : r.requestTimeoutMs;
  let stream: Duplex;
  try {
    stream = await r.host.openPort(r.tunnelPort.portNumber, { portWaitMs: ctx.portWaitMs, openTimeoutMs });
  } catch (error) {
    if (error instanceof HostTimeoutError) throw new RelayError(504, `The tunnel host did not respond: ${error.message}.`);
    if (error instanceof PortNotForwardedError) throw new RelayError(502, `The tunnel host is not serving port ${r.tunnelPort.portNumber}.`);
    throw new RelayError(502, `Could not connect to the tunnel host: ${error instanceof Error ? error.message : String(error)}.`);
  }
  if (r.tunnelPort.protocol !== "https") return stream;
  // Port protocol `https`: the backend speaks TLS; the relay is its client (certificate not checked, as for localhost backends).
  return tlsConnect({ socket: stream, rejectUnauthorized: false, servername: "localhost" });
}

/** Host and Origin as the service rewrites them (TunnelOptions hostHeader / originHeader; port options win). */
function backendHeaders(req: IncomingMessage, r: Route): OutgoingHttpHeaders {
  const portOptions = r.tunnelPort.options ?? {};
  const tunnelOptions = r.stored.tunnel.options ?? {};
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (!DROPPED_REQUEST_HEADERS.has(name) && value !== undefined) headers[name] = value;
  }
  const publicHost = req.headers.host ?? "";
  const hostUnchanged = portOptions.isHostHeaderUnchanged ?? tunnelOptions.isHostHeaderUnchanged ?? false;
  if (!hostUnchanged) headers.host = portOptions.hostHeader || tunnelOptions.hostHeader || "localhost";
  const originUnchanged = portOptions.isOriginHeaderUnchanged ?? tunnelOptions.isOriginHeaderUnchanged ?? false;
  if (req.headers.origin !== undefined && !originUnchanged) {
    headers.origin = portOptions.originHeader || tunnelOptions.originHeader || `${r.tunnelPort.protocol === "https" ? "https" : "http"}://localhost`;
  }
  const forwardedFor = req.headers["x-forwarded-for"];
  const clientIp = req.socket.remoteAddress ?? "";
  headers["x-forwarded-for"] = forwardedFor ? `${String(forwardedFor)}, ${clientIp}` : clientIp;
  headers["x-forwarded-host"] = publicHost;
  headers["x-forwarded-proto"] = "https";
  return headers;
}

function responseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!HOP_BY_HOP.has(name) && value !== undefined) out[name] = value;
  }
  return out;
}

function relayErrorPage(error: unknown): { status: number; body: string } {
  if (error instanceof RelayError) return { status: error.status, body: `${error.message}\n` };
  return { status: 502, body: `Bad gateway: ${error instanceof Error ? error.message : String(error)}\n` };
}

function newRecord(req: IncomingMessage, upgrade: boolean): WebForwardRecord {
  return { at: Date.now(), host: req.headers.host ?? "", method: req.method ?? "GET", url: req.url ?? "/", upgrade };
}

async function forwardRequest(ctx: WebForwardingContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const record = newRecord(req, false);
  ctx.records.push(record);
  const fail = (error: unknown): void => {
    const page = relayErrorPage(error);
    record.relayStatus = page.status;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(page.status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(page.body), connection: "close" });
    res.end(page.body);
  };
  try {
    const r = route(ctx, req, record);
    const backend = await openBackend(ctx, r);
    await new Promise<void>((resolve) => {
      const upstream = httpRequest({
        method: req.method,
        path: req.url,
        headers: backendHeaders(req, r),
        createConnection: () => backend,
      });
      const timer =
        r.requestTimeoutMs > 0
          ? setTimeout(() => {
              upstream.destroy();
              fail(new RelayError(504, `The tunnel host did not answer within ${r.requestTimeoutMs} ms.`));
              resolve();
            }, r.requestTimeoutMs)
          : undefined;
      upstream.on("response", (response) => {
        clearTimeout(timer);
        res.writeHead(response.statusCode ?? 502, response.statusMessage, responseHeaders(response.headers));
        response.pipe(res);
        response.on("end", resolve);
        response.on("error", () => res.destroy());
      });
      upstream.on("error", (error) => {
        clearTimeout(timer);
        fail(error);
        resolve();
      });
      res.on("close", () => {
        clearTimeout(timer);
        if (!res.writableFinished) upstream.destroy();
        backend.destroy();
        resolve();
      });
      req.pipe(upstream);
    });
  } catch (error) {
    fail(error);
  }
}

async function forwardUpgrade(ctx: WebForwardingContext, req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
  const record = newRecord(req, true);
  ctx.records.push(record);
  socket.on("error", () => undefined);
  let backend: Duplex;
  let r: Route;
  try {
    r = route(ctx, req, record);
    backend = await openBackend(ctx, r);
  } catch (error) {
    const page = relayErrorPage(error);
    record.relayStatus = page.status;
    socket.end(`HTTP/1.1 ${page.status} Relay Error\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(page.body)}\r\nconnection: close\r\n\r\n${page.body}`);
    return;
  }
  const headers = backendHeaders(req, r);
  headers.connection = "Upgrade";
  let text = `${req.method ?? "GET"} ${req.url ?? "/"} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value]) if (v !== undefined) text += `${name}: ${String(v)}\r\n`;
  }
  backend.on("error", () => socket.destroy());
  socket.on("close", () => backend.destroy());
  backend.on("close", () => socket.destroy());
  backend.write(`${text}\r\n`);
  if (head.length > 0) backend.write(head);
  socket.pipe(backend);
  backend.pipe(socket);
}
