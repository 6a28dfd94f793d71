// Real packets, end to end: a client on the "internet" reaches Services through the VPS's
// Envoy (fake-envoy, reading the exact files the controller wrote), down real WireGuard
// (wireguard-go) to the uplink Pods (the real connector program, run by a LocalKubelet in
// network namespaces of their own), through their nftables DNAT, to backends behind a
// node's Service proxy. The controller runs against the real API server and the real VPS.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import { KubeClient, type Manager, type KubeObject } from "@ktube/runtime";
import { createTestCa, createTestNamespace, deleteTestNamespace, EdgeCluster, eventually, ktubeStatus, LocalKubelet, testKubeConfig, waitForKtubeCondition, type BackendSpec, type TestCa } from "@ktube/testenv";
import type { KubeConfig } from "@kubernetes/client-node";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { fileURLToPath } from "node:url";
import { CONNECTOR_ENV } from "@ktube/provider-kit";
import { UPLINK_ENV } from "../../src/manifests/uplink.ts";
import { startEdgeController } from "../edge-controller.ts";
import { startEdgeVps, type EdgeVps } from "../provider/edge-vps.ts";

const MAIN = fileURLToPath(new URL("../../src/main.ts", import.meta.url));
const id = randomBytes(3).toString("hex");
const PROVIDER = `edge-dp-${id}`;
const UPLINKS = "vps-edge-uplink";

let kc: KubeConfig;
let client: KubeClient;
let manager: Manager;
let edge: EdgeVps;
let cluster: EdgeCluster;
let kubelet: LocalKubelet;
let ca: TestCa;
let controllerNs: string;
let ns: string;
const scratch = mkdtempSync(join(tmpdir(), "ktube-edge-data-path-"));
/** Each uplink process gets its own interface name: wireguard-go's sockets are shared by every namespace. */
let interfaces = 0;
/** The interface of each uplink Pod's current process. */
const ifaceOf = new Map<string, string>();
const uplinkEnv = (ordinal: number): Record<string, string> => {
  const iface = `ku${cluster.group.id}${interfaces++}`;
  ifaceOf.set(`${UPLINKS}-${ordinal}`, iface);
  return { [UPLINK_ENV.iface]: iface, [CONNECTOR_ENV.probeAddress]: "127.0.0.1:0", LOG_LEVEL: process.env.KTUBE_TEST_LOG ?? "info" };
};

/** Backend ports, in the node's namespace; each Service port leads to one. */
const BACKENDS = { web: 7001, dns: 7002, a: 7003, b: 7004, plain: 7005, proxied: 7006, extra: 7007 };

// ---- clients ------------------------------------------------------------------------------

interface Conversation {
  greeting: string;
  ask(line: string): Promise<string>;
  close(): void;
}

/** Reads lines from a stream; `next()` is the next one. */
function lines(socket: net.Socket | tls.TLSSocket): () => Promise<string> {
  const queue: string[] = [];
  const waiting: Array<{ resolve: (line: string) => void; reject: (e: Error) => void }> = [];
  let buffered = "";
  let ended: Error | undefined;
  socket.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      const waiter = waiting.shift();
      if (waiter) waiter.resolve(line);
      else queue.push(line);
    }
  });
  const end = (error: Error): void => {
    ended = error;
    for (const waiter of waiting.splice(0)) waiter.reject(error);
  };
  socket.on("error", end);
  socket.on("close", () => end(new Error("connection closed")));
  return () => {
    const line = queue.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (ended) return Promise.reject(ended);
    return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms).unref())]);
}

async function converse(socket: net.Socket | tls.TLSSocket, what: string): Promise<Conversation> {
  const next = lines(socket);
  const greeting = await withTimeout(next(), 3000, what).catch((error: Error) => {
    socket.destroy();
    throw error;
  });
  return {
    greeting,
    ask: (line) => {
      socket.write(`${line}\n`);
      return withTimeout(next(), 3000, `${what}: ${line}`);
    },
    close: () => socket.destroy(),
  };
}

/** A TCP conversation with whatever answers on the VPS's port. */
const tcp = (port: number): Promise<Conversation> => converse(net.connect({ host: edge.vps.address, port }), `tcp ${port}`);

