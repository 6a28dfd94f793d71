// The data path through a real fake-envoy process: real listeners on loopback, real backends
// (node:net / node:http / node:dgram servers on 127.0.0.1), config written as the controller
// writes it. Every wait is a barrier (a stat, /clusters, a connection refused), never a sleep.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { createSocket } from "node:dgram";
import { createServer as createHttpServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import type { JsonObject } from "@ktube/envoy-validator";
import { ensureEnvoyValidator } from "@ktube/envoy-validator";
import { inspectClientHello } from "../src/data/client-hello.ts";
import { FakeEnvoyProcess } from "../src/process.ts";
import {
  clientHello,
  connectWhenBound,
  freePort,
  nextData,
  readAll,
  readinessServer,
  tcpBackend,
  udpEchoBackend,
  waitUntilRefused,
  type ReadinessServer,
  type TcpBackend,
} from "./support/backends.ts";
import { cds, certificateSecret, configDir, downstreamTls, lds, sds, selfSigned, TYPE, tlsInspector, tcpProxy, writeAtomic } from "./support/fixtures.ts";

const proxyProtocol = (version: "V1" | "V2"): JsonObject => ({
  name: "envoy.transport_sockets.upstream_proxy_protocol",
  typed_config: {
    "@type": `${TYPE}envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport`,
    config: { version },
    transport_socket: { name: "envoy.transport_sockets.raw_buffer", typed_config: { "@type": `${TYPE}envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer` } },
  },
});

const cluster = (name: string, ports: number[], extra: JsonObject = {}, endpointExtra: (i: number) => JsonObject = () => ({})): JsonObject => ({
  name,
  type: "STATIC",
  connect_timeout: "2s",
  load_assignment: {
    cluster_name: name,
    endpoints: [{ lb_endpoints: ports.map((port, i) => ({ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } }, ...endpointExtra(i) })) }],
  },
  ...extra,
});

const listener = (name: string, port: number, chains: JsonObject[], extra: JsonObject = {}): JsonObject => ({
  name,
  address: { socket_address: { address: "127.0.0.1", port_value: port } },
  filter_chains: chains,
  ...extra,
});

let config: ReturnType<typeof configDir>;
let envoy: FakeEnvoyProcess;
const closers: Array<() => Promise<void>> = [];
let clusters: JsonObject[] = [];
let listeners: JsonObject[] = [];
let version = 0;

async function apply(): Promise<void> {
  const v = `v${++version}`;
  writeAtomic(join(config.dir, "cds.json"), cds(v, clusters));
  await envoy.waitForStats("cds\\.version_text", (s) => s.get("cluster_manager.cds.version_text") === v);
  writeAtomic(join(config.dir, "lds.json"), lds(v, listeners));
  await envoy.waitForStats("lds\\.version_text", (s) => s.get("listener_manager.lds.version_text") === v);
}

async function backend(...args: Parameters<typeof tcpBackend>): Promise<TcpBackend> {
  const created = await tcpBackend(...args);
  closers.push(() => created.close());
  return created;
}

async function ready(): Promise<ReadinessServer> {
  const created = await readinessServer();
  closers.push(() => created.close());
  return created;
}

