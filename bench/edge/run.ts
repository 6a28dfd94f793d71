// Throughput of the self-hosted edge's data path, on one machine: four network namespaces
// (client, VPS, uplink, backend; see topology.ts), the VPS running the proxy on the files the
// edge controller renders (fake-envoy, or a real Envoy when ENVOY_BIN is set) and the VPS's
// end of WireGuard, the uplink running the connector's WireGuard and nftables rules.
// Four paths from the same client to the same backend, measured one after the other:
//
//   direct      routed by the kernel through the VPS and uplink namespaces (no proxy, no tunnel)
//   tunnelOnly  client -> VPS (masqueraded into WireGuard) -> uplink (DNAT + masquerade) -> backend
//   proxy       client -> proxy on the VPS -> backend, routed through the uplink (no tunnel)
//   tunnel      client -> proxy -> WireGuard -> uplink (DNAT + masquerade) -> backend: the edge
//
// For each: MiB/s on one connection, request/response latency on one connection, and new
// connections per second. It prints JSON and a table; --write puts the table in
// bench/README.md and the JSON in bench/edge/results-throughput.json. Needs root, iproute2,
// nftables, wireguard-tools and wireguard-go (or the kernel module). Failed connections
// exit 1. Every namespace, interface and process it made is removed on the way out, also
// after an error, SIGINT or SIGTERM.
//
//   npm run bench:edge -w @ktube/bench -- [--write]
//     [--seconds 5 --runs 3 --chunk 64 --pings 2000 --message 64 --connect-seconds 5 --concurrency 8]
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type { EdgePlan } from "@ktube/edge-controller/envoy/plan";
import { measurePath, round, waitForPath, type PathResult, type PathTarget } from "./measure.ts";
import { parseOptions } from "./options.ts";
import { proxyBinary, startProxy, stopProxy, type ProxyBinary } from "./proxy.ts";
import { failures, report, type EdgeResult, type PathName } from "./report.ts";
import { ADDRESSES, createTopology, destroyTopology, leftoverNamespaces, log, startIn, type Topology } from "./topology.ts";
import { READY_PORT, startTunnel, type Tunnel } from "./tunnel.ts";

/** The backend's ports; the tunnel ports are the same numbers, so the uplink's DNAT changes only the address. */
const SINK_PORT = 20000;
const ECHO_PORT = 20001;
/** The proxy's public ports on the VPS. */
const LISTEN = { sink: 8000, echo: 8001 };

/** Two TCP routes (sink, echo) to `uplink`, as the controller plans them: health-checked on the uplink's readiness port. */
const edgePlan = (uplink: string): EdgePlan => ({
  nodeId: "bench/edge",
  adminPort: 9901,
  uplinks: [uplink],
  healthCheck: { intervalSeconds: 5, timeoutSeconds: 2, healthyThreshold: 2, unhealthyThreshold: 2, port: READY_PORT },
  routes: [
    { key: "bench/edge/sink", protocol: "TCP", listenPort: LISTEN.sink, tunnelPort: SINK_PORT },
    { key: "bench/edge/echo", protocol: "TCP", listenPort: LISTEN.echo, tunnelPort: ECHO_PORT },
  ],
  secrets: [],
});

const options = parseOptions();
const startedAt = performance.now();
const loadBefore = loadavg()[0]!;
const node = process.execPath;
const script = (name: string): string[] => ["--disable-warning=ExperimentalWarning", join(import.meta.dirname, name)];
if (loadBefore > 0.5) log(`note: the machine is busy (load average ${loadBefore.toFixed(2)}); the numbers share its ${cpus().length} cores with that`);
for (const name of leftoverNamespaces()) log(`note: namespace ${name} exists: another run, or one that was SIGKILLed (then remove it:  ip netns pids ${name} | xargs -r kill; ip netns del ${name})`);

