// The uplink dials WireGuard out to an enrolled VPS (real sshd, real enrollment, real
// wireguard-go on both ends) and the VPS reaches the uplink's tunnel address through it,
// the way Envoy's health checks and routes will.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually } from "@ktube/testenv";
import { bringUpWireGuard, latestHandshake, removeWireGuard, type Exec } from "../../src/connector/wireguard.ts";
import { enrollVps } from "../../src/provider/enroll.ts";
import { renderEnvoyConfig } from "../../src/provider/envoy/render.ts";
import { connectVps } from "../../src/provider/ssh.ts";
import { ENVOY_BOOTSTRAP, WIREGUARD_INTERFACE } from "../../src/provider/vps-files.ts";
import { generateWireGuardKeyPair } from "../../src/provider/wireguard-keys.ts";
import { startEdgeVps, type EdgeVps } from "../provider/edge-vps.ts";

const id = randomBytes(2).toString("hex");
const UPLINK_NS = `ktup-${id}`;
const IFACE = `ktwu${id}`; // unique: wireguard-go's control sockets are shared by every namespace
const LINK = { vps: "10.216.0.1", uplink: "10.216.0.2" }; // a private link standing in for the internet

const inUplink: Exec = (command, args, input) =>
  new Promise((resolve, reject) => {
    const child = spawn("ip", ["netns", "exec", UPLINK_NS, command, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} ${args.join(" ")}: ${err.trim()}`))));
    child.stdin.end(input ?? "");
  });

let edge: EdgeVps;
const scratch = mkdtempSync(join(tmpdir(), "ktube-uplink-wg-"));
let readyServer: ChildProcess | undefined;
const vpsKeys = generateWireGuardKeyPair();
const uplinkKeys = generateWireGuardKeyPair();

beforeAll(async () => {
  for (const tool of ["wg", "wireguard-go"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    } catch {
      throw new Error(`this test needs ${tool}: apt-get install -y wireguard-tools wireguard-go`);
    }
  }
  edge = await startEdgeVps();
  const session = await connectVps(edge.target());
  try {
    const bootstrap = renderEnvoyConfig({
      nodeId: "team/edge",
      adminPort: 9901,
      uplinks: ["10.200.0.2"],
      healthCheck: { intervalSeconds: 5, timeoutSeconds: 2, healthyThreshold: 2, unhealthyThreshold: 2, port: 40500 },
      routes: [],
      secrets: [],
    }).files.find((file) => file.path === ENVOY_BOOTSTRAP)!.content;
    await enrollVps(session, {
      owner: "team/edge uid-wg",
      envoy: { url: edge.envoy.url, sha256: edge.envoy.sha256 },
      wireguard: { privateKey: vpsKeys.privateKey, listenPort: 51821, address: "10.200.0.1/24", mtu: 1420, peers: [{ publicKey: uplinkKeys.publicKey, allowedIp: "10.200.0.2/32" }] },
      firewall: { sshPort: edge.vps.port, wireguardPort: 51821, listenPorts: [{ from: 443 }] },
      bootstrap,
    });
  } finally {
    session.close();
  }
  execFileSync("sh", [
    "-c",
    [
      `ip netns add ${UPLINK_NS}`,
      `ip link add ktl${id}v netns ${edge.vps.namespace} type veth peer name ktl${id}u netns ${UPLINK_NS}`,
      `ip -n ${edge.vps.namespace} addr add ${LINK.vps}/30 dev ktl${id}v && ip -n ${edge.vps.namespace} link set ktl${id}v up`,
      `ip -n ${UPLINK_NS} addr add ${LINK.uplink}/30 dev ktl${id}u && ip -n ${UPLINK_NS} link set ktl${id}u up && ip -n ${UPLINK_NS} link set lo up`,
    ].join(" && "),
  ]);
}, 120_000);

afterAll(async () => {
  readyServer?.kill("SIGKILL");
  await removeWireGuard(IFACE, inUplink).catch(() => undefined);
  try {
    execFileSync("sh", ["-c", `ip netns pids ${UPLINK_NS} | xargs -r kill -9; ip netns del ${UPLINK_NS}`]);
  } catch {
    // already gone
  }
  await edge?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

describe("the uplink's WireGuard", () => {
  it("dials the enrolled VPS, completes a handshake, and carries the VPS's requests to the uplink's tunnel address", async () => {
    const keyFile = join(scratch, "uplink-0.key");
    writeFileSync(keyFile, `${uplinkKeys.privateKey}\n`, { mode: 0o600 });
    const settings = {
      iface: IFACE,
      privateKeyFile: keyFile,
      address: "10.200.0.2/24",
      mtu: 1420,
      vps: { publicKey: vpsKeys.publicKey, endpoint: `${LINK.vps}:51821`, tunnelAddress: "10.200.0.1" },
      persistentKeepalive: 1,
    };
    expect(await bringUpWireGuard(settings, inUplink)).toMatch(/^(kernel|wireguard-go)$/);
    // Idempotent: a second call reuses the interface.
    expect(await bringUpWireGuard(settings, inUplink)).toBe("existing");

    const handshake = await eventually(async () => {
      const at = await latestHandshake(IFACE, inUplink);
      expect(at).toBeDefined();
      return at!;
    }, 20_000);
    expect(Math.abs(Date.now() - handshake.getTime())).toBeLessThan(60_000);
    expect((await edge.vps.exec(`wg show ${WIREGUARD_INTERFACE} latest-handshakes`)).stdout).toContain(uplinkKeys.publicKey);

    // A readiness endpoint on the uplink's tunnel address, fetched from the VPS through the tunnel.
    let listening!: () => void;
    const up = new Promise<void>((resolve) => (listening = resolve));
    readyServer = spawn("ip", ["netns", "exec", UPLINK_NS, process.execPath, "-e", `require("http").createServer((q, r) => r.end("ready")).listen(40500, "10.200.0.2", () => console.log("up"))`], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    readyServer.stdout!.on("data", (d: Buffer) => d.toString().includes("up") && listening());
    await up;
    const fetched = await edge.vps.exec("curl -fsS --max-time 5 http://10.200.0.2:40500/ready");
    expect(fetched).toMatchObject({ code: 0, stdout: "ready" });
  });
});