/** Sends `payload` in pieces (one write each, next one after the previous was flushed) and reads to the end. */
async function roundTrip(port: number, payload: Buffer | Buffer[], end = true): Promise<string> {
  const socket = await connectWhenBound(port);
  const all = readAll(socket);
  for (const piece of Array.isArray(payload) ? payload : [payload]) {
    await new Promise<void>((resolve) => socket.write(piece, () => resolve()));
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (end) socket.end();
  return all;
}

beforeAll(async () => {
  await ensureEnvoyValidator({ log: (line) => process.stderr.write(`${line}\n`) });
  config = configDir();
  envoy = await FakeEnvoyProcess.start({ args: ["-c", config.bootstrapPath, "--drain-time-s", "60", "--log-level", "info"] });
}, 20 * 60_000);

afterAll(async () => {
  await envoy?.stop();
  for (const close of closers) await close();
  config?.cleanup();
});

describe("tcp_proxy", () => {
  it("pipes bytes both ways with half-close, round robin over the endpoints", async () => {
    const [a, b] = [await backend("A", "reply-at-end"), await backend("B", "reply-at-end")];
    const port = await freePort();
    clusters = [cluster("echo", [a.port, b.port])];
    listeners = [listener("echo", port, [{ name: "all", filters: [tcpProxy("echo")] }])];
    await apply();
    // The client half-closes first; the backend answers after it saw the end, and the answer still arrives.
    const replies = [await roundTrip(port, Buffer.from("hello")), await roundTrip(port, Buffer.from("world"))];
    expect(replies.map((reply) => reply.slice(2))).toEqual(["hello", "world"]);
    expect(new Set(replies.map((reply) => reply[0]))).toEqual(new Set(["A", "B"]));
    const stats = await envoy.stats("^(cluster\\.echo\\.upstream_cx_total|tcp\\.echo\\.downstream_cx_total)$");
    expect(stats.get("cluster.echo.upstream_cx_total")).toBe("2");
  });

  it("closes a connection idle for idle_timeout", async () => {
    const a = await backend("I", "echo");
    const port = await freePort();
    clusters = [...clusters.filter((c) => c.name !== "idle"), cluster("idle", [a.port])];
    listeners = [...listeners, listener("idle", port, [{ name: "all", filters: [tcpProxy("idle", { idle_timeout: "0.3s" })] }])];
    await apply();
    const socket = await connectWhenBound(port);
    const closed = readAll(socket);
    socket.write("ping");
    const started = Date.now();
    expect(await closed).toBe("I:ping");
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect((await envoy.stats("^tcp\\.idle\\.idle_timeout$")).get("tcp.idle.idle_timeout")).toBe("1");
  });
});

describe("SNI filter chains (tls_inspector)", () => {
  it("routes a.example.com and b.example.com to their backends, anything else to the chain without server_names, a split ClientHello too", async () => {
    const [a, b, other] = [await backend("A", "first"), await backend("B", "first"), await backend("D", "first")];
    const port = await freePort();
    clusters = [...clusters, cluster("sni-a", [a.port]), cluster("sni-b", [b.port]), cluster("sni-default", [other.port])];
    listeners = [
      ...listeners,
      listener(
        "sni",
        port,
        [
          { name: "a", filter_chain_match: { server_names: ["a.example.com"] }, filters: [tcpProxy("sni-a")] },
          { name: "b", filter_chain_match: { server_names: ["*.b.example.com", "b.example.com"] }, filters: [tcpProxy("sni-b")] },
          { name: "rest", filters: [tcpProxy("sni-default")] },
        ],
        { listener_filters: [tlsInspector] },
      ),
    ];
    await apply();
    const helloA = await clientHello("a.example.com");
    expect(await roundTrip(port, helloA)).toBe("A\n");
    expect(a.connections.at(-1)!.data.equals(helloA)).toBe(true); // passed through untouched
    expect(await roundTrip(port, await clientHello("x.b.example.com"))).toBe("B\n");
    // A ClientHello in three TCP segments.
    const helloB = await clientHello("b.example.com");
    expect(await roundTrip(port, [helloB.subarray(0, 3), helloB.subarray(3, 40), helloB.subarray(40)])).toBe("B\n");
    expect(b.connections.at(-1)!.data.equals(helloB)).toBe(true);
    expect(await roundTrip(port, await clientHello("c.example.org"))).toBe("D\n");
    expect(await roundTrip(port, Buffer.from("GET / HTTP/1.0\r\n\r\n"))).toBe("D\n"); // not TLS: raw_buffer
  });

  it("closes a connection no chain matches (no default chain), counted in no_filter_chain_match", async () => {
    const a = await backend("N", "first");
    const port = await freePort();
    clusters = [...clusters, cluster("only-a", [a.port])];
    listeners = [...listeners, listener("only-a", port, [{ name: "a", filter_chain_match: { server_names: ["a.example.com"] }, filters: [tcpProxy("only-a")] }], { listener_filters: [tlsInspector] })];
    await apply();
    expect(await roundTrip(port, await clientHello("z.example.com"), false)).toBe("");
    const stat = `listener.127.0.0.1_${port}.no_filter_chain_match`;
    expect((await envoy.stats(`^${stat.replaceAll(".", "\\.")}$`)).get(stat)).toBe("1");
    expect(a.connections).toHaveLength(0);
  });
});

describe("PROXY protocol upstream", () => {
  it("V2: the backend reads the client's address; V1 by endpoint metadata, and the health check gets no header", async () => {
    const v2 = await backend("P2", "reply-at-end", true);
    const v1 = await backend("P1", "reply-at-end", true);
    const readiness = await ready();
    const [port2, port1] = [await freePort(), await freePort()];
    clusters = [
      ...clusters,
      cluster("pp2", [v2.port], { transport_socket: proxyProtocol("V2") }),
      cluster(
        "pp1",
        [v1.port],
        {
          transport_socket_matches: [{ name: "proxy", match: { proxy_protocol: true }, transport_socket: proxyProtocol("V1") }],
          health_checks: [{ timeout: "1s", interval: "0.2s", unhealthy_threshold: 2, healthy_threshold: 1, http_health_check: { path: "/ready" }, transport_socket_match_criteria: {} }],
        },
        () => ({ metadata: { filter_metadata: { "envoy.transport_socket_match": { proxy_protocol: true } } } }),
      ),
    ];
    // The health check goes to the readiness server's port.
    ((clusters.at(-1)!.load_assignment as JsonObject).endpoints as JsonObject[])[0]!.lb_endpoints = [
      {
        endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: v1.port } }, health_check_config: { port_value: readiness.port } },
        metadata: { filter_metadata: { "envoy.transport_socket_match": { proxy_protocol: true } } },
      },
    ];
    listeners = [...listeners, listener("pp2", port2, [{ name: "all", filters: [tcpProxy("pp2")] }]), listener("pp1", port1, [{ name: "all", filters: [tcpProxy("pp1")] }])];
    await apply();

    const client = await connectWhenBound(port2);
    const reply = readAll(client);
    const clientPort = client.localPort;
    client.end("hi");
    expect(await reply).toBe("P2:hi");
    expect(v2.connections[0]!.proxy).toMatchObject({
      version: 2,
      command: "PROXY",
      addresses: { sourceAddress: "127.0.0.1", sourcePort: clientPort, destinationAddress: "127.0.0.1", destinationPort: port2 },
    });

    // Healthy only if the readiness server parsed plain HTTP (a PROXY line would be a 400).
    await envoy.waitForStats("^cluster\\.pp1\\.membership_healthy$", (s) => s.get("cluster.pp1.membership_healthy") === "1");
    expect(readiness.requests[0]).toEqual({ path: "/ready", host: "pp1" });
    expect(await roundTrip(port1, Buffer.from("v1"))).toBe("P1:v1");
    expect(v1.connections[0]!.proxy).toMatchObject({ version: 1, addresses: { sourceAddress: "127.0.0.1", destinationPort: port1 } });
  });
});

