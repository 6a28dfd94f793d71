// The uplink's nftables rules with real packets: a client namespace stands in for the VPS
// side of the tunnel (its link into the uplink namespace carries the WireGuard interface's
// name), a backend namespace for the cluster. Each route's tunnel port reaches its target,
// nothing else from the tunnel does, and replacing the rules keeps established flows.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { applyUplinkRules, renderUplinkRules, type ForwardRule } from "../../src/connector/nftables.ts";

const id = randomBytes(2).toString("hex");
const NS = { client: `ktuc-${id}`, uplink: `ktuu-${id}`, backend: `ktub-${id}` };
const IFACE = `ktwg${id}`; // the uplink's side of the client link: named like its WireGuard interface
const net = randomInt(256);
const ADDR = { client: `10.215.${net}.1`, uplink: `10.215.${net}.2`, uplinkToBackend: `10.215.${net}.5`, backend: `10.215.${net}.6` };
const READY_PORT = 40500;

function sh(command: string): string {
  return execFileSync("sh", ["-c", command], { encoding: "utf8" });
}

function requireTools(): void {
  for (const [tool, pkg] of [["ip", "iproute2"], ["nft", "nftables"]]) {
    try {
      sh(`command -v ${tool} || test -x /usr/sbin/${tool}`);
    } catch {
      throw new Error(`this test needs ${tool}: apt-get install -y ${pkg} (and root, for network namespaces)`);
    }
  }
}

/** Runs a Node script in a namespace; resolves with its stdout once it exits. */
function inNamespace(ns: string, script: string, onLine?: (line: string) => void): { child: ChildProcess; done: Promise<string> } {
  const child = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n").filter(Boolean)) onLine?.(line);
    out += chunk.toString();
  });
  const done = new Promise<string>((resolve) => child.once("exit", () => resolve(out)));
  return { child, done };
}

/** From the client: one TCP exchange, or "refused"/"timeout". */
async function tcpFromClient(host: string, port: number, timeoutMs = 1500): Promise<string> {
  const { done } = inNamespace(
    NS.client,
    `const s = require("net").connect(${port}, "${host}"); s.setTimeout(${timeoutMs}, () => { console.log("timeout"); process.exit(0); });
     s.on("error", (e) => { console.log(e.code === "ECONNREFUSED" ? "refused" : e.code); process.exit(0); });
     s.on("connect", () => s.write("hello")); s.on("data", (d) => { console.log(String(d)); process.exit(0); });`,
  );
  return (await done).trim();
}

async function udpFromClient(host: string, port: number): Promise<string> {
  const { done } = inNamespace(
    NS.client,
    `const s = require("dgram").createSocket("udp4"); setTimeout(() => { console.log("timeout"); process.exit(0); }, 1500);
     s.on("message", (m) => { console.log(String(m)); process.exit(0); }); s.send("ping", ${port}, "${host}");`,
  );
  return (await done).trim();
}

let backend: ChildProcess | undefined;

