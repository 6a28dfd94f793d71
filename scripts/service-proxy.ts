// Cluster DNS and kube-proxy, as far as the local demo's controllers need them: the
// Cloudflare controller reads a quick tunnel's URL from `http://<svc>.<ns>.svc.cluster.local:2000/quicktunnel`,
// a name only a cluster resolves. This HTTP proxy (the controller is started with
// NODE_USE_ENV_PROXY and HTTP_PROXY pointing here, loopback excluded) sends such a request to
// the process of a Pod behind that Service: each Pod the local kubelet runs gets a port of
// its own for its probe and metrics server (KTUBE_PROBE_ADDRESS, which the cloudflared
// stand-in and KTube's connectors listen on), chosen here before it starts.
import { CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { CONNECTOR_ENV } from "@ktube/provider-kit";
import { freePort } from "@ktube/testenv";
import http from "node:http";
import net from "node:net";

const SERVICE_HOST = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?$/;

export class LocalServiceProxy {
  private readonly core: CoreV1Api;
  /** `namespace/pod` -> the loopback port its process listens on. */
  private readonly ports = new Map<string, number>();
  private readonly server = http.createServer((req, res) => void this.forward(req, res).catch((error: Error) => answer(res, 502, error.message)));

  constructor(kc: KubeConfig) {
    this.core = kc.makeApiClient(CoreV1Api);
    // Node's fetch asks for a tunnel (CONNECT) even to plain HTTP.
    this.server.on("connect", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void this.tunnel(req, socket, head));
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** The environment a Pod's process starts with: its own probe address (LocalKubelet's `podEnv`). */
  async podEnv(pod: V1Pod): Promise<Record<string, string>> {
    const port = await freePort();
    this.ports.set(`${pod.metadata!.namespace}/${pod.metadata!.name}`, port);
    return { [CONNECTOR_ENV.probeAddress]: `127.0.0.1:${port}` };
  }

  /** The local port of a Pod behind the Service `hostname` names, or why there is none. */
  private async resolve(hostname: string): Promise<number | string> {
    const service = SERVICE_HOST.exec(hostname);
    if (!service) return `the local demo's proxy only reaches Services (<svc>.<ns>.svc.cluster.local), not ${hostname}`;
    const [, name, namespace] = service as unknown as [string, string, string];
    const svc = await this.core.readNamespacedService({ namespace, name });
    const selector = Object.entries(svc.spec?.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(",");
    const pods = selector ? (await this.core.listNamespacedPod({ namespace, labelSelector: selector })).items : [];
    const port = pods.filter((p) => !p.metadata?.deletionTimestamp).map((p) => this.ports.get(`${namespace}/${p.metadata!.name}`)).find((p) => p !== undefined);
    return port ?? `no Pod of Service ${namespace}/${name} runs here`;
  }

  private async tunnel(req: http.IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
    socket.on("error", () => socket.destroy());
    const port = await this.resolve((req.url ?? "").replace(/:\d+$/, "")).catch((error: Error) => error.message);
    if (typeof port === "string") return void socket.end(`HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\n\r\n${port}\n`);
    const outbound = net.connect(port, "127.0.0.1", () => {
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      outbound.write(head);
      socket.pipe(outbound).pipe(socket);
    });
    outbound.on("error", () => socket.destroy());
    socket.once("close", () => outbound.destroy());
  }

  private async forward(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const target = URL.canParse(req.url ?? "") ? new URL(req.url!) : undefined;
    if (!target) return answer(res, 400, `a proxy request names its target in full, not ${req.url}`);
    const port = await this.resolve(target.hostname);
    if (typeof port === "string") return answer(res, 502, port);
    const outbound = http.request({ host: "127.0.0.1", port, method: req.method, path: `${target.pathname}${target.search}`, headers: { ...req.headers, host: target.host } }, (upstream) => {
      res.writeHead(upstream.statusCode ?? 502, upstream.headers);
      upstream.pipe(res);
    });
    outbound.on("error", (error) => answer(res, 502, error.message));
    req.pipe(outbound);
  }
}

function answer(res: http.ServerResponse, status: number, text: string): void {
  if (!res.headersSent) res.writeHead(status, { "content-type": "text/plain" }).end(`${text}\n`);
  else res.destroy();
}
