// Several paths on one hostname: ngrok gives the hostname one endpoint, and the endpoint
// forwards to this local router, which sends each request to the route with the longest
// matching path prefix (the same rule as Cloudflare's ingress and the binding rules).
// Written here instead of using an ngrok traffic policy: it works on every plan (the free
// plan allows 5 policy rules), needs no internal endpoints, and keeps the routing in one
// place the tests can reach. WebSocket and other upgrades are passed through.
import http from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import type { AddressInfo } from "node:net";

export interface PathTarget {
  path: string;
  /** http://host:port or https://host:port */
  upstream: string;
}

export class PathRouter {
  private targets: PathTarget[] = [];
  private readonly server: http.Server;

  constructor(targets: PathTarget[]) {
    this.update(targets);
    this.server = http.createServer((req, res) => this.forward(req, res));
    this.server.on("upgrade", (req, socket, head) => this.upgrade(req, socket as net.Socket, head));
    this.server.on("clientError", (_error, socket) => socket.destroy());
  }

  /** Longest prefix first; a prefix matches whole path segments (`/api` matches `/api/x`, not `/apix`). */
  update(targets: PathTarget[]): void {
    this.targets = [...targets].sort((a, b) => b.path.length - a.path.length);
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  match(path: string): PathTarget | undefined {
    const pathname = path.split("?")[0] ?? "/";
    return this.targets.find((t) => t.path === "/" || pathname === t.path || pathname.startsWith(t.path.endsWith("/") ? t.path : `${t.path}/`));
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    const target = this.match(req.url ?? "/");
    if (!target) {
      res.writeHead(404, { "content-type": "text/plain" }).end("no route for this path\n");
      return;
    }
    const url = new URL(target.upstream);
    const client = url.protocol === "https:" ? https : http;
    const upstream = client.request(
      {
        host: url.hostname,
        port: url.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        // In-cluster certificates rarely name the Service's DNS name (as the agent's own forwarding does).
        ...(url.protocol === "https:" ? { rejectUnauthorized: false } : {}),
      },
      (response) => {
        res.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(res);
      },
    );
    upstream.on("error", (error) => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
      res.end(`failed to reach the backend: ${error.message}\n`);
    });
    req.pipe(upstream);
  }

  private upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const target = this.match(req.url ?? "/");
    if (!target) return void socket.end("HTTP/1.1 404 Not Found\r\n\r\n");
    const url = new URL(target.upstream);
    const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
    const upstream = url.protocol === "https:" ? tls.connect({ host: url.hostname, port, rejectUnauthorized: false }) : net.connect(port, url.hostname);
    upstream.once(url.protocol === "https:" ? "secureConnect" : "connect", () => {
      const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head.length) upstream.write(head);
      upstream.pipe(socket).pipe(upstream);
    });
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  }
}
