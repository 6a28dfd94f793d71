// The data path: what the listener and cluster managers hold, served on real sockets.
//
// TCP listeners are bound to their socket_address when added (a bind error counts
// `listener_manager.listener_create_failure`, is logged, and the listener is removed, as in
// Envoy), stay bound while unchanged, and are drained when removed: the listening socket
// closes at once, established connections go on until `--drain-time-s`, then are closed.
// An update that keeps the address keeps the socket; connections on chains that changed (all
// of them for a listener-level change) are drained the same way.
//
// A connection: tls_inspector (when the listener has it) peeks the ClientHello for SNI, the
// chain is chosen with selectFilterChain (none: counted in `listener.<addr>.no_filter_chain_match`
// and closed), TLS is terminated when the chain has a DownstreamTlsContext, then tcp_proxy
// opens a connection to a host of the cluster (round robin over healthy hosts), writes the
// PROXY protocol header when the host's transport socket asks for it, and pipes both ways
// with half-close; `idle_timeout` (default 1h, 0 disables) closes both sides.
//
// UDP listeners run udp_proxy: one session (own upstream socket) per downstream address,
// closed after `idle_timeout` (default 60s) without datagrams.
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from "node:dgram";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import type { ClusterManager } from "../clusters/cluster-manager.ts";
import { durationSeconds } from "../config/spec.ts";
import type { HttpConnectionManager, TcpProxy } from "../config/subset.ts";
import { selectFilterChain, type ActiveFilterChain, type ActiveListener } from "../listeners/build-listener.ts";
import type { ListenerChange, ListenerManager } from "../listeners/listener-manager.ts";
import { SOURCE, type EnvoyLogger } from "../log.ts";
import type { StatsScope, StatsStore } from "../stats/store.ts";
import { inspectClientHello } from "./client-hello.ts";
import { clientOf, serveHttp } from "./http-router.ts";
import { plainAddress } from "./proxy-protocol.ts";
import { serverTlsOptions } from "./tls-context.ts";
import { UpstreamCluster } from "./upstream.ts";

const HCM_TYPE = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

export interface DataPlaneOptions {
  listeners: ListenerManager;
  clusters: ClusterManager;
  stats: StatsStore;
  log: EnvoyLogger;
  drainTimeSeconds: number;
}

interface Connection {
  chainHash: string;
  destroy(): void;
}

const listenerStatPrefix = (listener: ActiveListener): string => `listener.${listener.address.text.replace(/:(\d+)$/, "_$1")}.`;

class TcpListenerRuntime {
  listener: ActiveListener;
  readonly server: Server;
  readonly connections = new Set<Connection>();
  private readonly plane: DataPlane;

