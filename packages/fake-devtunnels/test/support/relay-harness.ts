// What the relay tests share: a service with a started Relay, tunnels put straight into the
// service, the real SDK host (a TunnelRelayTunnelHost subclass forwarding tunnel ports to
// local backends) with a loopback management client standing in for the management API,
// backends, and a web-forwarding client.
import { expect } from "@jest/globals";
import { createServer as createHttpServer, request, type Server } from "node:http";
import { ConnectionStatus, SessionPortKey, TunnelRelayTunnelHost } from "@microsoft/dev-tunnels-connections";
import { TunnelAccessControlEntryType, TunnelAccessScopes, type Tunnel, type TunnelEndpoint, type TunnelPort, type TunnelRelayTunnelEndpoint } from "@microsoft/dev-tunnels-contracts";
import { ManagementApiVersions, TunnelManagementHttpClient, type TunnelRequestOptions } from "@microsoft/dev-tunnels-management";
import type { PortForwardingService } from "@microsoft/dev-tunnels-ssh-tcp";
import { Relay, type RelayOptions } from "../../src/relay/index.ts";
import { DevTunnelsService, type StoredTunnel } from "../../src/service.ts";

/**
 * The management API as the host uses it (updateTunnelEndpoint, deleteTunnelEndpoints,
 * getTunnel), answered from the service in memory. The real ManagementApi (src/management/)
 * is integrated separately; any other call goes to the (unreachable) production URI and fails.
 */
export class LoopbackManagementClient extends TunnelManagementHttpClient {
  private readonly service: DevTunnelsService;
  private readonly relay: Relay;
  endpointsUpdated = 0;
  endpointsDeleted = 0;
  /** The host token getTunnel hands out (a token refresh); default: the tunnel's current one. */
  refreshToken?: (stored: StoredTunnel) => string;

  constructor(service: DevTunnelsService, relay: Relay) {
    super({ name: "fake-devtunnels-relay-test", version: "0.0.0" }, ManagementApiVersions.Version20230927preview, async () => null, "http://localhost:1/");
    this.service = service;
    this.relay = relay;
  }

  override async updateTunnelEndpoint(tunnel: Tunnel, endpoint: TunnelEndpoint): Promise<TunnelEndpoint> {
    const stored = this.stored(tunnel);
    this.endpointsUpdated++;
    const result: TunnelRelayTunnelEndpoint = {
      ...endpoint,
      hostRelayUri: this.relay.hostRelayUri(stored.tunnel.tunnelId!),
      clientRelayUri: this.relay.clientRelayUri(stored.tunnel.tunnelId!),
    };
    stored.endpoints.set(endpoint.id!, result);
    return result;
  }

  override async deleteTunnelEndpoints(tunnel: Tunnel, id: string): Promise<boolean> {
    this.endpointsDeleted++;
    return this.stored(tunnel).endpoints.delete(id);
  }

  override async getTunnel(tunnel: Tunnel, options?: TunnelRequestOptions): Promise<Tunnel | null> {
    const stored = this.service.tunnels.get(tunnel.tunnelId ?? "");
    if (!stored) return null;
    const accessTokens: Record<string, string> = {};
    for (const scope of options?.tokenScopes ?? []) {
      accessTokens[scope] = scope === TunnelAccessScopes.Host && this.refreshToken ? this.refreshToken(stored) : this.service.issueToken(stored, [scope]);
    }
    return { ...tunnelOf(stored), accessTokens, ...(options?.includePorts ? {} : { ports: undefined }) };
  }

  private stored(tunnel: Tunnel): StoredTunnel {
    const stored = this.service.tunnels.get(tunnel.tunnelId ?? "");
    if (!stored) throw new Error(`tunnel ${tunnel.tunnelId} not found`);
    return stored;
  }
}

export function tunnelOf(stored: StoredTunnel): Tunnel {
  return { ...stored.tunnel, ports: [...stored.ports.values()].map((p) => ({ ...p })), endpoints: [...stored.endpoints.values()] };
}

/**
 * The SDK host KTube runs: each tunnel port forwards to a local backend port (research §4's
 * forwardPort override), not to localhost:<tunnel port>.
 */
export class ForwardingHost extends TunnelRelayTunnelHost {
  readonly targets = new Map<number, number>();

  protected override async forwardPort(pfs: PortForwardingService, port: TunnelPort): Promise<void> {
    const target = this.targets.get(port.portNumber);
    if (target === undefined) return super.forwardPort(pfs, port);
    if (pfs.localForwardedPorts.find((p) => p.remotePort === port.portNumber)) return;
    const forwarder = await pfs.forwardFromRemotePort("127.0.0.1", port.portNumber, "127.0.0.1", target);
    if (forwarder) this.remoteForwarders.set(new SessionPortKey(pfs.session.sessionId, port.portNumber).toString(), forwarder);
  }
}

