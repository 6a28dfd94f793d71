// The fake's edge: what Cloudflare's network does for a remote-managed tunnel, as far as
// the local demo and tests need it.
// - Connectors (cloudflared, or the stand-in in cloudflared.ts) dial `address`, register
//   with their tunnel's token credentials and are listed as the tunnel's connections (the
//   API's tunnel listing shows them; the tunnel is healthy while it has one). A wrong secret
//   or a deleted tunnel is refused, as Cloudflare refuses it.
// - Each connection is sent the tunnel's configuration when it registers and again on every
//   PUT of it, as Cloudflare pushes remote configuration to cloudflared; the connectors
//   follow its ingress rules (it is cloudflared that matches hostnames and paths).
// - The public side (`publicHttpPort`, plain HTTP on loopback standing in for
//   https://<hostname>) finds the tunnel from the hostname's proxied DNS record
//   (`<tunnel id>.cfargotunnel.com`), sends a hostname behind an Access application to the
//   Access login, and passes every other request to one of the tunnel's connections
//   (round robin). No connection: 530 with error 1033, as Cloudflare answers.
// - Quick tunnels: `POST /tunnel` to api.trycloudflare.com (the public side with that Host)
//   makes one outside every account, with a random `*.trycloudflare.com` hostname whose
//   requests go to its connections; cloudflared serves them all to its `--url`.
import { randomBytes, randomUUID } from "node:crypto";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { type Connection, now, type Tunnel } from "./model.ts";
import {
  type ConfigurationUpdate,
  forwardableHeaders,
  QUICK_SERVICE_HOST,
  type QuickTunnel,
  readLine,
  type Registered,
  type Registration,
  UPDATE_CONFIGURATION,
  UPGRADE_HEADER,
} from "./edge-protocol.ts";
import type { Store } from "./store.ts";

export interface EdgeOptions {
  /** The Access team domain logins are sent to. Default `ktube-demo.cloudflareaccess.com`. */
  teamDomain?: string;
}

interface EdgeConnection {
  record: Connection;
  tunnelId: string;
  session: http2.ClientHttp2Session;
  /** The configuration version this connector was last sent. */
  sentVersion: number;
}

const COLO = "lo1";
const QUICK_DOMAIN = ".trycloudflare.com";
const WORDS = ["amber", "brook", "cedar", "delta", "ember", "fjord", "grove", "harbor", "island", "juniper", "kestrel", "lagoon", "meadow", "nectar", "orchid", "prairie"];
const TUNNEL_TARGET = /^([0-9a-f-]{36})\.cfargotunnel\.com$/;

export class FakeCloudflareEdge {
  private readonly store: Store;
  private readonly teamDomain: string;
  /** Tunnel id -> its live connections. */
  private readonly live = new Map<string, EdgeConnection[]>();
  /** Quick tunnels by id, and their ids by hostname. */
  private readonly quick = new Map<string, QuickTunnel>();
  private readonly quickHosts = new Map<string, string>();
  private readonly sockets = new Set<net.Socket>();
  private readonly connectorServer = net.createServer((socket) => void this.register(socket));
  private readonly publicServer = http.createServer((req, res) => this.serve(req, res));
  private turn = 0;

  constructor(store: Store, options: EdgeOptions = {}) {
    this.store = store;
    this.teamDomain = options.teamDomain ?? "ktube-demo.cloudflareaccess.com";
    store.listeners.add((event) => {
      if (event.type === "configuration") for (const c of this.live.get(event.tunnelId) ?? []) this.sendConfiguration(c);
      // Cloudflare's "clean up connections": the connectors are cut off (cloudflared then reconnects).
      else for (const c of this.live.get(event.tunnelId) ?? []) c.session.destroy();
    });
  }