  constructor(listener: ActiveListener, plane: DataPlane) {
    this.listener = listener;
    this.plane = plane;
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, (socket) => this.accept(socket));
  }

  private stats(): StatsScope {
    return this.plane.stats.scope(listenerStatPrefix(this.listener));
  }

  private accept(socket: Socket): void {
    const listener = this.listener;
    const stats = this.stats();
    stats.counter("downstream_cx_total").inc();
    stats.gauge("downstream_cx_active").add();
    socket.once("close", () => stats.gauge("downstream_cx_active").sub());
    socket.on("error", () => socket.destroy());
    const connection: Connection = { chainHash: "", destroy: () => socket.destroy() };
    this.connections.add(connection);
    socket.once("close", () => this.connections.delete(connection));
    const proceed = (serverName: string, transport: string, peeked: Buffer): void => {
      const chain = selectFilterChain(listener, serverName, transport);
      if (!chain) {
        stats.counter("no_filter_chain_match").inc();
        this.plane.log.debug("conn_handler", SOURCE.activeTcpListener, `closing connection from ${socket.remoteAddress}: no matching filter chain found`);
        socket.destroy();
        return;
      }
      connection.chainHash = chain.hash;
      this.plane.serveChain(listener, chain, socket, peeked);
    };
    if (!listener.tlsInspector) return proceed("", "raw_buffer", Buffer.alloc(0));
    let buffered = Buffer.alloc(0);
    const timeoutSeconds = durationSeconds(listener.config.listener_filters_timeout ?? "15s");
    const timer =
      timeoutSeconds > 0
        ? setTimeout(() => {
            socket.off("data", onData);
            stats.counter("downstream_pre_cx_timeout").inc();
            if (listener.config.continue_on_listener_filters_timeout) {
              socket.pause();
              proceed("", "raw_buffer", buffered);
            } else socket.destroy();
          }, timeoutSeconds * 1000)
        : undefined;
    const onData = (data: Buffer): void => {
      buffered = Buffer.concat([buffered, data]);
      const result = inspectClientHello(buffered);
      if (!result.done) return;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.pause();
      proceed(result.tls ? result.serverName : "", result.tls ? "tls" : "raw_buffer", buffered);
    };
    socket.on("data", onData);
    socket.once("end", () => {
      // Closed before the ClientHello was complete.
      if (socket.listeners("data").includes(onData as (...args: unknown[]) => void)) {
        clearTimeout(timer);
        socket.destroy();
      }
    });
  }

  /** Stops accepting and closes connections matching `which` after the drain time. */
  drainConnections(which: (connection: Connection) => boolean): void {
    const draining = [...this.connections].filter(which);
    if (draining.length === 0) return;
    this.plane.afterDrain(() => {
      for (const connection of draining) connection.destroy();
    });
  }
}

interface UdpSession {
  timer: NodeJS.Timeout | undefined;
  send(datagram: Buffer): void;
  close(): void;
}

class UdpListenerRuntime {
  listener: ActiveListener;
  readonly socket: UdpSocket;
  private readonly sessions = new Map<string, UdpSession>();
  private readonly plane: DataPlane;

  constructor(listener: ActiveListener, plane: DataPlane) {
    this.listener = listener;
    this.plane = plane;
    this.socket = createSocket({ type: listener.address.ip.includes(":") ? "udp6" : "udp4" });
    this.socket.on("message", (message, remote) => this.onDatagram(message, remote));
    this.socket.on("error", () => undefined);
  }

  private stats(): StatsScope {
    return this.plane.stats.scope(`udp.${this.listener.udpProxy?.stat_prefix ?? ""}.`);
  }

  private onDatagram(message: Buffer, remote: RemoteInfo): void {
    const stats = this.stats();
    stats.counter("downstream_sess_rx_datagrams").inc();
    const key = `${remote.address}:${remote.port}`;
    let session = this.sessions.get(key);
    if (!session) {
      const action = this.listener.udpProxy?.matcher?.on_no_match?.action;
      const clusterName = (action?.config as { cluster?: string } | undefined)?.cluster ?? "";
      const cluster = this.plane.cluster(clusterName);
      if (!cluster) {
        stats.counter("downstream_sess_no_route").inc();
        return;
      }
      const host = cluster.pick();
      if (!host) {
        cluster.stats.counter("upstream_cx_none_healthy").inc();
        return;
      }
      stats.counter("downstream_sess_total").inc();
      stats.gauge("downstream_sess_active").add();
      const upstream = createSocket({ type: host.endpoint.address.ip.includes(":") ? "udp6" : "udp4" });
      upstream.on("error", () => undefined);
      upstream.connect(host.endpoint.address.port, host.endpoint.address.ip);
      const idleMs = durationSeconds(this.listener.udpProxy?.idle_timeout ?? "60s") * 1000;
      let connected = false;
      const queue: Buffer[] = [];
      const created: UdpSession = {
        timer: undefined,
        send: (datagram) => (connected ? upstream.send(datagram) : void queue.push(datagram)),
        close: () => {
          clearTimeout(created.timer);
          this.sessions.delete(key);
          stats.gauge("downstream_sess_active").sub();
          upstream.close();
        },
      };
      upstream.once("connect", () => {
        connected = true;
        for (const queued of queue.splice(0)) upstream.send(queued);
      });
      upstream.on("message", (reply) => {
        this.touch(created, idleMs);
        stats.counter("downstream_sess_tx_datagrams").inc();
        this.socket.send(reply, remote.port, remote.address);
      });
      session = created;
      this.sessions.set(key, created);
    }
    this.touch(session, durationSeconds(this.listener.udpProxy?.idle_timeout ?? "60s") * 1000);
    session.send(message);
  }

