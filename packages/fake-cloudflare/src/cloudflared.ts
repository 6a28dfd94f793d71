#!/usr/bin/env node
// A stand-in for cloudflared, the connector of a Cloudflare Tunnel, for the fake edge
// (edge.ts). cloudflared is not a program of this repo and its transport (QUIC or HTTP/2
// with Cap'n Proto RPC, pinned to Cloudflare's certificates) cannot be stood in for here,
// so the local demo's kubelet runs this where a `cloudflare/cloudflared` Pod would run, with
// the Pod's own arguments. It does what cloudflared does for a remote-managed tunnel run
// by token and for a quick tunnel, and refuses the rest:
// - `tunnel [--no-autoupdate] [--metrics ADDR] run --token-file FILE` (or `--token`,
//   or TUNNEL_TOKEN); the edge is TUNNEL_EDGE (cloudflared's `--edge`);
// - `tunnel [--no-autoupdate] [--metrics ADDR] --url ORIGIN`, a quick tunnel: asks
//   api.trycloudflare.com (at TUNNEL_QUICK_SERVICE, cloudflared's hidden `--quick-service`)
//   for one, serves every request to ORIGIN and tells its hostname at `/quicktunnel`;
// - four connections to the edge, each registered with the token's credentials, each
//   redialled with backoff when it drops;
// - the configuration the edge pushes (newest version wins); each visitor's request goes
//   to the first ingress rule whose hostname (exact, or `*.` for any name below) and path
//   (a regular expression) match: `http(s)://` origins are proxied with the rule's
//   originRequest options, `http_status:N` answers N; other origins (tcp, ssh, unix...) and
//   `http2Origin` are not implemented and answer 502 saying so;
// - `/ready` on the metrics address: 200 with the live connection count, else 503;
// - SIGTERM: the connections are closed once their requests are done (at most
//   `--grace-period`, 30 s), then it exits 0.
// Run outside a cluster, KTUBE_PROBE_ADDRESS replaces the metrics address and
// KTUBE_UPSTREAM_OVERRIDES (`{"svc.ns.svc.cluster.local:80": "127.0.0.1:8080"}`) says
// where Services are reached, as for KTube's own connectors.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import net from "node:net";
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

const VERSION = "2025.11.1 (KTube stand-in)";
const HA_CONNECTIONS = 4;

interface IngressRule {
  hostname?: string;
  path?: string;
  service: string;
  originRequest?: OriginRequest;
}

interface OriginRequest {
  noTLSVerify?: boolean;
  originServerName?: string;
  httpHostHeader?: string;
  connectTimeout?: number;
  tlsTimeout?: number;
  tcpKeepAlive?: number;
  keepAliveTimeout?: number;
  keepAliveConnections?: number;
  noHappyEyeballs?: boolean;
  disableChunkedEncoding?: boolean;
  http2Origin?: boolean;
}

const IMPLEMENTED_ORIGIN_OPTIONS: ReadonlySet<string> = new Set([
  "noTLSVerify", "originServerName", "httpHostHeader", "connectTimeout", "tlsTimeout", "tcpKeepAlive",
  "keepAliveTimeout", "keepAliveConnections", "noHappyEyeballs", "disableChunkedEncoding",
]);

function log(level: "INF" | "WRN" | "ERR", message: string, fields: Record<string, unknown> = {}): void {
  const rest = Object.entries(fields).map(([k, v]) => ` ${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join("");
  process.stderr.write(`${new Date().toISOString()} ${level} ${message}${rest}\n`);
}

function fail(message: string): never {
  log("ERR", message);
  process.exit(1);
}

/** cloudflared's flags this stand-in takes: global ones, the `tunnel` command's and `run`'s. */
interface Args {
  metrics?: string;
  token?: string;
  tokenFile?: string;
  /** A quick tunnel's origin. */
  url?: string;
  gracePeriodMs: number;
}

function parseArgs(argv: string[]): Args {
  const [command, ...rest] = argv;
  if (command !== "tunnel") fail(`this cloudflared stand-in runs only \`tunnel run\` and \`tunnel --url\`, not ${JSON.stringify(argv.join(" "))}`);
  const parsed: Args = { gracePeriodMs: 30_000 };
  let ran = false;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = (): string => inline ?? rest[++i] ?? fail(`${flag} needs a value`);
    if (flag === "run") ran = true;
    else if (flag === "--no-autoupdate") continue;
    else if (flag === "--metrics") parsed.metrics = value();
    else if (flag === "--token") parsed.token = value();
    else if (flag === "--token-file") parsed.tokenFile = value();
    else if (flag === "--grace-period") parsed.gracePeriodMs = goDurationMs(value());
    else if (flag === "--url") parsed.url = value();
    else fail(`${arg} is not implemented by this cloudflared stand-in`);
  }
  if (ran === Boolean(parsed.url)) fail("expected `tunnel ... run` (a named tunnel) or `tunnel --url ORIGIN` (a quick tunnel)");
  return parsed;
}

