// The Dev Tunnels host: the SDK's TunnelRelayTunnelHost, made to forward each tunnel port to
// its Service (the SDK forwards only to localhost ports of the same number), supervised:
// - each route gets its own local TCP proxy on 127.0.0.1:<ephemeral>, because the SDK refuses
//   two forwarders to one destination port number ("Local port N is already forwarded") and
//   two routes may well target port 80 of two Services;
// - forwarders of removed ports are disposed (the SDK's refreshPorts never removes them in
//   1.3.60: it iterates a Map with Object.entries);
// - a host the relay dropped for a newer one (tooManyConnections) steps aside instead of
//   fighting; any other disconnect rebuilds the host with a capped, jittered backoff;
// - the relay connection has no keep-alive in protocol V2, so the service's own view
//   (hostConnectionCount) is checked periodically and a host it no longer sees is rebuilt.
import net from "node:net";
import { ConnectionStatus, SessionPortKey, TunnelRelayTunnelHost } from "@microsoft/dev-tunnels-connections";
import type { Tunnel, TunnelPort } from "@microsoft/dev-tunnels-contracts";
import type { TunnelManagementHttpClient } from "@microsoft/dev-tunnels-management";
import { SshDisconnectReason } from "@microsoft/dev-tunnels-ssh";
import type { PortForwardingService } from "@microsoft/dev-tunnels-ssh-tcp";
import { REPORT_VERSION, type HostReport } from "../provider/host-report.ts";
import { tableHash, type PortTable } from "../provider/ports.ts";

/** A TunnelRelayTunnelHost that forwards each port to the proxy `target(port)` names. */
class ServiceTunnelHost extends TunnelRelayTunnelHost {
  target: (port: number) => number | undefined = () => undefined;

  protected override async forwardPort(pfs: PortForwardingService, port: TunnelPort): Promise<void> {
    const local = this.target(port.portNumber);
    if (local === undefined || pfs.localForwardedPorts.find((p) => p.remotePort === port.portNumber)) return;
    const forwarder = await pfs.forwardFromRemotePort("127.0.0.1", port.portNumber, "127.0.0.1", local);
    if (forwarder) this.remoteForwarders.set(new SessionPortKey(pfs.session.sessionId, port.portNumber).toString(), forwarder);
  }

  override async refreshPorts(): Promise<void> {
    await super.refreshPorts();
    const ports = new Set((this.tunnel?.ports ?? []).map((p) => p.portNumber));
    for (const [key, forwarder] of this.remoteForwarders) {
      if (ports.has(forwarder.remotePort)) continue;
      forwarder.dispose();
      this.remoteForwarders.delete(key);
    }
  }
}

/** One route's local proxy: the forwarder's destination, dialling the route's Service. */
class RouteProxy {
  upstream: string;
  private readonly server: net.Server;
  port = 0;