/** A TLS conversation (SNI `servername`), trusting the test CA. */
function tlsTo(port: number, servername: string, clientCert?: { cert: string; key: string }): Promise<Conversation & { peer: string }> {
  const socket = tls.connect({ host: edge.vps.address, port, servername, ca: ca.cert, ...clientCert });
  return new Promise((resolve, reject) => {
    socket.once("secureConnect", () => {
      const cn = socket.getPeerCertificate().subject?.CN ?? "";
      const peer = Array.isArray(cn) ? cn.join(",") : cn;
      converse(socket, `tls ${servername}:${port}`).then((c) => resolve({ ...c, peer }), reject);
    });
    socket.once("error", reject);
  });
}

/** One UDP request and its answer. */
function udp(port: number, message: string): Promise<string> {
  const socket = createSocket("udp4");
  return withTimeout(
    new Promise<string>((resolve) => {
      socket.once("message", (answer) => resolve(answer.toString()));
      socket.send(message, port, edge.vps.address);
    }),
    1000,
    `udp ${port}`,
  ).finally(() => socket.close());
}

// ---- objects -------------------------------------------------------------------------------

const service = async (name: string, ports: Array<{ name: string; port: number; protocol?: "TCP" | "UDP"; backend: number }>): Promise<void> => {
  const created = (await client.create(Core.Service, {
    metadata: { name, namespace: ns },
    spec: { ports: ports.map(({ name: portName, port, protocol }) => ({ name: portName, port, protocol: protocol ?? "TCP" })) },
  } as KubeObject)) as KubeObject & { spec: { clusterIP: string } };
  for (const p of ports) cluster.addService({ protocol: p.protocol === "UDP" ? "udp" : "tcp", clusterIP: created.spec.clusterIP, port: p.port, backendPort: p.backend });
};

const bind = (name: string, routes: unknown[]): Promise<KubeObject> =>
  client.create(TunnelBindingResource, { apiVersion: "ktube.dev/v1alpha1", kind: "TunnelBinding", metadata: { name, namespace: ns }, spec: { tunnelRef: { name: "vps" }, routes } } as KubeObject);

const tlsSecret = async (name: string, cert: { cert: string; key: string }, caCert?: string): Promise<void> => {
  await client.create(Core.Secret, {
    metadata: { name, namespace: ns },
    type: "kubernetes.io/tls",
    stringData: { "tls.crt": cert.cert, "tls.key": cert.key, ...(caCert ? { "ca.crt": caCert } : {}) },
  } as KubeObject);
};

const bindingReady = (name: string, timeoutMs = 60_000) => waitForKtubeCondition(kc, "TunnelBinding", ns, name, "Ready", { status: "True" }, timeoutMs);

/** The uplink processes: which still run. */
const uplinkPods = () => kubelet.pods().filter((p) => p.name.startsWith(UPLINKS));

beforeAll(async () => {
  for (const tool of ["wg", "wireguard-go", "nft"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    } catch {
      throw new Error(`this test needs ${tool}: apt-get install -y wireguard-tools wireguard-go nftables`);
    }
  }
  kc = testKubeConfig();
  client = new KubeClient(kc);
  edge = await startEdgeVps();
  cluster = new EdgeCluster(edge.vps);
  ca = await createTestCa(scratch, "ktube-data-path-ca");

  const certFiles = async (name: string): Promise<{ cert: string; key: string }> => {
    const issued = await ca.issue(name, { dnsNames: [name] });
    const files = { cert: join(scratch, `${name}.crt`), key: join(scratch, `${name}.key`) };
    writeFileSync(files.cert, issued.cert);
    writeFileSync(files.key, issued.key);
    return files;
  };
  const backends: BackendSpec[] = [
    { kind: "tcp", port: BACKENDS.web, name: "web" },
    { kind: "udp", port: BACKENDS.dns, name: "dns" },
    { kind: "tls", port: BACKENDS.a, name: "a", ...(await certFiles("a.example.com")) },
    { kind: "tls", port: BACKENDS.b, name: "b", ...(await certFiles("b.example.com")) },
    { kind: "tcp", port: BACKENDS.plain, name: "plain" },
    { kind: "proxy", port: BACKENDS.proxied, name: "proxied" },
    { kind: "tcp", port: BACKENDS.extra, name: "extra" },
  ];
  await cluster.startBackends(backends);

  controllerNs = await createTestNamespace(kc, "ktube-system");
  ns = await createTestNamespace(kc, "edge-dp");
  manager = await startEdgeController({ kc, edge, namespace: controllerNs, provider: PROVIDER, id, plugin: { resyncMs: 60_000, confirmTimeoutMs: 15_000, sshTimeoutMs: 5_000 } });

  await service("web", [
    { name: "tcp", port: 80, backend: BACKENDS.web },
    { name: "dns", port: 53, protocol: "UDP", backend: BACKENDS.dns },
  ]);
  await service("sites", [
    { name: "a", port: 443, backend: BACKENDS.a },
    { name: "b", port: 8443, backend: BACKENDS.b },
  ]);
  await service("plain", [{ name: "http", port: 80, backend: BACKENDS.plain }]);
  await service("proxied", [{ name: "tcp", port: 80, backend: BACKENDS.proxied }]);
  await service("extra", [{ name: "tcp", port: 80, backend: BACKENDS.extra }]);

  await client.create(TunnelResource, {
    apiVersion: "ktube.dev/v1alpha1",
    kind: "Tunnel",
    metadata: { name: "vps", namespace: ns },
    spec: {
      providerRef: { name: PROVIDER },
      edge: {
        address: edge.vps.address,
        listenPorts: [{ from: 443 }, { from: 5353 }, { from: 8443, to: 8444 }, { from: 9000, to: 9010 }],
        wireguard: { persistentKeepalive: 5 },
        uplink: { replicas: 2 },
        // Fast checks, so a dead uplink is taken out within seconds.
        healthCheck: { interval: "1s", timeout: "1s", healthyThreshold: 1, unhealthyThreshold: 2 },
      },
    },
  } as KubeObject);
  kubelet = new LocalKubelet(kc, {
    command: () => [process.execPath, "--disable-warning=ExperimentalWarning", MAIN],
    networkNamespace: (pod) => cluster.podNamespace(pod),
  });
  await eventually(() => client.get(Core.StatefulSet, ns, UPLINKS), 60_000, 200);
  await kubelet.runStatefulSet(ns, UPLINKS, uplinkEnv);
}, 180_000);