  private touch(session: UdpSession, idleMs: number): void {
    clearTimeout(session.timer);
    session.timer = setTimeout(() => {
      this.stats().counter("idle_timeout").inc();
      session.close();
    }, idleMs);
  }

  close(): void {
    for (const session of [...this.sessions.values()]) session.close();
    this.socket.close();
  }
}

export class DataPlane {
  readonly stats: StatsStore;
  readonly log: EnvoyLogger;
  private readonly options: DataPlaneOptions;
  private readonly tcp = new Map<string, TcpListenerRuntime>();
  private readonly udp = new Map<string, UdpListenerRuntime>();
  private readonly upstreams = new Map<string, UpstreamCluster>();
  private readonly drainTimers = new Set<NodeJS.Timeout>();
  private draining = 0;
  private closed = false;

  constructor(options: DataPlaneOptions) {
    this.options = options;
    this.stats = options.stats;
    this.log = options.log;
    options.clusters.on("changed", () => this.syncClusters());
    options.listeners.on("changed", (change) => this.onListenersChanged(change));
  }

  cluster(name: string): UpstreamCluster | undefined {
    return this.upstreams.get(name);
  }

  /** Envoy's /clusters text: per host `<cluster>::<ip:port>::<stat>::<value>`. */
  clustersText(): string {
    const lines: string[] = [];
    for (const upstream of this.upstreams.values()) {
      const name = upstream.cluster.name;
      lines.push(`${name}::observability_name::${name}`);
      for (const host of upstream.hosts) {
        const at = `${name}::${host.endpoint.address.text}`;
        lines.push(
          `${at}::cx_active::${host.active}`,
          `${at}::cx_connect_fail::${host.connectFail}`,
          `${at}::cx_total::${host.total}`,
          `${at}::health_flags::${host.healthy ? "healthy" : "/failed_active_hc"}`,
          `${at}::weight::1`,
          `${at}::region::`,
          `${at}::zone::`,
          `${at}::sub_zone::`,
          `${at}::canary::false`,
          `${at}::priority::0`,
          `${at}::success_rate::-1`,
          `${at}::local_origin_success_rate::-1`,
        );
      }
    }
    return lines.map((line) => `${line}\n`).join("");
  }

  afterDrain(action: () => void): void {
    const timer = setTimeout(() => {
      this.drainTimers.delete(timer);
      action();
    }, this.options.drainTimeSeconds * 1000);
    this.drainTimers.add(timer);
  }

  private syncClusters(): void {
    if (this.closed) return;
    const active = this.options.clusters.clusters;
    for (const [name, upstream] of [...this.upstreams]) {
      if (active.has(name)) continue;
      upstream.close();
      this.upstreams.delete(name);
    }
    for (const [name, cluster] of active) {
      const previous = this.upstreams.get(name);
      if (previous?.cluster === cluster) continue;
      previous?.close();
      this.upstreams.set(name, new UpstreamCluster(cluster, this.stats.scope(`cluster.${name}.`), this.log, previous));
    }
  }

  private onListenersChanged(change: ListenerChange): void {
    if (this.closed) return;
    for (const listener of change.removed) this.removeListener(listener);
    for (const { previous, current, inPlace } of change.updated) {
      const tcp = this.tcp.get(previous.name);
      if (tcp && current.protocol === "TCP" && previous.address.text === current.address.text) {
        tcp.listener = current;
        const kept = new Set(current.filterChains.map((chain) => chain.hash));
        if (current.defaultFilterChain) kept.add(current.defaultFilterChain.hash);
        tcp.drainConnections((connection) => !inPlace || !kept.has(connection.chainHash));
        continue;
      }
      const udp = this.udp.get(previous.name);
      if (udp && current.protocol === "UDP" && previous.address.text === current.address.text) {
        udp.listener = current;
        continue;
      }
      this.removeListener(previous);
      this.addListener(current);
    }
    for (const listener of change.added) this.addListener(listener);
    this.updateDrainingGauge();
  }