  constructor(upstream: string) {
    this.upstream = upstream;
    this.server = net.createServer((socket) => {
      const [host, port] = splitHostPort(this.upstream);
      const out = net.connect({ host, port, autoSelectFamily: true });
      socket.pipe(out).pipe(socket);
      out.on("error", () => socket.destroy());
      socket.on("error", () => out.destroy());
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  close(): void {
    this.server.close();
  }
}

function splitHostPort(value: string): [string, number] {
  const i = value.lastIndexOf(":");
  return [value.slice(0, i), Number(value.slice(i + 1))];
}

export interface HostSupervisorOptions {
  /** The management client the host uses (authenticated with the host token). */
  management: () => TunnelManagementHttpClient;
  /** `host:port` -> `host:port`, where Services are reached from outside their cluster. */
  upstreamOverrides: Record<string, string>;
  onReport(report: HostReport): void;
  log: (level: "info" | "warn" | "error", message: string, fields?: Record<string, unknown>) => void;
  /** How often the service is asked whether it still sees this host (default 30 s). */
  livenessMs?: number;
  random?: () => number;
}

export class HostSupervisor {
  private readonly options: HostSupervisorOptions;
  private table: PortTable | undefined;
  private host: ServiceTunnelHost | undefined;
  private readonly proxies = new Map<number, RouteProxy>();
  private state: HostReport["state"] = "connecting";
  private problem: { reason: string; message: string } | undefined;
  private failures = 0;
  private retry: NodeJS.Timeout | undefined;
  private liveness: NodeJS.Timeout | undefined;
  private stopped = false;
  private starting: Promise<void> | undefined;

  constructor(options: HostSupervisorOptions) {
    this.options = options;
  }

  get ready(): boolean {
    return this.state === "connected";
  }

  /** A new port table: proxies follow it at once; a connected host re-reads the tunnel's ports. */
  async setTable(table: PortTable): Promise<void> {
    this.table = table;
    for (const [port, proxy] of this.proxies) {
      if (!table.ports.some((p) => p.port === port)) {
        proxy.close();
        this.proxies.delete(port);
      }
    }
    for (const p of table.ports) {
      const upstream = this.override(p.upstream);
      const proxy = this.proxies.get(p.port);
      if (proxy) proxy.upstream = upstream;
      else {
        const created = new RouteProxy(upstream);
        await created.listen();
        this.proxies.set(p.port, created);
      }
    }
    if (this.host && this.state === "connected") {
      await this.host.refreshPorts().catch((error: unknown) => this.options.log("warn", "could not refresh the ports", { error: String(error) }));
    } else if (this.state !== "conflict") this.start();
    this.report();
  }

  private override(upstream: string): string {
    return this.options.upstreamOverrides[upstream] ?? upstream;
  }

  private start(): void {
    if (this.host || this.starting || this.retry || this.stopped || !this.table) return;
    this.starting = this.connect().finally(() => (this.starting = undefined));
  }

  private async connect(): Promise<void> {
    const table = this.table!;
    const management = this.options.management();
    const host = new ServiceTunnelHost(management);
    host.target = (port) => this.proxies.get(port)?.port;
    this.host = host;
    this.setState("connecting");
    host.connectionStatusChanged((e) => {
      if (this.host !== host) return;
      if (e.status === ConnectionStatus.Connected) {
        this.failures = 0;
        this.setState("connected");
        // After a reconnect the tunnel may have changed under the host (re-created after it
        // expired, ports added meanwhile): forward what it has now.
        void host.refreshPorts().catch((error: unknown) => this.options.log("warn", "could not refresh the ports", { error: String(error) }));
      } else if (e.status === ConnectionStatus.Disconnected) this.lost(host, e.disconnectError);
    });
    try {
      const tunnel: Tunnel | null = await management.getTunnel({ tunnelId: table.tunnelId, clusterId: table.region }, { includePorts: true });
      if (!tunnel) throw new Error(`dev tunnel ${table.tunnelId} not found`);
      await host.connect(tunnel, { enableRetry: true, enableReconnect: true });
      this.watchLiveness(host);
    } catch (error) {
      this.lost(host, error);
    }
  }

  /** The host is down: step aside for a newer one, or rebuild with backoff. */
  private lost(host: ServiceTunnelHost, error: unknown): void {
    if (this.host !== host || this.stopped) return;
    this.host = undefined;
    clearInterval(this.liveness);
    if (host.disconnectReason === SshDisconnectReason.tooManyConnections) {
      // The relay keeps the newest host: another replica (a rollout's new pod) took over.
      this.problem = { reason: "HostConflict", message: "another host connected to this dev tunnel (the relay keeps the newest); this one stepped aside" };
      this.options.log("warn", "another host took over this dev tunnel; this one stepped aside and will not fight for it");
      this.setState("conflict");
      void host.dispose().catch(() => undefined);
      return;
    }
    this.failures++;
    this.problem = { reason: "RelayDisconnected", message: `the relay connection ended: ${error instanceof Error ? error.message : String(error ?? host.disconnectReason ?? "disconnected")}` };
    this.setState("disconnected");
    void host.dispose().catch(() => undefined);
    const delay = Math.min(60_000, 1000 * 2 ** Math.min(this.failures - 1, 6));
    const jittered = Math.round(delay / 2 + ((this.options.random ?? Math.random)() * delay) / 2);
    this.options.log("warn", "the host is down; reconnecting", { inMs: jittered, reason: this.problem.message });
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.start();
    }, jittered);
  }

  /** V2 has no keep-alive: ask the service whether it still sees a host; rebuild if it does not. */
  private watchLiveness(host: ServiceTunnelHost): void {
    clearInterval(this.liveness);
    this.liveness = setInterval(() => {
      void (async () => {
        if (this.host !== host || this.state !== "connected" || !this.table) return;
        try {
          const t = await this.options.management().getTunnel({ tunnelId: this.table.tunnelId, clusterId: this.table.region });
          const count = t?.status?.hostConnectionCount;
          const current = typeof count === "number" ? count : count?.current;
          if (current === 0) {
            this.options.log("warn", "the service sees no host for this tunnel while this one believes it is connected; rebuilding");
            this.lost(host, new Error("the relay no longer sees this host"));
          }
        } catch {
          // The management API being unreachable says nothing about the relay.
        }
      })();
    }, this.options.livenessMs ?? 30_000);
    this.liveness.unref();
  }

  private setState(state: HostReport["state"]): void {
    this.state = state;
    if (state === "connected") this.problem = undefined;
    this.report();
  }

  private report(): void {
    if (!this.table) return;
    this.options.onReport({
      version: REPORT_VERSION,
      table: tableHash(this.table),
      state: this.state,
      ...(this.problem ? this.problem : {}),
      ports: this.state === "connected" ? this.table.ports.map((p) => p.port) : [],
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    clearInterval(this.liveness);
    await this.starting?.catch(() => undefined);
    // dispose() deletes the relay endpoint: the next host connects faster.
    await this.host?.dispose().catch(() => undefined);
    for (const proxy of this.proxies.values()) proxy.close();
  }
}