function goDurationMs(text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const [, n, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(n) * units[unit!]!;
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(text)) fail(`not a duration: ${text}`);
  return total;
}

type Credentials = { a: string; t: string; s: string };

/** The tunnel token: base64 of `{"a": account tag, "t": tunnel id, "s": secret}`. */
function readToken(args: Args): Credentials {
  const raw = args.tokenFile ? readFileSync(args.tokenFile, "utf8") : (args.token ?? process.env.TUNNEL_TOKEN);
  if (!raw) fail("`tunnel run` needs --token, --token-file or TUNNEL_TOKEN");
  try {
    const token = JSON.parse(Buffer.from(raw.trim(), "base64").toString("utf8")) as Record<string, unknown>;
    if (typeof token.a === "string" && typeof token.t === "string" && typeof token.s === "string") return { a: token.a, t: token.t, s: token.s };
  } catch {
    // reported below
  }
  return fail("Provided Tunnel token is not valid.");
}

/** A quick tunnel from the quick service, as cloudflared asks for one. */
async function requestQuickTunnel(service: string): Promise<{ credentials: Credentials; hostname: string }> {
  const url = new URL("/tunnel", service);
  const answer = await new Promise<string>((resolve, reject) => {
    const req = (url.protocol === "https:" ? https : http).request(url, { method: "POST", headers: { host: QUICK_SERVICE_HOST, "content-type": "application/json" } }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${res.statusCode}: ${text}`))));
    });
    req.on("error", reject);
    req.end();
  }).catch((error: Error) => fail(`failed to request quick Tunnel: ${error.message}`));
  const { result } = JSON.parse(answer) as { result: QuickTunnel };
  return { credentials: { a: result.account_tag, t: result.id, s: result.secret }, hostname: result.hostname };
}

/** The first rule that matches, as cloudflared picks it. */
function matchRule(rules: readonly IngressRule[], host: string, path: string): IngressRule | undefined {
  const name = host.replace(/:\d+$/, "").toLowerCase();
  return rules.find((rule) => {
    const ruleHost = rule.hostname?.toLowerCase();
    const hostMatches = !ruleHost || ruleHost === "*" || ruleHost === name || (ruleHost.startsWith("*.") && name.endsWith(ruleHost.slice(1)));
    return hostMatches && (!rule.path || new RegExp(rule.path).test(path));
  });
}

class Connector {
  private readonly edge: string;
  private readonly token: Credentials;
  private readonly overrides: Record<string, string>;
  readonly clientId = randomUUID();
  private readonly server = http2.createServer();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly agents = new Map<string, http.Agent>();
  private config: ConfigurationUpdate = { version: 0, config: {} };
  private stopping = false;

  /** A quick tunnel serves everything to its origin, and takes no configuration from the edge. */
  private readonly quick: boolean;

  constructor(edge: string, token: Credentials, overrides: Record<string, string>, quickOrigin?: string) {
    this.edge = edge;
    this.token = token;
    this.overrides = overrides;
    this.quick = quickOrigin !== undefined;
    if (quickOrigin) this.config = { version: 0, config: { ingress: [{ service: quickOrigin }] } };
    this.server.on("request", (req, res) => void this.handle(req, res));
    this.server.on("session", (session) => {
      this.sessions.add(session);
      session.once("close", () => this.sessions.delete(session));
    });
  }

  get readyConnections(): number {
    return this.sessions.size;
  }

  run(): void {
    for (let i = 0; i < HA_CONNECTIONS; i++) void this.keepConnected(i);
  }

  /** Closes every connection once its requests are done (at most `graceMs`). */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    const closed = Promise.all([...this.sessions].map((s) => new Promise((resolve) => s.close(() => resolve(null)))));
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
    for (const s of this.sessions) s.destroy();
  }

  private async keepConnected(connIndex: number): Promise<void> {
    for (let failures = 0; !this.stopping; ) {
      try {
        await this.connectOnce(connIndex);
        failures = 0;
      } catch (error) {
        failures++;
        log("ERR", "Serve tunnel error", { connIndex, error: error instanceof Error ? error.message : String(error) });
      }
      if (this.stopping) return;
      const backoffMs = Math.min(1000 * 2 ** Math.max(0, failures - 1), 30_000);
      log("INF", `Retrying connection in up to ${backoffMs / 1000}s`, { connIndex });
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
    }
  }

  /** One registered connection, until it drops. */
  private async connectOnce(connIndex: number): Promise<void> {
    const [host, port] = [this.edge.slice(0, this.edge.lastIndexOf(":")), Number(this.edge.slice(this.edge.lastIndexOf(":") + 1))];
    const socket = net.connect(port, host);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const registration: Registration = { accountTag: this.token.a, tunnelId: this.token.t, tunnelSecret: this.token.s, connIndex, clientId: this.clientId, version: VERSION };
    socket.write(`${JSON.stringify(registration)}\n`);
    const answer = await readLine<Registered>(socket, 10_000).catch((error: Error) => {
      socket.destroy();
      throw error;
    });
    if (!answer.ok) {
      socket.destroy();
      throw new Error(answer.error);
    }
    log("INF", "Registered tunnel connection", { connIndex, connection: answer.connectionId, location: answer.location, protocol: "http2" });
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.on("error", () => socket.destroy());
    this.server.emit("connection", socket);
    await closed;
    if (!this.stopping) log("WRN", "Connection terminated", { connIndex });
  }

  private async handle(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): Promise<void> {
    if (req.headers[UPGRADE_HEADER] === UPDATE_CONFIGURATION) {
      const update = JSON.parse(await body(req)) as ConfigurationUpdate;
      if (!this.quick && update.version > this.config.version) {
        this.config = update;
        log("INF", "Updated to new configuration", { version: update.version, config: JSON.stringify(update.config) });
      }
      res.writeHead(200).end();
      return;
    }
    const rules = (this.config.config.ingress ?? []) as IngressRule[];
    const path = new URL(req.url, "http://origin").pathname;
    const rule = matchRule(rules, req.authority, path);
    if (!rule) return void res.writeHead(503, { "content-type": "text/plain" }).end("no ingress rules yet: the tunnel has no configuration\n");
    const status = /^http_status:(\d{3})$/.exec(rule.service);
    if (status) return void res.writeHead(Number(status[1])).end();
    const unimplemented = Object.keys(rule.originRequest ?? {}).filter((k) => !IMPLEMENTED_ORIGIN_OPTIONS.has(k));
    const target = URL.canParse(rule.service) ? new URL(rule.service) : undefined;
    if (!target || !/^https?:$/.test(target.protocol) || (target.pathname !== "/" && target.pathname !== "") || unimplemented.length > 0) {
      log("ERR", "origin not implemented by this cloudflared stand-in", { service: rule.service, options: unimplemented });
      return void res.writeHead(502, { "content-type": "text/plain" }).end(`the cloudflared stand-in does not implement ${unimplemented.length ? unimplemented.join(", ") : rule.service}\n`);
    }
    this.proxy(req, res, target, rule);
  }

  private proxy(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, target: URL, rule: IngressRule): void {
    const o = rule.originRequest ?? {};
    const secure = target.protocol === "https:";
    const hostPort = `${target.hostname}:${target.port || (secure ? 443 : 80)}`;
    const [host, port] = (this.overrides[hostPort] ?? hostPort).split(/:(?=\d+$)/) as [string, string];
    const headers = { ...forwardableHeaders(req.headers), host: o.httpHostHeader ?? req.authority };
    const options: https.RequestOptions = {
      host, port: Number(port), method: req.method, path: req.url, headers, agent: this.agentFor(rule, secure),
      ...(o.noHappyEyeballs ? { autoSelectFamily: false } : {}),
      ...(secure ? { servername: o.originServerName ?? target.hostname, rejectUnauthorized: !o.noTLSVerify } : {}),
    };
    const badGateway = (error: Error): void => {
      log("ERR", "Request failed", { originService: rule.service, error: error.message });
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" }).end(`Bad Gateway: ${error.message}\n`);
      else res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    };
    const outbound = (secure ? https : http).request(options, (answer) => {
      res.writeHead(answer.statusCode ?? 502, forwardableHeaders(answer.headers));
      answer.pipe(res);
    });
    outbound.on("error", badGateway);
    outbound.once("socket", (socket) => {
      if (o.tcpKeepAlive) socket.setKeepAlive(true, o.tcpKeepAlive * 1000);
      const phase = (seconds: number | undefined, event: string, what: string): void => {
        if (!seconds || (socket as net.Socket & { connecting: boolean }).connecting === false) return;
        const timer = setTimeout(() => outbound.destroy(new Error(`${what} timed out after ${seconds}s`)), seconds * 1000);
        socket.once(event, () => clearTimeout(timer));
      };
      phase(o.connectTimeout, "connect", "connecting to the origin");
      if (secure) phase(o.tlsTimeout, "secureConnect", "the TLS handshake with the origin");
    });
    if (o.disableChunkedEncoding) {
      void body(req).then((text) => outbound.setHeader("content-length", Buffer.byteLength(text)).end(text), badGateway);
    } else req.pipe(outbound);
  }

  /** One connection pool per origin rule, sized and timed by its options. */
  private agentFor(rule: IngressRule, secure: boolean): http.Agent {
    const key = JSON.stringify([rule.service, rule.originRequest ?? {}]);
    let agent = this.agents.get(key);
    if (!agent) {
      const o = rule.originRequest ?? {};
      const options: http.AgentOptions = { keepAlive: true, maxFreeSockets: o.keepAliveConnections ?? 100, timeout: (o.keepAliveTimeout ?? 90) * 1000 };
      agent = secure ? new https.Agent(options) : new http.Agent(options);
      this.agents.set(key, agent);
    }
    return agent;
  }
}

function body(req: http2.Http2ServerRequest): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (text += chunk));
    req.on("end", () => resolve(text));
    req.on("error", reject);
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const edge = process.env.TUNNEL_EDGE ?? fail("TUNNEL_EDGE (the fake edge's host:port) is not set: this stand-in only talks to the fake Cloudflare edge");
  const quick = args.url ? await requestQuickTunnel(process.env.TUNNEL_QUICK_SERVICE ?? "https://api.trycloudflare.com") : undefined;
  const token = quick?.credentials ?? readToken(args);
  if (quick) log("INF", `Your quick Tunnel has been created! Visit it at: https://${quick.hostname}`);
  const overrides = process.env.KTUBE_UPSTREAM_OVERRIDES ? (JSON.parse(process.env.KTUBE_UPSTREAM_OVERRIDES) as Record<string, string>) : {};
  const connector = new Connector(edge, token, overrides, args.url);
  const metrics = process.env.KTUBE_PROBE_ADDRESS ?? args.metrics ?? "127.0.0.1:0";
  const probe = http.createServer((req, res) => {
    const ready = connector.readyConnections;
    if (req.url === "/ready") res.writeHead(ready > 0 ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify({ status: ready > 0 ? 200 : 503, readyConnections: ready, connectorId: connector.clientId }));
    else if (req.url === "/quicktunnel") res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ hostname: quick?.hostname ?? "" }));
    else if (req.url === "/metrics") res.writeHead(200, { "content-type": "text/plain" }).end(`cloudflared_tunnel_ha_connections ${ready}\n`);
    else res.writeHead(404).end();
  });
  const [metricsHost, metricsPort] = metrics.split(/:(?=\d+$)/) as [string, string];
  probe.listen(Number(metricsPort), metricsHost || "0.0.0.0", () => log("INF", `Starting metrics server on ${metricsHost}:${(probe.address() as net.AddressInfo).port}/metrics`));
  log("INF", `Starting tunnel tunnelID=${token.t}`, { version: VERSION, edge });
  connector.run();
  const shutdown = (signal: string): void => {
    log("INF", `Initiating graceful shutdown due to signal ${signal} ...`);
    void connector.stop(args.gracePeriodMs).then(() => {
      probe.close();
      process.exit(0);
    });
  };
  process.once("SIGTERM", () => shutdown("terminated"));
  process.once("SIGINT", () => shutdown("interrupt"));
}

if (import.meta.main) await main();