const scratch = mkdtempSync(join(tmpdir(), "ktube-bench-edge-"));
const binary = await proxyBinary(scratch).catch((error: unknown) => {
  rmSync(scratch, { recursive: true, force: true });
  throw error;
});
const topology = createTopology();
let cleaned = false;
const cleanup = (): void => {
  if (cleaned) return;
  cleaned = true;
  destroyTopology(topology);
  rmSync(scratch, { recursive: true, force: true });
};
for (const [signal, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
] as const) {
  process.once(signal, () => {
    log(`${signal}: removing the namespaces`);
    cleanup();
    process.exit(code);
  });
}

async function measure(topology: Topology, binary: ProxyBinary): Promise<Omit<EdgeResult, "wallSeconds" | "loadAverageBefore">> {
  log(`namespaces ${Object.values(topology.ns).join(", ")}; proxy ${binary.label}`);
  const backend = await startIn(topology.ns.backend, node, [...script("backend.ts"), "backend", ADDRESSES.backend, String(SINK_PORT), String(ECHO_PORT), String(READY_PORT)], "listening");
  const tunnel: Tunnel = await startTunnel(topology, scratch, [
    { tunnelPort: SINK_PORT, target: { ip: ADDRESSES.backend, port: SINK_PORT } },
    { tunnelPort: ECHO_PORT, target: { ip: ADDRESSES.backend, port: ECHO_PORT } },
  ]);
  const pids = { backend: backend.pid, wireguardVps: tunnel.pids.vps, wireguardUplink: tunnel.pids.uplink };

  const direct: PathTarget = { host: ADDRESSES.backend, sinkPort: SINK_PORT, echoPort: ECHO_PORT };
  await waitForPath(topology, direct, options);
  const results: Partial<Record<PathName, PathResult>> = {};
  results.direct = await measurePath(topology, "direct", direct, options, pids);
  const tunnelOnly: PathTarget = { host: ADDRESSES.uplinkTunnel, sinkPort: SINK_PORT, echoPort: ECHO_PORT };
  await waitForPath(topology, tunnelOnly, options);
  results.tunnelOnly = await measurePath(topology, "tunnel only", tunnelOnly, options, pids);

  const viaProxy: PathTarget = { host: ADDRESSES.vpsToClient, sinkPort: LISTEN.sink, echoPort: LISTEN.echo };
  for (const [name, uplink] of [
    ["proxy", ADDRESSES.backend],
    ["tunnel", ADDRESSES.uplinkTunnel],
  ] as const) {
    const proxy = await startProxy(binary, topology, edgePlan(uplink), join(scratch, name));
    try {
      await waitForPath(topology, viaProxy, options).catch((error: Error) => {
        throw new Error(`${error.message}\nproxy output:\n${proxy.stderr()}`);
      });
      results[name] = await measurePath(topology, name, viaProxy, options, { ...pids, proxy: proxy.pid });
    } finally {
      await stopProxy(proxy);
    }
  }
  const wireguardVersion =
    tunnel.vps === "kernel" && tunnel.uplink === "kernel"
      ? `Linux ${execFileSync("uname", ["-r"], { encoding: "utf8" }).trim()}`
      : (execFileSync("wireguard-go", ["--version"], { encoding: "utf8" }).split("\n")[0] ?? "").trim();
  return { proxy: binary, tunnel: { vps: tunnel.vps, uplink: tunnel.uplink }, wireguardVersion, paths: { direct: results.direct, tunnelOnly: results.tunnelOnly, proxy: results.proxy!, tunnel: results.tunnel! } };
}

let outcome: Omit<EdgeResult, "wallSeconds" | "loadAverageBefore">;
try {
  outcome = await measure(topology, binary);
} finally {
  cleanup();
}
const result: EdgeResult = { ...outcome, wallSeconds: round((performance.now() - startedAt) / 1000, 1), loadAverageBefore: round(loadBefore, 2) };
log(`done in ${result.wallSeconds} s`);
report(options, result);
const failed = failures(result);
if (failed.length > 0) {
  log(`FAILED: ${failed.join("; ")}`);
  process.exitCode = 1;
}
