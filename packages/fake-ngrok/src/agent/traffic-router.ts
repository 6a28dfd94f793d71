// Public traffic to agents: picks the endpoint that serves an inbound connection
// (round robin across the sessions of a pooled endpoint), opens a Proxy stream to its
// agent and copies bytes both ways.
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { proxyProtocolHeader } from "./proxy-protocol.ts";
import { monotonicNow, type ProxyRecord } from "./rpc-log.ts";
import type { Route, SessionRegistry } from "./session-registry.ts";
import { listenPortOf } from "./tcp-addrs.ts";

/** How a public listener names what it received: an HTTP Host, a TLS server name, or a TCP port. */
export type RouteKey = { kind: "http"; host: string } | { kind: "tls"; serverName: string } | { kind: "tcp"; port: number };

const matches = (route: Route, key: RouteKey): boolean => {
  const { proto, hostport } = route.endpoint;
  switch (key.kind) {
    case "http":
      return (proto === "http" || proto === "https") && hostport === key.host;
    case "tls":
      return proto === "tls" && hostport === key.serverName;
    case "tcp":
      return proto === "tcp" && listenPortOf(hostport) === key.port;
  }
};

const keyName = (key: RouteKey): string => (key.kind === "http" ? `http:${key.host}` : key.kind === "tls" ? `tls:${key.serverName}` : `tcp:${key.port}`);

export class TrafficRouter {
  private readonly registry: SessionRegistry;
  private readonly log: ProxyRecord[];
  private readonly turns = new Map<string, number>();

  constructor(registry: SessionRegistry, log: ProxyRecord[]) {
    this.registry = registry;
    this.log = log;
  }

  /** The endpoint to carry the next connection for `key`, taking pooled endpoints in turn. */
  pick(key: RouteKey): Route | undefined {
    const candidates = this.registry.routes().filter((r) => matches(r, key));
    if (candidates.length === 0) return undefined;
    const name = keyName(key);
    const turn = this.turns.get(name) ?? 0;
    this.turns.set(name, turn + 1);
    return candidates[turn % candidates.length];
  }

  /**
   * Carries one public connection to the agent: a Proxy stream whose header names the
   * endpoint, then `initial` (bytes already read to route it), then everything else both
   * ways, half-closes included.
   */
  forward(route: Route, client: Duplex, peer: Socket, initial: Buffer, passthroughTls: boolean): void {
    const { endpoint, plan, connection } = route;
    const clientAddr = `${(peer.remoteAddress ?? "127.0.0.1").replace(/^::ffff:/, "")}:${peer.remotePort ?? 0}`;
    this.log.push({ at: monotonicNow(), sessionId: endpoint.sessionId, endpointId: endpoint.id, tunnelId: endpoint.tunnelId, url: endpoint.url, clientAddr });
    const stream = connection.openProxy({
      Id: endpoint.tunnelId,
      ClientAddr: clientAddr,
      Proto: endpoint.proto,
      EdgeType: "",
      PassthroughTLS: passthroughTls,
    });
    if (plan.proxyProto !== 0) {
      stream.write(
        proxyProtocolHeader(plan.proxyProto, {
          sourceAddress: peer.remoteAddress ?? "127.0.0.1",
          sourcePort: peer.remotePort ?? 0,
          destAddress: peer.localAddress ?? "127.0.0.1",
          destPort: peer.localPort ?? 0,
        }),
      );
    }
    if (initial.length > 0) stream.write(initial);
    stream.on("error", () => client.destroy());
    client.on("error", () => stream.destroy());
    // A side that closes without having ended its input was cut off: cut the other too.
    // (Ordinary ends travel through the pipes as half-closes.)
    client.on("close", () => {
      if (!client.readableEnded) stream.destroy();
    });
    stream.on("close", () => {
      if (!stream.readableEnded) client.destroy();
    });
    client.pipe(stream);
    stream.pipe(client);
    client.resume();
  }
}