  private updateDrainingGauge(): void {
    this.stats.gauge("listener_manager.total_listeners_draining").set(this.draining);
  }

  private removeListener(listener: ActiveListener): void {
    const tcp = this.tcp.get(listener.name);
    if (tcp) {
      this.tcp.delete(listener.name);
      tcp.server.close();
      if (tcp.connections.size > 0) {
        this.draining++;
        tcp.drainConnections(() => true);
        this.afterDrain(() => {
          this.draining--;
          this.updateDrainingGauge();
        });
      }
    }
    const udp = this.udp.get(listener.name);
    if (udp) {
      this.udp.delete(listener.name);
      udp.close();
    }
  }

  private createFailure(listener: ActiveListener, error: Error): void {
    this.log.error("config", SOURCE.listenerManager, `listener '${listener.name}' failed to listen on address '${listener.address.text}' on worker: ${error.message}`);
    this.stats.counter("listener_manager.listener_create_failure").inc();
    this.options.listeners.onListenerCreateFailure(listener);
  }

  private addListener(listener: ActiveListener): void {
    if (listener.protocol === "UDP") {
      const runtime = new UdpListenerRuntime(listener, this);
      this.udp.set(listener.name, runtime);
      runtime.socket.once("error", (error) => {
        if (this.udp.get(listener.name) !== runtime) return;
        this.udp.delete(listener.name);
        this.createFailure(listener, error);
      });
      runtime.socket.bind(listener.address.port, listener.address.ip);
      return;
    }
    const runtime = new TcpListenerRuntime(listener, this);
    this.tcp.set(listener.name, runtime);
    runtime.server.once("error", (error) => {
      if (this.tcp.get(listener.name) !== runtime) return;
      this.tcp.delete(listener.name);
      this.createFailure(runtime.listener, error);
    });
    runtime.server.listen({ host: listener.address.ip, port: listener.address.port, exclusive: true }, () => {
      const address = runtime.server.address() as AddressInfo;
      this.log.debug("config", SOURCE.listenerManager, `listener '${listener.name}' listening on ${address.address}:${address.port}`);
    });
  }

  /** A connection whose chain is chosen: terminate TLS if the chain says so, then its terminal filter. */
  serveChain(listener: ActiveListener, chain: ActiveFilterChain, socket: Socket, peeked: Buffer): void {
    const filter = chain.config.filters?.[0];
    if (filter === undefined) {
      socket.destroy(); // refused by the listener builder; never reached
      return;
      socket.destroy();
      return;
    }
    const terminal = (downstream: Socket): void => {
      if (filter.type === HCM_TYPE) {
        const hcm = filter.config as HttpConnectionManager;
        serveHttp(hcm, downstream, clientOf(socket), (name) => this.upstreams.get(name), this.stats.scope(`http.${hcm.stat_prefix ?? ""}.`));
      } else this.tcpProxy(filter.config as TcpProxy, socket, downstream);
    };
    if (!chain.tls) {
      if (peeked.length > 0) socket.unshift(peeked);
      terminal(socket);
      return;
    }
    const options = serverTlsOptions(chain.tls);
    const sslStats = this.stats.scope(`${listenerStatPrefix(listener)}ssl.`);
    if (!options) {
      sslStats.counter("connection_error").inc();
      socket.destroy();
      return;
    }
    // The ClientHello was already read by the inspector: TLS reads from a stream that replays it.
    const bridge = new Duplex({
      read: () => void socket.resume(),
      write: (chunk: Buffer, _encoding, callback) => void socket.write(chunk, callback),
      final: (callback) => {
        socket.end();
        callback();
      },
      destroy: (error, callback) => {
        socket.destroy();
        callback(error);
      },
    });
    if (peeked.length > 0) bridge.push(peeked);
    socket.on("data", (data: Buffer) => {
      if (!bridge.push(data)) socket.pause();
    });
    socket.once("end", () => bridge.push(null));
    socket.once("close", () => bridge.destroy());
    const tlsSocket = new TLSSocket(bridge as unknown as Socket, { isServer: true, ...options });
    tlsSocket.on("error", () => {
      sslStats.counter("connection_error").inc();
      socket.destroy();
    });
    tlsSocket.once("secure", () => {
      sslStats.counter("handshake").inc();
      terminal(tlsSocket);
    });
    socket.resume();
  }

