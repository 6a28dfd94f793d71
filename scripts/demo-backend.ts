// The local demo's backend (`npm start`): an HTTP server, the same behind TLS (a throwaway CA's
// certificate: connectors do not verify in-cluster certificates) and a TCP echo, on loopback,
// stand in for every Service the examples name, and the Services themselves (no selector: nothing
// runs behind them in the cluster), with the map connectors use to reach them from this
// machine (CONNECTOR_ENV.upstreamOverrides).
import type { CoreV1Api } from "@kubernetes/client-node";
import { createTestCa } from "@ktube/testenv";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface DemoBackend {
  httpPort: number;
  httpsPort: number;
  tcpPort: number;
  close(): Promise<void>;
}

type Speaks = "http" | "https" | "tcp";

export interface DemoService {
  namespace: string;
  name: string;
  ports: Array<{ name: string; port: number; speaks: Speaks }>;
}

/**
 * Every Service examples/*.yaml routes to, with the port names and numbers they use, and what
 * each port speaks as the routes to it expect: a route's protocol HTTPS or TLS passthrough
 * means the Service itself speaks TLS.
 */
export const DEMO_SERVICES: DemoService[] = [
  { namespace: "shop", name: "shop-web", ports: [{ name: "http", port: 80, speaks: "http" }, { name: "https", port: 443, speaks: "https" }] },
  { namespace: "shop", name: "shop-admin", ports: [{ name: "https", port: 8443, speaks: "https" }] },
  { namespace: "shop", name: "shop-bastion", ports: [{ name: "ssh", port: 22, speaks: "tcp" }] },
  { namespace: "shop", name: "shop-api", ports: [{ name: "http", port: 8080, speaks: "http" }] },
  { namespace: "shop", name: "shop-db", ports: [{ name: "postgres", port: 5432, speaks: "tcp" }] },
  { namespace: "shop", name: "mail", ports: [{ name: "smtp", port: 25, speaks: "tcp" }] },
  { namespace: "demo", name: "preview-web", ports: [{ name: "http", port: 3000, speaks: "http" }] },
  { namespace: "demo", name: "whoami", ports: [{ name: "http", port: 80, speaks: "http" }] },
];

/** What the HTTP side answers: which request reached it, as the public side passed it on. */
export const demoAnswer = (method: string, host: string, path: string): string => `hello from KTube's demo backend: ${method} ${host}${path}\n`;

export async function startDemoBackend(): Promise<DemoBackend> {
  const answer = (req: http.IncomingMessage, res: http.ServerResponse): void =>
    void res.writeHead(200, { "content-type": "text/plain" }).end(demoAnswer(req.method ?? "GET", req.headers.host ?? "", req.url ?? "/"));
  const web = http.createServer(answer);
  const dir = mkdtempSync(join(tmpdir(), "ktube-demo-backend-"));
  const certificate = await (await createTestCa(dir, "ktube-demo-ca")).issue("demo-backend", { ipAddresses: ["127.0.0.1"], dnsNames: DEMO_SERVICES.map((s) => `${s.name}.${s.namespace}.svc`) });
  rmSync(dir, { recursive: true, force: true });
  const secureWeb = https.createServer({ cert: certificate.cert, key: certificate.key }, answer);
  const echoed = new Set<net.Socket>();
  const echo = net.createServer((socket) => {
    echoed.add(socket);
    socket.once("close", () => echoed.delete(socket));
    socket.on("error", () => socket.destroy());
    socket.pipe(socket);
  });
  const listen = (server: net.Server): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port));
    });
  const httpPort = await listen(web);
  const httpsPort = await listen(secureWeb);
  const tcpPort = await listen(echo);
  const close = (server: net.Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));
  return {
    httpPort,
    httpsPort,
    tcpPort,
    async close() {
      web.closeAllConnections();
      secureWeb.closeAllConnections();
      for (const socket of echoed) socket.destroy();
      await Promise.all([close(web), close(secureWeb), close(echo)]);
    },
  };
}

/** Creates the Services (the namespaces exist). */
export async function createDemoServices(core: CoreV1Api): Promise<void> {
  for (const s of DEMO_SERVICES) {
    await core.createNamespacedService({
      namespace: s.namespace,
      body: { metadata: { name: s.name, labels: { "app.kubernetes.io/part-of": "ktube-demo" } }, spec: { ports: s.ports.map((p) => ({ name: p.name, port: p.port, protocol: "TCP" })) } },
    });
  }
}

/** `svc.ns.svc.cluster.local:port` -> the backend's loopback address that speaks what the port does. */
export function demoUpstreams(backend: DemoBackend): Record<string, string> {
  return Object.fromEntries(
    DEMO_SERVICES.flatMap((s) => s.ports.map((p) => [`${s.name}.${s.namespace}.svc.cluster.local:${p.port}`, `127.0.0.1:${{ http: backend.httpPort, https: backend.httpsPort, tcp: backend.tcpPort }[p.speaks]}`])),
  );
}