describe("HTTP health checks", () => {
  it("takes a host whose /ready fails out of rotation within interval × unhealthy_threshold; none healthy with panic threshold 0 means no traffic", async () => {
    const [x, y] = [await backend("X", "reply-at-end"), await backend("Y", "reply-at-end")];
    const [readyX, readyY] = [await ready(), await ready()];
    const port = await freePort();
    const healthPorts = [readyX.port, readyY.port];
    clusters = [
      ...clusters,
      cluster(
        "hc",
        [x.port, y.port],
        {
          health_checks: [{ timeout: "0.5s", interval: "0.2s", unhealthy_threshold: 2, healthy_threshold: 2, http_health_check: { path: "/ready", host: "uplink.internal" } }],
          common_lb_config: { healthy_panic_threshold: { value: 0 } },
        },
        (i) => ({ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: [x.port, y.port][i]! } }, health_check_config: { port_value: healthPorts[i]! } } }),
      ),
    ];
    listeners = [...listeners, listener("hc", port, [{ name: "all", filters: [tcpProxy("hc")] }])];
    await apply();
    await envoy.waitForStats("^cluster\\.hc\\.", (s) => s.get("cluster.hc.membership_healthy") === "2" && s.get("cluster.hc.health_check.healthy") === "2");
    expect(readyX.requests[0]).toEqual({ path: "/ready", host: "uplink.internal" });

    readyX.ready = false;
    const started = Date.now();
    await envoy.waitForStats("^cluster\\.hc\\.membership_healthy$", (s) => s.get("cluster.hc.membership_healthy") === "1", 5_000);
    const took = Date.now() - started;
    expect(took).toBeLessThan(2 * 200 + 2 * 200 + 500); // interval × threshold, one interval of phase, slack
    const text = (await envoy.admin("/clusters")).body;
    expect(text).toContain(`hc::127.0.0.1:${x.port}::health_flags::/failed_active_hc\n`);
    expect(text).toContain(`hc::127.0.0.1:${y.port}::health_flags::healthy\n`);
    const replies = await Promise.all([1, 2, 3, 4].map((i) => roundTrip(port, Buffer.from(`r${i}`))));
    expect(replies.sort()).toEqual(["Y:r1", "Y:r2", "Y:r3", "Y:r4"]);

    readyY.ready = false;
    await envoy.waitForStats("^cluster\\.hc\\.membership_healthy$", (s) => s.get("cluster.hc.membership_healthy") === "0", 5_000);
    expect(await roundTrip(port, Buffer.from("nobody"))).toBe("");
    expect((await envoy.stats("^cluster\\.hc\\.upstream_cx_none_healthy$")).get("cluster.hc.upstream_cx_none_healthy")).toBe("1");

    // Back in after healthy_threshold successes.
    readyX.ready = true;
    await envoy.waitForStats("^cluster\\.hc\\.membership_healthy$", (s) => s.get("cluster.hc.membership_healthy") === "1", 5_000);
    expect(await roundTrip(port, Buffer.from("back"))).toBe("X:back");
    console.log(`health check: out of rotation after ${took} ms`);
  });
});