  private tcpProxy(config: TcpProxy, raw: Socket, downstream: Socket): void {
    const stats = this.stats.scope(`tcp.${config.stat_prefix ?? ""}.`);
    stats.counter("downstream_cx_total").inc();
    const upstream = config.cluster ? this.upstreams.get(config.cluster) : undefined;
    if (!upstream) {
      stats.counter("downstream_cx_no_route").inc();
      downstream.destroy();
      raw.destroy();
      return;
    }
    const host = upstream.pick();
    if (!host) {
      upstream.stats.counter("upstream_cx_none_healthy").inc();
      this.log.debug("filter", SOURCE.tcpProxy, `no healthy host for TCP connection pool in cluster ${upstream.cluster.name}`);
      downstream.destroy();
      raw.destroy();
      return;
    }
    downstream.pause();
    const target = host.endpoint.address;
    upstream.stats.counter("upstream_cx_total").inc();
    upstream.stats.gauge("upstream_cx_active").add();
    host.total++;
    host.active++;
    const out = connect({ host: target.ip, port: target.port, allowHalfOpen: true });
    const header = upstream.proxyHeader(host, {
      sourceAddress: plainAddress(raw.remoteAddress ?? ""),
      sourcePort: raw.remotePort ?? 0,
      destinationAddress: plainAddress(raw.localAddress ?? ""),
      destinationPort: raw.localPort ?? 0,
    });
    let connected = false;
    const connectTimer = setTimeout(() => {
      if (!connected) out.destroy(new Error("connect timeout"));
    }, upstream.connectTimeoutMs());
    const closeBoth = (): void => {
      clearTimeout(connectTimer);
      clearTimeout(idleTimer);
      out.destroy();
      downstream.destroy();
      raw.destroy();
    };
    out.once("close", () => {
      upstream.stats.gauge("upstream_cx_active").sub();
      host.active--;
    });
    out.on("error", () => {
      if (!connected) {
        upstream.stats.counter("upstream_cx_connect_fail").inc();
        host.connectFail++;
      }
      closeBoth();
    });
    downstream.on("error", closeBoth);
    out.once("close", closeBoth);
    downstream.once("close", closeBoth);
    // Idle timeout: no bytes either way for idle_timeout (Envoy's default 1h; 0 disables).
    const idleMs = durationSeconds(config.idle_timeout ?? "3600s") * 1000;
    let idleTimer: NodeJS.Timeout | undefined;
    const touch = (): void => {
      if (idleMs <= 0) return;
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => {
        stats.counter("idle_timeout").inc();
        closeBoth();
      }, idleMs);
    };
    touch();
    out.once("connect", () => {
      connected = true;
      clearTimeout(connectTimer);
      if (header) out.write(header);
      out.on("data", touch);
      downstream.on("data", touch);
      downstream.pipe(out);
      out.pipe(downstream);
      downstream.resume();
    });
  }

  close(): void {
    this.closed = true;
    for (const timer of this.drainTimers) clearTimeout(timer);
    for (const runtime of this.tcp.values()) {
      runtime.server.close();
      for (const connection of runtime.connections) connection.destroy();
    }
    for (const runtime of this.udp.values()) runtime.close();
    for (const upstream of this.upstreams.values()) upstream.close();
  }
}
