// Enrollment against a real OpenSSH server in its own network namespace and file system
// (testenv's VPS), with fake-envoy installed as "Envoy" from an HTTPS URL pinned by SHA-256.
// Nothing runs systemd here: ktube-service's own fallback runs the units (vps-files.ts).
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { spawn } from "node:child_process";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { ProviderError } from "@ktube/provider-kit";
import { eventually } from "@ktube/testenv";
import { enrollVps, teardownVps, type VpsDesiredState } from "../../src/provider/enroll.ts";
import { renderEnvoyConfig } from "../../src/provider/envoy/render.ts";
import { connectVps, type VpsSession } from "../../src/provider/ssh.ts";
import { ENVOY_BOOTSTRAP, ENVOY_USER, FIREWALL_FILE, WIREGUARD_INTERFACE } from "../../src/provider/vps-files.ts";
import { generateWireGuardKeyPair } from "../../src/provider/wireguard-keys.ts";
import { envoyProcesses, startEdgeVps, type EdgeVps } from "./edge-vps.ts";

const ADMIN_PORT = 9901;
const OWNER = "team/edge uid-1";

function bootstrap(): string {
  const rendered = renderEnvoyConfig({
    nodeId: "team/edge",
    adminPort: ADMIN_PORT,
    uplinks: ["10.200.0.2"],
    healthCheck: { intervalSeconds: 5, timeoutSeconds: 2, healthyThreshold: 2, unhealthyThreshold: 2, port: 40500 },
    routes: [],
    secrets: [],
  });
  return rendered.files.find((file) => file.path === ENVOY_BOOTSTRAP)!.content;
}

function desiredFor(edge: EdgeVps, overrides: Partial<VpsDesiredState> = {}): VpsDesiredState {
  return {
    owner: OWNER,
    envoy: { url: edge.envoy.url, sha256: edge.envoy.sha256 },
    wireguard: {
      privateKey: generateWireGuardKeyPair().privateKey,
      listenPort: 51821,
      address: "10.200.0.1/24",
      mtu: 1420,
      peers: [{ publicKey: generateWireGuardKeyPair().publicKey, allowedIp: "10.200.0.2/32" }],
    },
    firewall: { sshPort: edge.vps.port, wireguardPort: 51821, listenPorts: [{ from: 80 }, { from: 443 }, { from: 9000, to: 9010 }] },
    bootstrap: bootstrap(),
    ...overrides,
  };
}

const CAP_NET_BIND_SERVICE = (1n << 10n).toString(16).padStart(16, "0");

async function adminStats(session: VpsSession): Promise<string> {
  return (await session.exec(`curl -fsS http://127.0.0.1:${ADMIN_PORT}/stats`)).stdout;
}

