// One path measured from the client namespace: bulk throughput on one connection, round-trip
// latency on one connection, and the connection setup rate; and how much CPU the processes
// on the path (the proxy, wireguard-go at both ends, the client, the backend) used during
// the bulk transfer.
import { join } from "node:path";
import type { BenchOptions } from "./options.ts";
import { cpuSeconds, log, networkCounters, runIn, type NetworkCounters, type Topology } from "./topology.ts";

export interface PathTarget {
  host: string;
  sinkPort: number;
  echoPort: number;
}

/** One bulk transfer on one connection. */
export interface Transfer {
  bytes: number;
  ms: number;
  mibPerSecond: number;
  clientCpuSeconds: number;
  /** CPU seconds of the bench's long-running processes during the transfer, by role. */
  cpuSeconds: Record<string, number>;
  /** The kernel's counters over the bench's namespaces during the transfer. */
  counters: NetworkCounters;
}

export interface PathResult {
  /** The median transfer of the runs (by MiB/s). */
  throughput: Transfer;
  /** MiB/s of every run, in order. */
  throughputRuns: number[];
  latency: { count: number; p50Ms: number; p99Ms: number; meanMs: number; maxMs: number };
  connections: { connections: number; errors: number; firstError?: string; ms: number; perSecond: number };
}

const CLIENT = join(import.meta.dirname, "client.ts");

async function client(topology: Topology, args: (string | number)[], timeoutMs: number): Promise<Record<string, unknown>> {
  const out = await runIn(topology.ns.client, process.execPath, ["--disable-warning=ExperimentalWarning", CLIENT, ...args.map(String)], timeoutMs);
  return JSON.parse(out.trim().split("\n").pop() ?? "{}") as Record<string, unknown>;
}

/** Waits until a request/response through `target` comes back (the proxy has its listeners and a healthy upstream). */
export async function waitForPath(topology: Topology, target: PathTarget, options: BenchOptions, timeoutMs = 30_000): Promise<void> {
  const answer = await client(topology, ["wait", target.host, target.echoPort, timeoutMs, options.messageBytes], timeoutMs + 10_000);
  if (answer.ok !== true) throw new Error(`no answer through ${target.host}:${target.echoPort} within ${timeoutMs} ms: ${String(answer.error)}`);
}

async function transfer(topology: Topology, target: PathTarget, options: BenchOptions, pids: Record<string, number | undefined>): Promise<Transfer> {
  const countersBefore = networkCounters(topology);
  const before = Object.fromEntries(Object.entries(pids).map(([what, pid]) => [what, cpuSeconds(pid)]));
  const bulk = await client(topology, ["throughput", target.host, target.sinkPort, options.throughputSeconds, options.chunkKiB], options.throughputSeconds * 1000 + 60_000);
  const cpu = Object.fromEntries(Object.entries(pids).map(([what, pid]) => [what, round(cpuSeconds(pid) - (before[what] ?? 0), 2)]));
  const countersAfter = networkCounters(topology);
  const bytes = Number(bulk.bytes);
  const ms = Number(bulk.ms);
  return {
    bytes,
    ms: round(ms, 1),
    mibPerSecond: round(bytes / 2 ** 20 / (ms / 1000), 1),
    clientCpuSeconds: round(Number(bulk.clientCpuSeconds), 2),
    cpuSeconds: cpu,
    counters: {
      tcpRetransmits: countersAfter.tcpRetransmits - countersBefore.tcpRetransmits,
      udpReceiveBufferErrors: countersAfter.udpReceiveBufferErrors - countersBefore.udpReceiveBufferErrors,
    },
  };
}

export async function measurePath(topology: Topology, name: string, target: PathTarget, options: BenchOptions, pids: Record<string, number | undefined>): Promise<PathResult> {
  const runs: Transfer[] = [];
  for (let run = 1; run <= options.runs; run++) {
    runs.push(await transfer(topology, target, options, pids));
    log(`${name}: bulk transfer ${run}/${options.runs}, ${options.throughputSeconds} s: ${runs[runs.length - 1]!.mibPerSecond} MiB/s`);
  }
  const throughput = [...runs].sort((a, b) => a.mibPerSecond - b.mibPerSecond)[Math.floor((runs.length - 1) / 2)]!;
  const ping = await client(topology, ["latency", target.host, target.echoPort, options.pings, options.messageBytes], 120_000);
  const latency = {
    count: Number(ping.count),
    p50Ms: round(Number(ping.p50Ms), 3),
    p99Ms: round(Number(ping.p99Ms), 3),
    meanMs: round(Number(ping.meanMs), 3),
    maxMs: round(Number(ping.maxMs), 3),
  };
  log(`${name}: p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms; ${options.connectSeconds} s of new connections, ${options.concurrency} at a time`);
  const rate = await client(topology, ["connect", target.host, target.echoPort, options.connectSeconds, options.concurrency, options.messageBytes], options.connectSeconds * 1000 + 60_000);
  const connections = {
    connections: Number(rate.connections),
    errors: Number(rate.errors),
    ...(typeof rate.firstError === "string" ? { firstError: rate.firstError } : {}),
    ms: round(Number(rate.ms), 1),
    perSecond: round(Number(rate.perSecond), 0),
  };
  log(`${name}: ${connections.perSecond} connections/s (${connections.errors} errors)`);
  return { throughput, throughputRuns: runs.map((r) => r.mibPerSecond), latency, connections };
}

export const round = (n: number, digits: number): number => Math.round(n * 10 ** digits) / 10 ** digits;
