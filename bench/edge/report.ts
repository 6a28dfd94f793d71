// How the numbers are shown: JSON and a markdown table on stdout, and with --write the table
// in its block of bench/README.md (`<!-- edge-throughput:begin -->` ... `end -->`) and the
// JSON in bench/edge/results-throughput.json.
import { publishResults, runStamp } from "../results.ts";
import type { PathResult } from "./measure.ts";
import type { BenchOptions } from "./options.ts";
import type { ProxyBinary } from "./proxy.ts";
import { log } from "./topology.ts";
import type { Tunnel } from "./tunnel.ts";

export const SCENARIO = "throughput";

export interface EdgeResult {
  proxy: ProxyBinary;
  tunnel: Pick<Tunnel, "vps" | "uplink">;
  /** `wireguard-go --version` (first line), or the kernel release for kernel WireGuard. */
  wireguardVersion: string;
  paths: Record<PathName, PathResult>;
  /** The whole run, setup and teardown included. */
  wallSeconds: number;
  /** The machine's 1-minute load average when the bench started (other work shares the cores). */
  loadAverageBefore: number;
}

/** direct: routed, no proxy, no tunnel; tunnelOnly: WireGuard + the uplink's NAT, no proxy; proxy: no tunnel; tunnel: the edge, both. */
export type PathName = "direct" | "tunnelOnly" | "proxy" | "tunnel";

const ratio = (a: number, b: number): number => Math.round((a / b) * 100) / 100;
const cpu = (n: number | undefined): string => (n === undefined ? "–" : n.toFixed(1));

export function failures({ paths }: EdgeResult): string[] {
  return Object.entries(paths).flatMap(([name, path]) =>
    path.connections.errors > 0 ? [`${name}: ${path.connections.errors} failed connections (${path.connections.firstError ?? "?"})`] : [],
  );
}

export function report(options: BenchOptions, result: EdgeResult): void {
  const { date, machine } = runStamp();
  const { direct, tunnelOnly, proxy, tunnel } = result.paths;
  const columns = [direct, tunnelOnly, proxy, tunnel];
  const wireguard = result.tunnel.vps === result.tunnel.uplink ? `${result.tunnel.vps} at both ends` : `${result.tunnel.vps} on the VPS, ${result.tunnel.uplink} on the uplink`;
  const mib = (p: PathResult): number => p.throughput.mibPerSecond;
  const ratios = {
    tunnelOnlyToDirect: ratio(mib(tunnelOnly), mib(direct)),
    proxyToDirect: ratio(mib(proxy), mib(direct)),
    tunnelToDirect: ratio(mib(tunnel), mib(direct)),
    tunnelToProxy: ratio(mib(tunnel), mib(proxy)),
  };
  const { write: _write, ...shape } = options;
  const json = {
    scenario: SCENARIO,
    date,
    machine,
    ...shape,
    proxy: { kind: result.proxy.kind, version: result.proxy.version },
    wireguard: { vps: result.tunnel.vps, uplink: result.tunnel.uplink, version: result.wireguardVersion },
    paths: result.paths,
    throughputRatios: ratios,
    wallSeconds: result.wallSeconds,
    loadAverageBefore: result.loadAverageBefore,
  };
  const row = (label: string, f: (path: PathResult) => string, bold = false): string =>
    `| ${bold ? `**${label}**` : label} | ${columns.map((p) => (bold ? `**${f(p)}**` : f(p))).join(" | ")} |`;
  const cpuRow = (p: PathResult): string => {
    const c = p.throughput.cpuSeconds;
    const proxyCpu = p === proxy || p === tunnel ? cpu(c.proxy) : "–";
    const wg = p === tunnelOnly || p === tunnel ? cpu((c.wireguardVps ?? 0) + (c.wireguardUplink ?? 0)) : "–";
    return `${proxyCpu} / ${wg} / ${cpu(p.throughput.clientCpuSeconds)} / ${cpu(c.backend)}`;
  };
  const rows = [
    `| | direct | tunnel only | proxy only | **proxy + tunnel (the edge)** |`,
    `|---|---|---|---|---|`,
    `| path from the client namespace to the backend | routed through the VPS and uplink namespaces | into WireGuard at the VPS (masqueraded), the uplink's DNAT + masquerade | the VPS's proxy, then routed through the uplink | the VPS's proxy, WireGuard, the uplink's DNAT + masquerade |`,
    `| proxy on the VPS | – | – | ${result.proxy.label} | ${result.proxy.label} |`,
    `| WireGuard | – | ${wireguard} (${result.wireguardVersion}) | – | the same |`,
    row(`throughput, one connection, ${options.chunkKiB} KiB writes for ${options.throughputSeconds} s (median of ${options.runs})`, (p) => `${mib(p).toFixed(0)} MiB/s`, true),
    row(`&nbsp;&nbsp;each run`, (p) => p.throughputRuns.map((n) => n.toFixed(0)).join(" / ")),
    `| throughput ratio to direct | 1.00 | ${ratios.tunnelOnlyToDirect.toFixed(2)} | ${ratios.proxyToDirect.toFixed(2)} | **${ratios.tunnelToDirect.toFixed(2)}** |`,
    `| throughput ratio to proxy only (what the tunnel costs the edge) | – | – | 1.00 | ${ratios.tunnelToProxy.toFixed(2)} |`,
    row(`CPU seconds in that transfer: proxy / ${result.tunnel.vps === "kernel" && result.tunnel.uplink === "kernel" ? "WireGuard (kernel, not counted)" : "wireguard-go (both ends)"} / client / backend`, cpuRow),
    row(`TCP segments retransmitted / UDP receive-buffer drops in that transfer (all namespaces)`, (p) => `${p.throughput.counters.tcpRetransmits} / ${p.throughput.counters.udpReceiveBufferErrors}`),
    row(`latency p50 / p99, ${options.messageBytes} B request and response on one connection (${options.pings} round trips)`, (p) => `${p.latency.p50Ms.toFixed(2)} / ${p.latency.p99Ms.toFixed(2)} ms`),
    row(`connections/s, ${options.concurrency} at a time (connect, ${options.messageBytes} B request and response, close; ${options.connectSeconds} s)`, (p) => `${p.connections.perSecond}`, true),
    row(`failed connections`, (p) => `${p.connections.errors}`),
  ].join("\n");
  publishResults({ bench: "edge", scenario: SCENARIO, date, machine, rows, json, write: options.write, log });
}