afterAll(async () => {
  // KTUBE_TEST_LOG=info shows what the uplinks said.
  if (process.env.KTUBE_TEST_LOG) for (const pod of kubelet?.pods() ?? []) console.log(`--- ${pod.name}\n${pod.process.output}`);
  await manager?.stop();
  await kubelet?.close();
  await cluster?.stop();
  await edge?.stop();
  if (kc) {
    await deleteTestNamespace(kc, ns);
    await deleteTestNamespace(kc, controllerNs);
    await client.delete(TunnelProviderResource, undefined, PROVIDER).catch(() => undefined);
  }
  rmSync(scratch, { recursive: true, force: true });
}, 60_000);

describe("the edge's data path, end to end through WireGuard", () => {
  it("brings up both uplinks: handshakes with the VPS, the routes forwarded, the Tunnel Ready", async () => {
    await bind("web", [{ name: "raw", protocol: "TCP", listenPort: 9000, service: { name: "web", port: "tcp" } }]);
    const tunnel = await waitForKtubeCondition(kc, "Tunnel", ns, "vps", "UplinksReady", { status: "True" }, 90_000);
    expect(tunnel.conditions?.find((c) => c.type === "Ready")).toMatchObject({ status: "True", reason: "EdgeServing" });
    // Each uplink has its own interface, a handshake with the VPS, and the forwarding table.
    for (const pod of ["vps-edge-uplink-0", "vps-edge-uplink-1"]) {
      const iface = ifaceOf.get(pod)!;
      expect(cluster.inPod(pod, "wg", ["show", iface, "latest-handshakes"])).toMatch(/\t[1-9]\d+\n/);
      expect(cluster.inPod(pod, "nft", ["list", "table", "ip", "ktube_uplink"])).toContain("dnat to");
    }
  }, 120_000);

  it("carries TCP to the Service's backend, and both uplinks carry connections (active-active)", async () => {
    const status = await bindingReady("web");
    expect(status.routes?.[0]).toMatchObject({ name: "raw", ready: true, url: `tcp://${edge.vps.address}:9000` });
    const via = new Set<string>();
    await eventually(async () => {
      const c = await tcp(9000);
      try {
        expect(c.greeting).toMatch(/^hello from web via /);
        expect(await c.ask("ping")).toBe("web: ping");
        via.add(c.greeting.split(" via ")[1]!);
      } finally {
        c.close();
      }
      // The backend sees the uplink Pod's address (masqueraded): both Pods forward.
      expect(via).toEqual(new Set([cluster.podAddress("vps-edge-uplink-0"), cluster.podAddress("vps-edge-uplink-1")]));
    }, 20_000);
  }, 60_000);

  it("carries UDP request/response (DNS-like) to the Service's backend", async () => {
    await bind("dns", [{ name: "dns", protocol: "UDP", listenPort: 5353, service: { name: "web", port: "dns" } }]);
    const status = await bindingReady("dns");
    expect(status.routes?.[0]?.url).toBe(`udp://${edge.vps.address}:5353`);
    expect(await eventually(() => udp(5353, "query example.com A"), 20_000)).toBe("dns: query example.com A");
  }, 60_000);

  it("routes several hostnames on one TLS port by SNI to different backends, without terminating TLS", async () => {
    await bind("sites", [
      { name: "a", protocol: "TLS", hostname: "a.example.com", tls: { mode: "passthrough" }, service: { name: "sites", port: "a" } },
      { name: "b", protocol: "TLS", hostname: "b.example.com", tls: { mode: "passthrough" }, service: { name: "sites", port: "b" } },
    ]);
    await bindingReady("sites");
    for (const name of ["a", "b"]) {
      const c = await eventually(() => tlsTo(443, `${name}.example.com`), 20_000);
      // The backend's own certificate: the edge passed the TLS session through.
      expect(c.peer).toBe(`${name}.example.com`);
      expect(c.greeting).toMatch(new RegExp(`^hello from ${name} via `));
      c.close();
    }
  }, 60_000);

  it("terminates TLS at the edge (offload), and with mutual TLS refuses a client without a certificate", async () => {
    const edgeCert = await ca.issue("secure.example.com", { dnsNames: ["secure.example.com"] });
    await tlsSecret("secure-tls", edgeCert, ca.cert);
    await bind("secure", [
      { name: "offload", protocol: "TLS", hostname: "secure.example.com", listenPort: 8443, tls: { mode: "offload", secretRef: { name: "secure-tls" } }, service: { name: "plain", port: "http" } },
      { name: "mutual", protocol: "TLS", hostname: "secure.example.com", listenPort: 8444, tls: { mode: "mutual", secretRef: { name: "secure-tls" } }, service: { name: "plain", port: "http" } },
    ]);
    await bindingReady("secure");
    const offloaded = await eventually(() => tlsTo(8443, "secure.example.com"), 20_000);
    expect(offloaded.peer).toBe("secure.example.com"); // the edge's certificate, from the Secret
    expect(offloaded.greeting).toMatch(/^hello from plain via /); // a plain TCP backend behind it
    offloaded.close();

    await expect(tlsTo(8444, "secure.example.com")).rejects.toThrow();
    const clientCert = await ca.issue("alice", { client: true });
    const mutual = await tlsTo(8444, "secure.example.com", clientCert);
    expect(mutual.greeting).toMatch(/^hello from plain via /);
    mutual.close();
  }, 60_000);

  it("sends PROXY v2 to a backend that asks for it: the backend sees the client's real address", async () => {
    await bind("proxied", [{ name: "tcp", protocol: "TCP", listenPort: 9001, proxyProtocol: "v2", service: { name: "proxied", port: "tcp" } }]);
    await bindingReady("proxied");
    const answer = await eventually(
      () =>
        new Promise<{ text: string; local: string }>((resolve, reject) => {
          const socket = net.connect({ host: edge.vps.address, port: 9001 });
          let text = "";
          socket.on("data", (d: Buffer) => (text += d.toString()));
          socket.on("end", () => resolve({ text: text.trim(), local: `${socket.localAddress}:${socket.localPort}` }));
          socket.on("error", reject);
        }).then((r) => {
          expect(r.text).toMatch(/^client /);
          return r;
        }),
      20_000,
    );
    expect(answer.text).toBe(`client ${answer.local}`);
    expect(answer.local.startsWith(`${edge.vps.hostAddress}:`)).toBe(true);
  }, 60_000);

  it("adds and removes a route while a long TCP connection on another route stays open; a deleted binding's port closes on the VPS", async () => {
    const long = await tcp(9000);
    expect(await long.ask("before")).toBe("web: before");

    await bind("extra", [{ name: "tcp", protocol: "TCP", listenPort: 9002, service: { name: "extra", port: "tcp" } }]);
    await bindingReady("extra");
    const extra = await eventually(() => tcp(9002), 20_000);
    expect(extra.greeting).toMatch(/^hello from extra via /);
    extra.close();
    expect(await long.ask("after add")).toBe("web: after add");

    await client.delete(TunnelBindingResource, ns, "extra");
    // Its port closes on the VPS: a connection is refused (Envoy no longer listens there).
    await eventually(
      () =>
        new Promise<void>((resolve, reject) => {
          const socket = net.connect({ host: edge.vps.address, port: 9002 });
          socket.once("connect", () => {
            socket.destroy();
            reject(new Error("port 9002 still accepts connections"));
          });
          socket.once("error", (error: NodeJS.ErrnoException) => (error.code === "ECONNREFUSED" ? resolve() : reject(error)));
        }),
      30_000,
    );
    expect((await edge.vps.exec("ss -Hltn")).stdout).not.toContain(":9002 ");
    // …and the uplinks no longer forward its tunnel port.
    await eventually(() => {
      for (const pod of ["vps-edge-uplink-0", "vps-edge-uplink-1"]) expect(cluster.inPod(pod, "nft", ["list", "table", "ip", "ktube_uplink"])).not.toContain(`:${BACKENDS.extra}`);
      const table = cluster.inPod("vps-edge-uplink-0", "nft", ["list", "table", "ip", "ktube_uplink"]);
      expect(table.match(/dnat to/g)?.length).toBe(7); // raw, dns, a, b, offload, mutual, proxied
    }, 20_000);
    expect(await long.ask("after remove")).toBe("web: after remove");
    long.close();
  }, 90_000);

  it("moves traffic to the other uplink within the health-check window when one dies, and takes the replacement back", async () => {
    const survivor = cluster.podAddress("vps-edge-uplink-1");
    cluster.killPod("vps-edge-uplink-0");
    // Health checks every 1 s, out after 2 failures with a 1 s timeout: within about 4 s every
    // new connection goes through the survivor. Connections that landed on the dead uplink
    // meanwhile time out; afterwards ten in a row must all succeed.
    await eventually(
      async () => {
        for (let i = 0; i < 10; i++) {
          const c = await tcp(9000);
          c.close();
          expect(c.greeting).toBe(`hello from web via ${survivor}`);
        }
      },
      10_000,
      200,
    );
    // The node controller evicts the dead node's Pod; the Tunnel says one uplink is missing and stays Ready on the survivor.
    await client.delete(Core.Pod, ns, "vps-edge-uplink-0");
    const degraded = await waitForKtubeCondition(kc, "Tunnel", ns, "vps", "UplinksReady", { status: "False" }, 30_000);
    expect(degraded.conditions?.find((c) => c.type === "UplinksReady")?.message).toContain("1 of 2 uplinks forward the current routes");
    expect(degraded.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");

    // The StatefulSet's replacement for ordinal 0: same key and address, serving again.
    await eventually(async () => expect(await client.get(Core.Pod, ns, "vps-edge-uplink-0").then(() => true, () => false)).toBe(false), 30_000);
    await kubelet.addStatefulSetPod(ns, UPLINKS, 0, uplinkEnv(0));
    await waitForKtubeCondition(kc, "Tunnel", ns, "vps", "UplinksReady", { status: "True" }, 60_000);
    const via = new Set<string>();
    await eventually(async () => {
      const c = await tcp(9000);
      c.close();
      via.add(c.greeting.split(" via ")[1]!);
      expect(via.size).toBe(2);
    }, 20_000);
  }, 120_000);

  it("stops the uplinks when the Tunnel is deleted: each drains, then removes its interface and rules", async () => {
    const pods = uplinkPods().filter((p) => p.process.running);
    expect(pods.length).toBe(2);
    const namespaces = pods.map((p) => cluster.podNamespace({ metadata: { name: p.name } }));
    await client.delete(TunnelResource, ns, "vps");
    // The garbage collector deletes the StatefulSet and its Pods; the kubelet sends SIGTERM.
    for (const pod of pods) expect(await withTimeout(pod.process.exited, 60_000, `${pod.name} to exit`)).toBe(0);
    for (const namespace of namespaces) {
      expect(cluster.group.exec(namespace, "ip", ["-o", "link", "show"])).not.toMatch(/ ku[0-9a-f]+: /);
      expect(cluster.group.exec(namespace, "nft", ["list", "tables"])).not.toContain("ktube_uplink");
    }
    // Nothing of the tunnel is left on the VPS either.
    await eventually(async () => expect((await edge.vps.exec("test -e /etc/ktube && echo present || echo gone")).stdout.trim()).toBe("gone"), 30_000);
  }, 120_000);
});