describe("LDS updates", () => {
  it("a removed listener stops accepting; connections on it drain, another listener's connection keeps working", async () => {
    const echo = await backend("E", "echo");
    const [keepPort, dropPort] = [await freePort(), await freePort()];
    clusters = [...clusters, cluster("lds-echo", [echo.port])];
    listeners = [...listeners, listener("keep", keepPort, [{ name: "all", filters: [tcpProxy("lds-echo")] }]), listener("drop", dropPort, [{ name: "all", filters: [tcpProxy("lds-echo")] }])];
    await apply();
    const kept = await connectWhenBound(keepPort);
    const onDropped = await connectWhenBound(dropPort);
    kept.write("1");
    expect(await nextData(kept)).toBe("E:1");
    onDropped.write("1");
    expect(await nextData(onDropped)).toBe("E:1");

    listeners = listeners.filter((l) => l.name !== "drop");
    await apply();
    await waitUntilRefused(dropPort);
    await envoy.waitForStats("^listener_manager\\.total_listeners_draining$", (s) => s.get("listener_manager.total_listeners_draining") === "1");
    kept.write("2");
    expect(await nextData(kept)).toBe("E:2");
    onDropped.write("2"); // draining: established connections go on until --drain-time-s
    expect(await nextData(onDropped)).toBe("E:2");
    kept.destroy();
    onDropped.destroy();
  });

  it("a listener whose port is taken counts listener_create_failure and is removed", async () => {
    const taken = await backend("T", "echo");
    const before = Number((await envoy.stats("^listener_manager\\.listener_create_failure$")).get("listener_manager.listener_create_failure"));
    listeners = [...listeners, listener("taken", taken.port, [{ name: "all", filters: [tcpProxy("lds-echo")] }])];
    await apply();
    await envoy.waitForStats("^listener_manager\\.listener_create_failure$", (s) => Number(s.get("listener_manager.listener_create_failure")) === before + 1);
    expect((await envoy.admin("/listeners")).body).not.toContain("taken::");
    listeners = listeners.filter((l) => l.name !== "taken");
  });
});

describe("drain (--drain-time-s 1)", () => {
  it("an in-place update keeps connections on unchanged chains and closes those on changed chains after the drain time", async () => {
    const own = configDir();
    const drainEnvoy = await FakeEnvoyProcess.start({ args: ["-c", own.bootstrapPath, "--drain-time-s", "1"] });
    try {
      const [a, b, c] = [await backend("A", "echo"), await backend("B", "echo"), await backend("C", "echo")];
      const port = await freePort();
      const write = async (v: string, restCluster: string): Promise<void> => {
        writeAtomic(join(own.dir, "cds.json"), cds(v, [cluster("a", [a.port]), cluster("b", [b.port]), cluster("c", [c.port])]));
        await drainEnvoy.waitForStats("cds\\.version_text", (st) => st.get("cluster_manager.cds.version_text") === v);
        const chains: JsonObject[] = [
          { name: "a", filter_chain_match: { server_names: ["a.example.com"] }, filters: [tcpProxy("a")] },
          { name: "rest", filters: [tcpProxy(restCluster)] },
        ];
        writeAtomic(join(own.dir, "lds.json"), lds(v, [listener("l", port, chains, { listener_filters: [tlsInspector] })]));
        await drainEnvoy.waitForStats("lds\\.version_text", (st) => st.get("listener_manager.lds.version_text") === v);
      };
      await write("v1", "b");
      const onA = await connectWhenBound(port);
      let seenA = "";
      onA.on("data", (chunk: Buffer) => (seenA += chunk.toString("latin1")));
      const untilA = async (text: string): Promise<void> => {
        while (!seenA.includes(text)) await new Promise((resolve) => onA.once("data", resolve));
      };
      const hello = await clientHello("a.example.com");
      onA.write(hello);
      await untilA("A:");
      const onRest = await connectWhenBound(port);
      onRest.write("x");
      expect(await nextData(onRest)).toBe("B:x");

      await write("v2", "c");
      const stats = await drainEnvoy.stats("^listener_manager\\.listener_in_place_updated$");
      expect(stats.get("listener_manager.listener_in_place_updated")).toBe("1");
      expect(await roundTrip(port, Buffer.from("new"))).toBe("C:new"); // new connections: the new chain
      onRest.write("y"); // draining, still served
      expect(await nextData(onRest)).toBe("B:y");
      const started = Date.now();
      await new Promise((resolve) => onRest.once("end", resolve)); // the client is half-open: Envoy's close arrives as an end
      expect(Date.now() - started).toBeGreaterThan(500);
      onA.write("z"); // its chain did not change
      await untilA("A:z");
      onA.destroy();
    } finally {
      await drainEnvoy.stop();
      own.cleanup();
    }
  });
});