export interface TunnelSpec {
  id: string;
  ports: number[];
  /** A tunnel-level Anonymous connect ACE. Default true. */
  anonymous?: boolean;
}

export interface WebResponse {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface RelayHarness {
  service: DevTunnelsService;
  relay: Relay;
  management: LoopbackManagementClient;
  /** Puts a tunnel into the service and returns it as the SDK sees it (with a host token). */
  addTunnel(spec: TunnelSpec): Tunnel;
  /** Adds a port to a stored tunnel (as the management API would). */
  addPort(tunnelId: string, port: number): void;
  /** A host (closed at teardown) forwarding `targets` (tunnel port → backend port). */
  host(targets: Record<number, number>, management?: LoopbackManagementClient): ForwardingHost;
  /** An HTTP backend answering `<name> <method> <url> host=<Host header>`; closed at teardown. */
  backend(name: string): Promise<number>;
  /** A request through the public web-forwarding listener, Host = the port's web-forwarding name. */
  web(tunnelId: string, port: number, options?: { path?: string; headers?: Record<string, string> }): Promise<WebResponse>;
  teardown(): Promise<void>;
}

export async function startRelayHarness(options: RelayOptions = {}): Promise<RelayHarness> {
  const service = new DevTunnelsService();
  const relay = new Relay(service, { portWaitMs: 500, ...options });
  await relay.start();
  const management = new LoopbackManagementClient(service, relay);
  const hosts: TunnelRelayTunnelHost[] = [];
  const servers: Server[] = [];

  const harness: RelayHarness = {
    service,
    relay,
    management,
    addTunnel(spec) {
      const tunnel: Tunnel = {
        tunnelId: spec.id,
        clusterId: service.clusterId,
        accessControl: {
          entries: spec.anonymous === false ? [] : [{ type: TunnelAccessControlEntryType.Anonymous, subjects: [], scopes: [TunnelAccessScopes.Connect] }],
        },
      };
      const stored: StoredTunnel = {
        owner: "sp-test",
        tunnel,
        ports: new Map(spec.ports.map((p) => [p, { tunnelId: spec.id, clusterId: service.clusterId, portNumber: p, protocol: "http" }])),
        endpoints: new Map(),
        tokens: new Map(),
        created: Date.now(),
        expires: Date.now() + 3600_000,
      };
      service.tunnels.set(spec.id, stored);
      const hostToken = service.issueToken(stored, [TunnelAccessScopes.Host]);
      return { ...tunnelOf(stored), accessTokens: { [TunnelAccessScopes.Host]: hostToken } };
    },
    addPort(tunnelId, port) {
      const stored = service.tunnels.get(tunnelId);
      if (!stored) throw new Error(`no tunnel ${tunnelId}`);
      stored.ports.set(port, { tunnelId, clusterId: service.clusterId, portNumber: port, protocol: "http" });
    },
    host(targets, client = management) {
      const host = new ForwardingHost(client);
      for (const [port, target] of Object.entries(targets)) host.targets.set(Number(port), target);
      hosts.push(host);
      return host;
    },
    async backend(name) {
      const server = createHttpServer((req, res) => {
        res.setHeader("x-backend", name);
        res.end(`${name} ${req.method} ${req.url} host=${req.headers.host} xfh=${req.headers["x-forwarded-host"]}`);
      });
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      return (server.address() as { port: number }).port;
    },
    web(tunnelId, port, opts = {}) {
      return new Promise((resolve, reject) => {
        const req = request(
          {
            host: "127.0.0.1",
            port: relay.publicHttpPort,
            path: opts.path ?? "/",
            headers: { host: relay.webForwardingHost(tunnelId, port), connection: "close", ...opts.headers },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
            res.on("error", reject);
          },
        );
        req.on("error", reject);
        req.end();
      });
    },
    async teardown() {
      for (const host of hosts) await host.dispose().catch(() => undefined);
      await relay.close();
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
  };
  return harness;
}

/** Resolves with the disconnect error when the host reaches `status`. */
export function statusReached(host: TunnelRelayTunnelHost, status: ConnectionStatus, timeoutMs = 10_000): Promise<Error | undefined> {
  if (host.connectionStatus === status) return Promise.resolve(host.disconnectError);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`host never reached ${status} (now ${host.connectionStatus})`)), timeoutMs);
    const registration = host.connectionStatusChanged((e) => {
      if (e.status === status) {
        clearTimeout(timer);
        registration.dispose();
        resolve(e.disconnectError);
      }
    });
  });
}

export async function eventually(check: () => void | Promise<void>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** Relay violations must stay empty in every test. */
export function expectNoViolations(relay: Relay): void {
  expect(relay.violations).toEqual([]);
}