function tcpConnects(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(timeoutMs, () => (socket.destroy(), resolve(false)));
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

describe("enrollVps on a fresh VPS", () => {
  let edge: EdgeVps;
  let session: VpsSession;
  let desired: VpsDesiredState;

  beforeAll(async () => {
    edge = await startEdgeVps();
    session = await connectVps(edge.target());
    desired = desiredFor(edge);
  });
  afterAll(async () => {
    session?.close();
    await edge?.stop();
  });

  it("installs the firewall, WireGuard and Envoy, running Envoy unprivileged with only CAP_NET_BIND_SERVICE", async () => {
    const result = await enrollVps(session, desired);
    expect(result.systemd).toBe(false);
    expect(result.actions).toEqual(
      expect.arrayContaining(["claimed the VPS", "installed Envoy", "started ktube-firewall", "started ktube-wireguard", "started ktube-envoy"]),
    );

    const nft = await edge.vps.exec("nft list table inet ktube");
    expect(nft.stdout).toContain("policy drop;");
    expect(nft.stdout).toContain(`tcp dport ${edge.vps.port} accept`);
    expect(nft.stdout).toContain("udp dport 51821 accept");
    expect(nft.stdout).toContain("tcp dport { 80, 443, 9000-9010 } accept");

    const wg = await edge.vps.exec(`wg show ${WIREGUARD_INTERFACE} listen-port; wg show ${WIREGUARD_INTERFACE} allowed-ips; ip -4 -o addr show dev ${WIREGUARD_INTERFACE}`);
    expect(wg.stdout).toContain("51821\n");
    expect(wg.stdout).toContain(`${desired.wireguard.peers[0]!.publicKey}\t10.200.0.2/32`);
    expect(wg.stdout).toContain("inet 10.200.0.1/24");

    const uid = Number((await edge.vps.exec(`id -u ${ENVOY_USER}`)).stdout.trim());
    const envoys = await envoyProcesses(edge);
    expect(envoys).toHaveLength(1);
    expect(envoys[0]).toMatchObject({ uid, capEff: CAP_NET_BIND_SERVICE, capAmb: CAP_NET_BIND_SERVICE });
    expect(uid).not.toBe(0);

    // The admin listens on loopback only, and it is Envoy's (fake-envoy here) answering.
    const listening = await edge.vps.exec(`ss -Htln 'sport = :${ADMIN_PORT}'`);
    expect(listening.stdout.trim().split(/\s+/)[3]).toBe(`127.0.0.1:${ADMIN_PORT}`);
    expect(await adminStats(session)).toContain("listener_manager.lds.update_success");

    // The units are what systemd would run on a VPS booted with it (this one runs them through the wrapper's fallback).
    const verify = await edge.vps.exec("command -v systemd-analyze >/dev/null || { echo 'needs systemd-analyze: apt-get install -y systemd' >&2; exit 127; }; systemd-analyze verify /etc/ktube/units/*.service");
    expect(verify).toMatchObject({ code: 0, stderr: "" });

    // The private key is only readable by root.
    expect((await edge.vps.exec("stat -c '%a %U' /etc/ktube/wireguard.conf")).stdout.trim()).toBe("600 root");
  });

  it("lets in only the listen ports, WireGuard and SSH", async () => {
    const node = process.execPath;
    await edge.vps.exec(
      `setsid -f ${node} -e 'for (const p of [7000, 9005]) require("net").createServer((s) => s.end("hi")).listen(p)' >/dev/null 2>&1 </dev/null`,
    );
    let open = false;
    for (const deadline = Date.now() + 15_000; !open && Date.now() < deadline; ) {
      open = await tcpConnects(edge.vps.address, 9005, 500);
      if (!open) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(open).toBe(true); // a listen port: reachable, so the listener is up
    expect(await tcpConnects(edge.vps.address, 7000, 1000)).toBe(false); // same process, not a listen port: dropped
  });

  it("changes nothing on a second run", async () => {
    expect(await enrollVps(session, desired)).toEqual({ actions: [], systemd: false });
    expect(await envoyProcesses(edge)).toHaveLength(1);
  });

  it("puts back a file edited on the VPS and restarts what read it; starts an Envoy that died", async () => {
    // An edited file alone (the table still there) restarts the firewall from the file as KTube wrote it.
    await edge.vps.exec(`sed -i 's/policy drop/policy accept/' ${FIREWALL_FILE}`);
    expect((await enrollVps(session, desired)).actions).toEqual([`rewrote ${FIREWALL_FILE}`, "restarted ktube-firewall"]);
    expect((await edge.vps.exec("nft list table inet ktube")).stdout).toContain("policy drop;");

    await edge.vps.exec(`echo '# edited by hand' >> ${FIREWALL_FILE}; nft delete table inet ktube`);
    const [envoy] = await envoyProcesses(edge);
    process.kill(envoy!.pid, "SIGKILL");
    await eventually(async () => expect(await envoyProcesses(edge)).toHaveLength(0));
    const result = await enrollVps(session, desired);
    // The deleted table makes the firewall "not running": started again, from the file as KTube wrote it.
    expect(result.actions).toEqual([`rewrote ${FIREWALL_FILE}`, "started ktube-firewall", "started ktube-envoy"]);
    expect((await edge.vps.exec("nft list table inet ktube")).code).toBe(0);
    const envoys = await envoyProcesses(edge);
    expect(envoys).toHaveLength(1);
    expect(envoys[0]!.pid).not.toBe(envoy!.pid);
  });

  it("reloads WireGuard peers in place when the uplinks change, keeping the interface", async () => {
    const before = (await edge.vps.exec(`cat /sys/class/net/${WIREGUARD_INTERFACE}/ifindex`)).stdout;
    const peer = generateWireGuardKeyPair().publicKey;
    desired = { ...desired, wireguard: { ...desired.wireguard, peers: [...desired.wireguard.peers, { publicKey: peer, allowedIp: "10.200.0.3/32" }] } };
    const result = await enrollVps(session, desired);
    expect(result.actions).toEqual(["rewrote /etc/ktube/wireguard.conf", "reloaded WireGuard peers"]);
    expect((await edge.vps.exec(`wg show ${WIREGUARD_INTERFACE} allowed-ips`)).stdout).toContain(`${peer}\t10.200.0.3/32`);
    expect((await edge.vps.exec(`cat /sys/class/net/${WIREGUARD_INTERFACE}/ifindex`)).stdout).toBe(before);
  });

  it("refuses a VPS that another Tunnel enrolled, and teardown for that Tunnel leaves it alone", async () => {
    const other = { ...desired, owner: "other/edge uid-2" };
    await expect(enrollVps(session, other)).rejects.toMatchObject({ reason: "VpsInUse", message: expect.stringContaining(OWNER) });
    expect(await teardownVps(session, "other/edge uid-2")).toEqual({ removed: false, owner: OWNER });
    expect(await envoyProcesses(edge)).toHaveLength(1);
  });

  it("teardown stops everything and removes every file, user and rule KTube made", async () => {
    expect(await teardownVps(session, OWNER)).toEqual({ removed: true, owner: OWNER });
    expect(await envoyProcesses(edge)).toHaveLength(0);
    const left = await edge.vps.exec(
      `ls -d /etc/ktube /usr/local/lib/ktube /var/lib/ktube /var/log/ktube 2>/dev/null; id -u ${ENVOY_USER} 2>/dev/null; nft list table inet ktube 2>/dev/null; ip link show ${WIREGUARD_INTERFACE} 2>/dev/null; true`,
    );
    expect(left.stdout).toBe("");
    // Idempotent: nothing is ours any more.
    expect(await teardownVps(session, OWNER)).toEqual({ removed: false, owner: undefined });
  });
});

describe("enrollVps when things go wrong", () => {
  let edge: EdgeVps;

  beforeAll(async () => {
    edge = await startEdgeVps();
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it("refuses an Envoy binary whose SHA-256 is not the pinned one, and installs nothing", async () => {
    const session = await connectVps(edge.target());
    try {
      const tampered = edge.offer(Buffer.concat([edge.envoyExecutable, Buffer.from("\n# tampered\n")]));
      const error = await enrollVps(session, desiredFor(edge, { envoy: { url: tampered.url, sha256: edge.envoy.sha256 } })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProviderError);
      expect(error).toMatchObject({ reason: "EnvoyChecksumMismatch", terminal: true });
      expect((error as Error).message).toContain(tampered.sha256);
      expect((await edge.vps.exec("ls -A /usr/local/lib/ktube")).stdout).toBe("");
      expect(await envoyProcesses(edge)).toHaveLength(0);
    } finally {
      session.close();
    }
  });

  it("converges after the controller is killed in the middle of downloading Envoy: one Envoy, no leftovers", async () => {
    const slow = edge.offer(edge.envoyExecutable, { delayMs: 60_000 });
    const desired = desiredFor(edge, { envoy: { url: slow.url, sha256: slow.sha256 } });
    const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", fileURLToPath(new URL("./enroll-child.ts", import.meta.url))], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.stdin.end(JSON.stringify({ target: edge.target(), desired }));
    await slow.requested; // the VPS is fetching Envoy for the killed run
    child.kill("SIGKILL");
    await exited;
    expect((await edge.vps.exec("ls -d /usr/local/lib/ktube/.download.* 2>/dev/null | wc -l")).stdout.trim()).toBe("1");

    const session = await connectVps(edge.target());
    try {
      const result = await enrollVps(session, { ...desired, envoy: { url: edge.envoy.url, sha256: edge.envoy.sha256 } });
      expect(result.actions).toContain("installed Envoy");
      expect(result.actions).not.toContain("claimed the VPS"); // the killed run had claimed it
      expect(await envoyProcesses(edge)).toHaveLength(1);
      expect((await edge.vps.exec("ls -d /usr/local/lib/ktube/.download.* 2>/dev/null | wc -l")).stdout.trim()).toBe("0");
      expect(await enrollVps(session, { ...desired, envoy: { url: edge.envoy.url, sha256: edge.envoy.sha256 } })).toEqual({ actions: [], systemd: false });
    } finally {
      session.close();
    }
  });
});