beforeAll(async () => {
  requireTools();
  if (process.getuid?.() !== 0) throw new Error("this test needs root (network namespaces and nftables)");
  for (const ns of Object.values(NS)) sh(`ip netns add ${ns}`);
  sh(`ip link add ktc${id} netns ${NS.client} type veth peer name ${IFACE} netns ${NS.uplink}`);
  sh(`ip link add ktu${id} netns ${NS.uplink} type veth peer name ktb${id} netns ${NS.backend}`);
  sh(`ip -n ${NS.client} addr add ${ADDR.client}/30 dev ktc${id} && ip -n ${NS.client} link set ktc${id} up && ip -n ${NS.client} link set lo up`);
  sh(`ip -n ${NS.uplink} addr add ${ADDR.uplink}/30 dev ${IFACE} && ip -n ${NS.uplink} link set ${IFACE} up && ip -n ${NS.uplink} link set lo up`);
  sh(`ip -n ${NS.uplink} addr add ${ADDR.uplinkToBackend}/30 dev ktu${id} && ip -n ${NS.uplink} link set ktu${id} up`);
  sh(`ip -n ${NS.backend} addr add ${ADDR.backend}/30 dev ktb${id} && ip -n ${NS.backend} link set ktb${id} up && ip -n ${NS.backend} link set lo up`);
  // The client could reach the backend through the uplink (and the backend answer it) if the
  // uplink let it, as a cluster network would route: the rules must not let it.
  sh(`ip -n ${NS.client} route add ${ADDR.backend}/32 via ${ADDR.uplink}`);
  sh(`ip -n ${NS.backend} route add default via ${ADDR.uplinkToBackend}`);
  sh(`ip netns exec ${NS.uplink} sysctl -qw net.ipv4.ip_forward=1`);

  // The backend: TCP echo on 8080 and 8081 naming itself and who it sees, UDP echo on 5353.
  let ready!: () => void;
  const listening = new Promise<void>((resolve) => (ready = resolve));
  backend = inNamespace(
    NS.backend,
    `const net = require("net"); let up = 0;
     for (const port of [8080, 8081]) net.createServer((s) => s.on("data", (d) => s.write(port + " " + s.remoteAddress + " " + d))).listen(port, "${ADDR.backend}", () => ++up === 3 && console.log("ready"));
     const u = require("dgram").createSocket("udp4"); u.on("message", (m, r) => u.send("5353 " + r.address + " " + m, r.port, r.address)); u.bind(5353, "${ADDR.backend}", () => ++up === 3 && console.log("ready"));`,
    (line) => line === "ready" && ready(),
  ).child;
  await listening;
}, 30_000);

afterAll(() => {
  backend?.kill("SIGKILL");
  for (const ns of Object.values(NS)) {
    try {
      sh(`ip netns pids ${ns} | xargs -r kill -9; ip netns del ${ns}`);
    } catch {
      // already gone
    }
  }
});

/** The handle of the forward chain's final drop rule. */
function forwardDropHandle(): string {
  const listing = execFileSync("ip", ["netns", "exec", NS.uplink, "nft", "-a", "list", "chain", "ip", "ktube_uplink", "forward"], { encoding: "utf8" });
  const handle = /iifname "[^"]+" drop # handle (\d+)/.exec(listing)?.[1];
  if (!handle) throw new Error(`no drop rule in:\n${listing}`);
  return handle;
}

/** Applies the rules inside the uplink namespace, as the uplink does in its pod. */
const applyInUplink = (rules: ForwardRule[]): Promise<void> =>
  applyUplinkRules({ iface: IFACE, readyPort: READY_PORT, rules }, ["ip", "netns", "exec", NS.uplink, "nft"]);

