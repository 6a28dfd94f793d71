// http_connection_manager on the data path, for HTTP/1.1: each request's Host (without its
// port when `strip_any_host_port`) picks the virtual host (Envoy's order: exact domain, then
// the longest `*.suffix`, then the longest `prefix.*`, then `*`), the first route whose
// `path` equals or `prefix` starts the request path picks the cluster, and the request is
// proxied to a healthy host of it (with the cluster's PROXY protocol header on the upstream
// connection). Answers as Envoy's router: 404 without a route, 503 `no healthy upstream`,
// 504 `upstream request timeout` after the route's `timeout` (default 15s, 0 disables),
// 503 `upstream connect error or disconnect/reset before headers` when the host fails.
// `use_remote_address` appends the client's address to X-Forwarded-For.
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { durationSeconds } from "../config/spec.ts";
import type { HttpConnectionManager } from "../config/subset.ts";
import type { StatsScope } from "../stats/store.ts";
import { plainAddress } from "./proxy-protocol.ts";
import type { UpstreamCluster } from "./upstream.ts";

type VirtualHost = NonNullable<NonNullable<HttpConnectionManager["route_config"]>["virtual_hosts"]>[number];

function findVirtualHost(hosts: readonly VirtualHost[], host: string): VirtualHost | undefined {
  let best: { vh: VirtualHost; rank: number; length: number } | undefined;
  for (const vh of hosts) {
    for (const domain of vh.domains ?? []) {
      const d = domain.toLowerCase();
      let rank = -1;
      if (d === host) rank = 3;
      else if (d === "*") rank = 0;
      else if (d.startsWith("*") && host.endsWith(d.slice(1)) && host.length > d.length - 1) rank = 2;
      else if (d.endsWith("*") && host.startsWith(d.slice(0, -1)) && host.length > d.length - 1) rank = 1;
      if (rank < 0) continue;
      if (!best || rank > best.rank || (rank === best.rank && d.length > best.length)) best = { vh, rank, length: d.length };
    }
  }
  return best?.vh;
}

export function serveHttp(
  config: HttpConnectionManager,
  downstream: Duplex,
  client: { address: string; port: number; localAddress: string; localPort: number },
  cluster: (name: string) => UpstreamCluster | undefined,
  stats: StatsScope,
): void {
  const server = createServer((req, res) => route(req, res));
  const route = (req: IncomingMessage, res: ServerResponse): void => {
    stats.counter("downstream_rq_total").inc();
    const reply = (status: number, body: string): void => {
      res.writeHead(status, { "content-type": "text/plain", "content-length": Buffer.byteLength(body), server: "envoy" });
      res.end(body);
    };
    let host = (req.headers.host ?? "").toLowerCase();
    if (config.strip_any_host_port) host = host.replace(/:\d+$/, "");
    const vh = findVirtualHost(config.route_config?.virtual_hosts ?? [], host);
    const path = (req.url ?? "/").split("?")[0]!;
    const entry = vh?.routes?.find((r) => (r.match?.path !== undefined ? r.match.path === path : path.startsWith(r.match?.prefix ?? "\u0000")));
    const upstream = entry?.route?.cluster ? cluster(entry.route.cluster) : undefined;
    if (!entry || !upstream) {
      stats.counter("downstream_rq_4xx").inc();
      return reply(404, "");
    }
    const target = upstream.pick();
    if (!target) {
      upstream.stats.counter("upstream_cx_none_healthy").inc();
      return reply(503, "no healthy upstream");
    }
    const headers = { ...req.headers };
    if (config.use_remote_address) {
      const previous = headers["x-forwarded-for"];
      headers["x-forwarded-for"] = previous ? `${String(previous)}, ${client.address}` : client.address;
    }
    headers["x-forwarded-proto"] ??= "http";
    const header = upstream.proxyHeader(target, { sourceAddress: client.address, sourcePort: client.port, destinationAddress: client.localAddress, destinationPort: client.localPort });
    upstream.stats.counter("upstream_cx_total").inc();
    target.total++;
    const out = request({
      method: req.method,
      path: req.url,
      headers,
      createConnection: () => {
        const socket: Socket = connect({ host: target.endpoint.address.ip, port: target.endpoint.address.port });
        if (header) socket.write(header);
        return socket;
      },
    });
    const timeoutMs = durationSeconds(entry.route?.timeout ?? "15s") * 1000;
    const timer = timeoutMs > 0 ? setTimeout(() => {
      out.destroy();
      if (!res.headersSent) reply(504, "upstream request timeout");
    }, timeoutMs) : undefined;
    out.on("response", (upstreamRes) => {
      clearTimeout(timer);
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
      upstreamRes.pipe(res);
    });
    out.on("error", () => {
      clearTimeout(timer);
      if (!res.headersSent) reply(503, "upstream connect error or disconnect/reset before headers");
      else res.destroy();
    });
    req.pipe(out);
  };
  server.emit("connection", downstream);
}

export const clientOf = (socket: Socket): { address: string; port: number; localAddress: string; localPort: number } => ({
  address: plainAddress(socket.remoteAddress ?? ""),
  port: socket.remotePort ?? 0,
  localAddress: plainAddress(socket.localAddress ?? ""),
  localPort: socket.localPort ?? 0,
});
