// The bench's network: four namespaces in a line, joined by veth pairs, named with a random
// id so that runs (and wireguard-go's control sockets, shared by every namespace) never
// collide, and all of it removed on the way out.
//
//   client ──10.219.1.0/30── vps ──10.219.2.0/30 ("internet")── uplink ──10.219.3.0/30── backend
//                             └───────── WireGuard 10.201.0.0/24 ─────────┘
//
// vps and uplink forward between their veths (net.ipv4.ip_forward=1 in those two namespaces
// only), so the client also reaches the backend by plain routing: the direct baseline.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import type { Exec } from "@ktube/edge-controller/connector/wireguard";

export const ADDRESSES = {
  client: "10.219.1.1",
  vpsToClient: "10.219.1.2",
  vpsToInternet: "10.219.2.1",
  uplinkToInternet: "10.219.2.2",
  uplinkToBackend: "10.219.3.1",
  backend: "10.219.3.2",
  /** The tunnel network inside WireGuard. */
  vpsTunnel: "10.201.0.1",
  uplinkTunnel: "10.201.0.2",
} as const;

export interface Topology {
  id: string;
  ns: { client: string; vps: string; uplink: string; backend: string };
  /** WireGuard interface names (unique: wireguard-go's sockets in /var/run/wireguard are global). */
  wg: { vps: string; uplink: string };
}

export function log(message: string): void {
  process.stderr.write(`[bench:edge ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

const sh = (script: string): string => execFileSync("sh", ["-c", script], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

export function createTopology(): Topology {
  const id = randomBytes(2).toString("hex");
  const ns = { client: `kteb-${id}-client`, vps: `kteb-${id}-vps`, uplink: `kteb-${id}-uplink`, backend: `kteb-${id}-backend` };
  const topology: Topology = { id, ns, wg: { vps: `ktew${id}v`, uplink: `ktew${id}u` } };
  const v = (a: string, b: string): string => `kte${id}${a}${b}`;
  const a = ADDRESSES;
  const script = [
    ...Object.values(ns).map((name) => `ip netns add ${name} && ip -n ${name} link set lo up`),
    `ip link add ${v("c", "v")} netns ${ns.client} type veth peer name ${v("v", "c")} netns ${ns.vps}`,
    `ip link add ${v("v", "u")} netns ${ns.vps} type veth peer name ${v("u", "v")} netns ${ns.uplink}`,
    `ip link add ${v("u", "b")} netns ${ns.uplink} type veth peer name ${v("b", "u")} netns ${ns.backend}`,
    ...(
      [
        [ns.client, v("c", "v"), a.client],
        [ns.vps, v("v", "c"), a.vpsToClient],
        [ns.vps, v("v", "u"), a.vpsToInternet],
        [ns.uplink, v("u", "v"), a.uplinkToInternet],
        [ns.uplink, v("u", "b"), a.uplinkToBackend],
        [ns.backend, v("b", "u"), a.backend],
      ] as const
    ).map(([name, dev, address]) => `ip -n ${name} addr add ${address}/30 dev ${dev} && ip -n ${name} link set ${dev} up`),
    `ip -n ${ns.client} route add default via ${a.vpsToClient}`,
    `ip -n ${ns.vps} route add 10.219.3.0/30 via ${a.uplinkToInternet}`,
    `ip -n ${ns.uplink} route add 10.219.1.0/30 via ${a.vpsToInternet}`,
    `ip -n ${ns.backend} route add default via ${a.uplinkToBackend}`,
    // Forwarding only inside the bench's own namespaces, never the host's.
    ...[ns.vps, ns.uplink].map((name) => `ip netns exec ${name} sysctl -qw net.ipv4.ip_forward=1`),
    // Thousands of short connections: a wide port range and TIME_WAIT reuse where connections start.
    ...[ns.client, ns.vps, ns.uplink].map((name) => `ip netns exec ${name} sysctl -qw net.ipv4.ip_local_port_range="10000 65000" net.ipv4.tcp_tw_reuse=1`),
  ];
  try {
    sh(script.join(" && "));
  } catch (error) {
    destroyTopology(topology);
    throw new Error(`the bench's namespaces could not be set up (root, iproute2 and veth are needed): ${(error as { stderr?: string }).stderr ?? String(error)}`);
  }
  return topology;
}