describe("the uplink's nftables rules", () => {
  it("renders one atomic replacement of KTube's own table, and refuses what is not an address or a port", () => {
    const text = renderUplinkRules({ iface: "wg0", readyPort: 40500, rules: [{ protocol: "TCP", tunnelPort: 20000, target: { ip: "10.96.0.10", port: 80 } }] });
    expect(text.split("\n").slice(0, 3)).toEqual(["table ip ktube_uplink", "delete table ip ktube_uplink", "table ip ktube_uplink {"]);
    expect(text).toContain('iifname "wg0" tcp dport 20000 dnat to 10.96.0.10:80');
    expect(() => renderUplinkRules({ iface: "wg0", readyPort: 40500, rules: [{ protocol: "TCP", tunnelPort: 20000, target: { ip: "10.96.0.10; flush ruleset", port: 80 } }] })).toThrow(
      "not an IPv4 address",
    );
    expect(() => renderUplinkRules({ iface: 'wg0" accept', readyPort: 40500, rules: [] })).toThrow("not an interface name");
    expect(() => renderUplinkRules({ iface: "wg0", readyPort: 40500, rules: [{ protocol: "UDP", tunnelPort: 70000, target: { ip: "10.0.0.1", port: 53 } }] })).toThrow("not a port");
  });

  it("sends each tunnel port to its target, masqueraded, and lets nothing else from the tunnel through", async () => {
    await applyInUplink([
      { protocol: "TCP", tunnelPort: 20000, target: { ip: ADDR.backend, port: 8080 } },
      { protocol: "UDP", tunnelPort: 20001, target: { ip: ADDR.backend, port: 5353 } },
    ]);
    // The backend sees the uplink's address, so its replies go back through the uplink.
    expect(await tcpFromClient(ADDR.uplink, 20000)).toBe(`8080 ${ADDR.uplinkToBackend} hello`);
    expect(await udpFromClient(ADDR.uplink, 20001)).toBe(`5353 ${ADDR.uplinkToBackend} ping`);
    // The backend itself is not reachable from the tunnel, although routes and forwarding would carry it...
    expect(await tcpFromClient(ADDR.backend, 8080)).toBe("timeout");
    execFileSync("ip", ["netns", "exec", NS.uplink, "nft", "delete", "rule", "ip", "ktube_uplink", "forward", "handle", forwardDropHandle()]);
    expect(await tcpFromClient(ADDR.backend, 8080)).toBe(`8080 ${ADDR.client} hello`); // (proof: without the drop rule it is)
    await applyInUplink([
      { protocol: "TCP", tunnelPort: 20000, target: { ip: ADDR.backend, port: 8080 } },
      { protocol: "UDP", tunnelPort: 20001, target: { ip: ADDR.backend, port: 5353 } },
    ]);
    // ...and neither is a port on the uplink that is not a route.
    expect(await tcpFromClient(ADDR.uplink, 20005)).toBe("timeout");
  });

  it("changes routes in place: an established flow keeps going while its route and others are replaced", async () => {
    await applyInUplink([{ protocol: "TCP", tunnelPort: 20000, target: { ip: ADDR.backend, port: 8080 } }]);
    let connected!: () => void;
    const isConnected = new Promise<void>((resolve) => (connected = resolve));
    let echoes = 0;
    const seen = new Promise<void>((resolve) => {
      const long = inNamespace(
        NS.client,
        `const s = require("net").connect(20000, "${ADDR.uplink}"); let n = 0;
         s.on("connect", () => { console.log("connected"); s.write("1"); });
         s.on("data", () => { console.log("echo " + ++n); if (n < 30) setTimeout(() => s.write(String(n)), 50); else { console.log("done"); s.end(); process.exit(0); } });
         s.on("error", (e) => { console.log("broken " + e.code); process.exit(0); });
         setTimeout(() => { console.log("stalled"); process.exit(0); }, 15000);`,
        (line) => {
          if (line === "connected") connected();
          if (line.startsWith("echo ")) echoes = Number(line.slice(5));
        },
      );
      void long.done.then((out) => {
        expect(out).toContain("done");
        expect(out).not.toContain("broken");
        resolve();
      });
    });
    await isConnected;
    // A second route added, then the first one removed, while the flow runs.
    await applyInUplink([
      { protocol: "TCP", tunnelPort: 20000, target: { ip: ADDR.backend, port: 8080 } },
      { protocol: "TCP", tunnelPort: 20002, target: { ip: ADDR.backend, port: 8081 } },
    ]);
    expect(await tcpFromClient(ADDR.uplink, 20002)).toBe(`8081 ${ADDR.uplinkToBackend} hello`);
    await applyInUplink([{ protocol: "TCP", tunnelPort: 20002, target: { ip: ADDR.backend, port: 8081 } }]);
    expect(await tcpFromClient(ADDR.uplink, 20000)).toBe("timeout"); // new connections to the removed route: gone
    await seen; // the established one finished all 30 exchanges
    expect(echoes).toBe(30);
  });
});