  async start(): Promise<void> {
    const listen = (server: net.Server): Promise<void> =>
      new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", resolve);
      });
    await listen(this.connectorServer);
    await listen(this.publicServer);
  }

  /** Where connectors dial (`host:port`; cloudflared's `--edge`, env TUNNEL_EDGE). */
  get address(): string {
    return `127.0.0.1:${(this.connectorServer.address() as net.AddressInfo).port}`;
  }

  /** The public side: plain HTTP standing in for `https://<hostname>`, chosen by the Host header. */
  get publicHttpPort(): number {
    return (this.publicServer.address() as net.AddressInfo).port;
  }

  /** api.trycloudflare.com, as cloudflared's `--quick-service` (the public side, answering for that Host). */
  get quickServiceUrl(): string {
    return `http://127.0.0.1:${this.publicHttpPort}`;
  }

  /** Live connections of a tunnel. */
  connections(tunnelId: string): number {
    return this.live.get(tunnelId)?.length ?? 0;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.publicServer.closeAllConnections();
    await Promise.all([this.connectorServer, this.publicServer].map((s) => new Promise((resolve) => s.close(resolve))));
  }

  private async register(socket: net.Socket): Promise<void> {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    let registration: Registration;
    try {
      registration = await readLine<Registration>(socket, 10_000);
    } catch {
      socket.destroy();
      return;
    }
    const tunnel = this.store.tunnels.get(String(registration.tunnelId));
    const quick = this.quick.get(String(registration.tunnelId));
    const known = tunnel && !tunnel.deleted_at ? { id: tunnel.id, account: tunnel.account_tag, secret: tunnel.secret } : quick && { id: quick.id, account: quick.account_tag, secret: quick.secret };
    const refusal = !known ? "Unauthorized: Tunnel not found" : known.account !== registration.accountTag || known.secret !== registration.tunnelSecret ? "Unauthorized: Invalid tunnel secret" : undefined;
    if (refusal !== undefined || !known) {
      socket.end(`${JSON.stringify({ ok: false, error: refusal ?? "Unauthorized" } satisfies Registered)}\n`);
      return;
    }
    const id = randomUUID();
    socket.write(`${JSON.stringify({ ok: true, connectionId: id, location: COLO } satisfies Registered)}\n`);
    const session = http2.connect("http://cloudflared.invalid", { createConnection: () => socket });
    const record: Connection = {
      id, uuid: id, colo_name: COLO, is_pending_reconnect: false, opened_at: now(), origin_ip: socket.remoteAddress ?? "127.0.0.1",
      client_id: String(registration.clientId), client_version: String(registration.version),
    };
    const connection: EdgeConnection = { record, tunnelId: known.id, session, sentVersion: 0 };
    this.live.set(known.id, [...(this.live.get(known.id) ?? []), connection]);
    if (tunnel) this.listConnections(tunnel);
    session.on("error", () => session.destroy());
    session.once("close", () => {
      this.live.set(known.id, (this.live.get(known.id) ?? []).filter((c) => c !== connection));
      if (tunnel) this.listConnections(tunnel);
    });
    this.sendConfiguration(connection);
  }

  /** The API's view of a tunnel's connections follows the live ones. */
  private listConnections(tunnel: Tunnel): void {
    const live = this.live.get(tunnel.id) ?? [];
    const had = tunnel.connections.length > 0;
    tunnel.connections = live.map((c) => c.record);
    if (live.length > 0) {
      tunnel.status = "healthy";
      if (!had) tunnel.conns_active_at = now();
    } else if (had) {
      tunnel.status = "down";
      tunnel.conns_inactive_at = now();
    }
  }

  private sendConfiguration(connection: EdgeConnection): void {
    const stored = this.store.configurations.get(connection.tunnelId);
    if (!stored || stored.version <= connection.sentVersion || connection.session.destroyed) return;
    connection.sentVersion = stored.version;
    const update: ConfigurationUpdate = { version: stored.version, config: stored.config };
    const request = connection.session.request({ ":method": "PUT", ":path": "/", [UPGRADE_HEADER]: UPDATE_CONFIGURATION, "content-type": "application/json" });
    request.on("error", () => undefined); // the session's close handles a lost connector
    request.on("response", () => request.resume());
    request.end(JSON.stringify(update));
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const host = (req.headers.host ?? "").replace(/:\d+$/, "").toLowerCase();
    const path = new URL(req.url ?? "/", "http://edge").pathname;
    const ray = `${randomBytes(8).toString("hex")}-${COLO.toUpperCase()}`;
    const fail = (status: number, text: string): void => void res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cf-ray": ray, server: "cloudflare" }).end(`${text}\n`);
    if (host === QUICK_SERVICE_HOST && req.method === "POST" && path === "/tunnel") return this.createQuickTunnel(res);
    const target = host.endsWith(QUICK_DOMAIN) ? this.quickHosts.get(host) : this.tunnelOf(host);
    if (!target) return fail(404, `the fake Cloudflare edge has no proxied DNS record for ${host || "(no Host header)"}`);
    const app = this.accessApp(host, path);
    if (app) {
      const login = new URL(`https://${this.teamDomain}/cdn-cgi/access/login/${host}`);
      login.searchParams.set("kid", String(app.aud ?? app.id));
      login.searchParams.set("redirect_url", req.url ?? "/");
      return void res.writeHead(302, { location: login.toString(), "cf-ray": ray, server: "cloudflare" }).end();
    }
    const connections = this.live.get(target) ?? [];
    if (connections.length === 0) return fail(530, "error code: 1033 (Cloudflare Tunnel error: the tunnel has no connector)");
    const connection = connections[this.turn++ % connections.length]!;
    const forwarded = req.headers["x-forwarded-for"] ? `${req.headers["x-forwarded-for"]}, ${req.socket.remoteAddress}` : req.socket.remoteAddress;
    const stream = connection.session.request({
      ...forwardableHeaders(req.headers),
      ":method": req.method ?? "GET",
      ":path": req.url ?? "/",
      ":authority": host,
      "cf-connecting-ip": req.socket.remoteAddress ?? "",
      "x-forwarded-for": forwarded ?? "",
      "x-forwarded-proto": "https",
      "cf-ray": ray,
    });
    stream.on("response", (headers) => {
      res.writeHead(Number(headers[":status"] ?? 502), { ...forwardableHeaders(headers), "cf-ray": ray, server: "cloudflare" });
      stream.pipe(res);
    });
    stream.on("error", () => (res.headersSent ? res.destroy() : fail(502, "error code: 502 (the connector dropped the request)")));
    req.pipe(stream);
    res.on("close", () => stream.destroy());
  }

  private createQuickTunnel(res: http.ServerResponse): void {
    const id = randomUUID();
    const pick = (): string => WORDS[randomBytes(1)[0]! % WORDS.length]!;
    const hostname = `${pick()}-${pick()}-${pick()}-${randomBytes(2).toString("hex")}${QUICK_DOMAIN}`;
    const created: QuickTunnel = { id, name: `qt-${randomBytes(8).toString("hex")}`, hostname, account_tag: "trycloudflare", secret: randomBytes(32).toString("base64") };
    this.quick.set(id, created);
    this.quickHosts.set(hostname, id);
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ success: true, result: created, errors: [], messages: [] }));
  }

  /** The tunnel a hostname's proxied CNAME points at (the hostname's own record, else the closest wildcard). */
  private tunnelOf(host: string): string | undefined {
    const labels = host.split(".");
    const names = [host, ...labels.slice(1, -1).map((_, i) => `*.${labels.slice(i + 1).join(".")}`)];
    for (const name of names) {
      const records = [...this.store.records.values()].filter((r) => r.name === name && (r.type === "CNAME" || r.type === "A" || r.type === "AAAA"));
      if (records.length === 0) continue;
      const cname = records.find((r) => r.type === "CNAME" && r.proxied);
      return cname ? TUNNEL_TARGET.exec(cname.content)?.[1] : undefined;
    }
    return undefined;
  }

  /** A self-hosted Access application whose domain (host, or host/path prefix) covers the request. */
  private accessApp(host: string, path: string): { id: string; aud?: unknown } | undefined {
    for (const app of this.store.apps.values()) {
      if (app.type !== "self_hosted") continue;
      const [appHost, ...rest] = app.domain.toLowerCase().split("/");
      const appPath = rest.length > 0 ? `/${rest.join("/")}` : "/";
      const hostMatches = appHost === host || (appHost!.startsWith("*.") && host.endsWith(appHost!.slice(1)));
      if (hostMatches && (appPath === "/" || path === appPath || path.startsWith(appPath.endsWith("/") ? appPath : `${appPath}/`))) return app;
    }
    return undefined;
  }
}