/** Removes the WireGuard links, ends every process in the bench's namespaces (all started by it), deletes the namespaces. Synchronous: also runs from signal handlers. */
export function destroyTopology(topology: Topology): void {
  const namespaces = Object.values(topology.ns);
  const existing = new Set(sh("ip netns list || true").split("\n").map((line) => line.split(" ")[0]));
  const ours = namespaces.filter((name) => existing.has(name));
  for (const [name, iface] of [
    [topology.ns.vps, topology.wg.vps],
    [topology.ns.uplink, topology.wg.uplink],
  ] as const) {
    if (ours.includes(name)) sh(`ip -n ${name} link del ${iface} 2>/dev/null || true`);
  }
  const pids = (): number[] => ours.flatMap((name) => sh(`ip netns pids ${name} 2>/dev/null || true`).split("\n").filter(Boolean).map(Number));
  for (const pid of pids()) kill(pid, "SIGTERM");
  const deadline = Date.now() + 3000;
  while (pids().length > 0 && Date.now() < deadline) sh("sleep 0.1");
  for (const pid of pids()) kill(pid, "SIGKILL");
  for (const name of ours) sh(`ip netns del ${name} 2>/dev/null || true`);
  // wireguard-go leaves its control socket behind when it is killed rather than stopped.
  for (const iface of Object.values(topology.wg)) rmSync(`/var/run/wireguard/${iface}.sock`, { force: true });
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** An `Exec` (the edge controller's command runner) inside a namespace. */
export const execIn =
  (ns: string): Exec =>
  (command, args, input) =>
    new Promise((resolve, reject) => {
      const child = spawn("ip", ["netns", "exec", ns, command, ...args], { stdio: ["pipe", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      child.once("error", reject);
      // "exit", not "close": wireguard-go's daemon keeps the pipes open after its parent exits.
      child.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} ${args.join(" ")}: ${err.trim() || `exit ${code}`}`))));
      child.stdin.end(input ?? "");
    });

/** Starts a long-running program inside a namespace; resolves once it prints `readyLine` (rejects with its output if it exits first). */
export function startIn(ns: string, command: string, args: readonly string[], readyLine: string, timeoutMs = 30_000): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn("ip", ["netns", "exec", ns, command, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${command} ${args.join(" ")} in ${ns} did not print "${readyLine}" within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (d: Buffer): void => {
      output += d.toString();
      if (output.includes(readyLine)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${command} ${args.join(" ")} in ${ns} exited (${code ?? signal}):\n${output}`));
    });
  });
}

/** Runs a program inside a namespace to completion and returns its stdout; throws with its stderr on a non-zero exit or after `timeoutMs`. */
export function runIn(ns: string, command: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("ip", ["netns", "exec", ns, command, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", reject);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(" ")} in ${ns} failed (${code ?? signal}${signal === "SIGKILL" ? `, over ${timeoutMs} ms` : ""}): ${err.trim()}`));
    });
  });
}

/** CPU seconds (user + system) a process has used so far; 0 once it is gone. */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14 and 15 of stat(5) (utime, stime), counted after the ")" that ends the command name.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** The pid of the process in `ns` whose command line is exactly `argv` (wireguard-go daemonizes, so its pid is not ours). */
export function findPid(ns: string, argv: readonly string[]): number | undefined {
  const pids = sh(`ip netns pids ${ns} 2>/dev/null || true`).split("\n").filter(Boolean).map(Number);
  const want = argv.join("\0");
  return pids.find((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0$/, "") === want;
    } catch {
      return false;
    }
  });
}

/** Names of the bench's leftover namespaces from an earlier run that was SIGKILLed (for the operator; never removed here). */
export function leftoverNamespaces(): string[] {
  try {
    return readdirSync("/var/run/netns").filter((name) => name.startsWith("kteb-"));
  } catch {
    return [];
  }
}

export interface NetworkCounters {
  /** TCP segments retransmitted (TcpRetransSegs), over the bench's namespaces. */
  tcpRetransmits: number;
  /** UDP datagrams dropped for a full receive buffer (UdpRcvbufErrors): WireGuard's packets. */
  udpReceiveBufferErrors: number;
}

/** The kernel's counters summed over the bench's namespaces (/proc/net/snmp, read inside each). */
export function networkCounters(topology: Topology): NetworkCounters {
  const total: NetworkCounters = { tcpRetransmits: 0, udpReceiveBufferErrors: 0 };
  for (const ns of Object.values(topology.ns)) {
    const lines = sh(`ip netns exec ${ns} cat /proc/net/snmp`).split("\n");
    const value = (protocol: string, field: string): number => {
      const [header, values] = lines.filter((line) => line.startsWith(`${protocol}:`));
      const index = header?.split(" ").indexOf(field) ?? -1;
      return index > 0 ? Number(values?.split(" ")[index] ?? 0) : 0;
    };
    total.tcpRetransmits += value("Tcp", "RetransSegs");
    total.udpReceiveBufferErrors += value("Udp", "RcvbufErrors");
  }
  return total;
}