describe("udp_proxy", () => {
  it("one session per client address, answers come back, the session ends after idle_timeout", async () => {
    const echo = await udpEchoBackend("U");
    closers.push(() => echo.close());
    const port = await freePort();
    clusters = [...clusters, cluster("udp", [echo.port])];
    listeners = [
      ...listeners,
      {
        name: "udp",
        address: { socket_address: { protocol: "UDP", address: "127.0.0.1", port_value: port } },
        listener_filters: [
          {
            name: "envoy.filters.udp_listener.udp_proxy",
            typed_config: {
              "@type": `${TYPE}envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig`,
              stat_prefix: "udp",
              idle_timeout: "0.5s",
              matcher: { on_no_match: { action: { name: "route", typed_config: { "@type": `${TYPE}envoy.extensions.filters.udp.udp_proxy.v3.Route`, cluster: "udp" } } } },
            },
          },
        ],
      },
    ];
    await apply();
    const client = createSocket("udp4");
    await new Promise<void>((resolve) => client.bind(0, "127.0.0.1", resolve));
    const replies: string[] = [];
    client.on("message", (message) => replies.push(message.toString()));
    // Datagrams may be sent before the socket is bound: resend until an answer arrives (the barrier).
    for (let i = 0; replies.length === 0 && i < 100; i++) {
      client.send(`d${i}`, port, "127.0.0.1");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(replies[0]).toMatch(/^U:d\d+$/);
    await envoy.waitForStats("^udp\\.udp\\.", (s) => s.get("udp.udp.idle_timeout") === "1" && s.get("udp.udp.downstream_sess_active") === "0");
    expect(echo.sources.size).toBe(1);
    client.close();
  });
});

describe("TLS offload and mutual TLS (SDS)", () => {
  it("terminates TLS with the SDS certificate, requires a client certificate signed by the SDS CA", async () => {
    const server = selfSigned("edge.example.com");
    const clientCa = selfSigned("client");
    const echo = await backend("S", "reply-at-end", true);
    const [offloadPort, mutualPort] = [await freePort(), await freePort()];
    writeAtomic(join(config.dir, "edge-cert.json"), sds("c1", [certificateSecret("edge-cert", server)]));
    writeAtomic(join(config.dir, "edge-ca.json"), sds("a1", [{ name: "edge-ca", validation_context: { trusted_ca: { inline_string: clientCa.cert } } }]));
    clusters = [...clusters, cluster("tls", [echo.port], { transport_socket: proxyProtocol("V2") })];
    listeners = [
      ...listeners,
      listener("offload", offloadPort, [{ name: "tls", transport_socket: downstreamTls(config.dir, "edge-cert"), filters: [tcpProxy("tls")] }]),
      listener("mutual", mutualPort, [{ name: "mtls", transport_socket: downstreamTls(config.dir, "edge-cert", "edge-ca"), filters: [tcpProxy("tls")] }]),
    ];
    await apply();
    await connectWhenBound(offloadPort).then((s) => s.destroy());
    await connectWhenBound(mutualPort).then((s) => s.destroy());

    const talk = (port: number, extra: object): Promise<string> =>
      new Promise((resolve) => {
        const socket = tlsConnect({ host: "127.0.0.1", port, servername: "edge.example.com", ca: server.cert, checkServerIdentity: () => undefined, ...extra });
        const chunks: Buffer[] = [];
        socket.on("data", (chunk: Buffer) => chunks.push(chunk));
        socket.on("secureConnect", () => socket.end("tls-hi"));
        socket.on("error", (error) => resolve(`error: ${error.message}`));
        socket.on("close", () => resolve(Buffer.concat(chunks).toString()));
      });
    expect(await talk(offloadPort, {})).toBe("S:tls-hi");
    expect(echo.connections[0]!.proxy?.addresses?.destinationPort).toBe(offloadPort);
    expect(await talk(mutualPort, { cert: clientCa.cert, key: clientCa.key })).toBe("S:tls-hi");
    const refused = await talk(mutualPort, {});
    expect(refused).not.toBe("S:tls-hi");
    expect(echo.connections).toHaveLength(2);

    // Rotation over SDS: the next connection gets the new certificate.
    const rotated = selfSigned("edge.example.com");
    writeAtomic(join(config.dir, "edge-cert.json"), sds("c2", [certificateSecret("edge-cert", rotated)]));
    await envoy.waitForStats("^sds\\.edge-cert\\.version_text$", (s) => s.get("sds.edge-cert.version_text") === "c2");
    expect(await talk(offloadPort, { ca: rotated.cert })).toBe("S:tls-hi");
  });
});

describe("http_connection_manager", () => {
  it("routes by Host and path prefix to clusters, 404 without a route, X-Forwarded-For with use_remote_address", async () => {
    const web = async (tag: string): Promise<number> => {
      const server = createHttpServer((req, res) => res.end(`${tag} ${req.headers.host} ${req.url} xff=${req.headers["x-forwarded-for"] ?? ""}`));
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      closers.push(() => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
      return (server.address() as AddressInfo).port;
    };
    const [api, site, other] = [await web("api"), await web("site"), await web("other")];
    const port = await freePort();
    clusters = [...clusters, cluster("http-api", [api]), cluster("http-site", [site]), cluster("http-other", [other])];
    const routes = (pairs: Array<[string, string]>): JsonObject[] => pairs.map(([prefix, c]) => ({ match: { prefix }, route: { cluster: c } }));
    listeners = [
      ...listeners,
      listener("http", port, [
        {
          name: "http",
          filters: [
            {
              name: "envoy.filters.network.http_connection_manager",
              typed_config: {
                "@type": `${TYPE}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
                stat_prefix: "web",
                use_remote_address: true,
                strip_any_host_port: true,
                route_config: {
                  name: "web",
                  virtual_hosts: [
                    { name: "app", domains: ["app.example.com"], routes: routes([["/api/", "http-api"], ["/", "http-site"]]) },
                    { name: "wild", domains: ["*.example.org"], routes: routes([["/only", "http-other"]]) },
                  ],
                },
                http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": `${TYPE}envoy.extensions.filters.http.router.v3.Router` } }],
              },
            },
          ],
        },
      ]),
    ];
    await apply();
    await connectWhenBound(port).then((s) => s.destroy());
    // node:http, not fetch: fetch does not let a caller set Host.
    const get = (host: string, path: string): Promise<[number, string]> =>
      new Promise((resolve, reject) => {
        const req = httpRequest({ host: "127.0.0.1", port, path, headers: { host }, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => resolve([res.statusCode ?? 0, Buffer.concat(chunks).toString()]));
        });
        req.on("error", reject);
        req.end();
      });
    expect(await get(`app.example.com:${port}`, "/api/v1?x=1")).toEqual([200, `api app.example.com:${port} /api/v1?x=1 xff=127.0.0.1`]);
    expect(await get("app.example.com", "/index.html")).toEqual([200, "site app.example.com /index.html xff=127.0.0.1"]);
    expect(await get("x.example.org", "/only/this")).toEqual([200, "other x.example.org /only/this xff=127.0.0.1"]);
    expect((await get("x.example.org", "/else"))[0]).toBe(404);
    expect((await get("unknown.example.net", "/"))[0]).toBe(404);
  });
});

describe("tls_inspector's ClientHello parser", () => {
  it("needs more bytes until the whole ClientHello is there, at any split", async () => {
    const hello = await clientHello("split.example.com");
    for (let cut = 0; cut < hello.length; cut++) expect(inspectClientHello(hello.subarray(0, cut))).toEqual({ done: false });
    expect(inspectClientHello(hello)).toEqual({ done: true, tls: true, serverName: "split.example.com" });
    expect(inspectClientHello(Buffer.from("SSH-2.0"))).toEqual({ done: true, tls: false });
  });
});
