// The tunnel between the VPS and the uplink, set up the way production has it: the uplink's
// side by the edge controller's own connector code (`bringUpWireGuard`, `applyUplinkRules`:
// each route's tunnel port DNATed to the backend and masqueraded), the VPS's side directly
// with `wg set` (what enrollment's ktube-wireguard unit does; no sshd in the bench). Each end
// gets kernel WireGuard when the module exists, else wireguard-go.
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { applyUplinkRules } from "@ktube/edge-controller/connector/nftables";
import { bringUpWireGuard, latestHandshake } from "@ktube/edge-controller/connector/wireguard";
import { generateWireGuardKeyPair } from "@ktube/edge-controller/wireguard-keys";
import { ADDRESSES, execIn, findPid, log, startIn, type Topology } from "./topology.ts";

export const WIREGUARD_PORT = 51820;
/** The MTU the controller gives both ends (1500 on the link minus WireGuard's 80 bytes). */
export const WIREGUARD_MTU = 1420;
/** The uplinks' readiness port, which Envoy's health checks reach over the tunnel. */
export const READY_PORT = 40500;

export type WireGuardKind = "kernel" | "wireguard-go";

export interface Tunnel {
  vps: WireGuardKind;
  uplink: WireGuardKind;
  /** The processes doing the tunnel's work in user space (none for kernel WireGuard). */
  pids: { vps?: number; uplink?: number };
  /** The uplink's readiness server (on its tunnel address). */
  ready: ChildProcess;
}

export interface TunnelRoute {
  tunnelPort: number;
  target: { ip: string; port: number };
}

export async function startTunnel(topology: Topology, scratch: string, routes: readonly TunnelRoute[]): Promise<Tunnel> {
  const vpsKeys = generateWireGuardKeyPair();
  const uplinkKeys = generateWireGuardKeyPair();
  const vpsKeyFile = join(scratch, "vps.key");
  const uplinkKeyFile = join(scratch, "uplink.key");
  writeFileSync(vpsKeyFile, `${vpsKeys.privateKey}\n`, { mode: 0o600 });
  writeFileSync(uplinkKeyFile, `${uplinkKeys.privateKey}\n`, { mode: 0o600 });

  // The VPS's end: listens, knows the uplink only by its key and tunnel address.
  const inVps = execIn(topology.ns.vps);
  const iface = topology.wg.vps;
  let vps: WireGuardKind = "kernel";
  let vpsDaemon: ChildProcess | undefined;
  try {
    await inVps("ip", ["link", "add", "dev", iface, "type", "wireguard"]);
  } catch {
    vps = "wireguard-go";
    vpsDaemon = spawn("ip", ["netns", "exec", topology.ns.vps, "wireguard-go", "-f", iface], { stdio: "ignore" });
    const deadline = Date.now() + 10_000;
    while (!(await inVps("ip", ["link", "show", "dev", iface]).then(() => true, () => false))) {
      if (vpsDaemon.exitCode !== null || Date.now() > deadline) throw new Error(`wireguard-go ${iface} did not create its interface in ${topology.ns.vps}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  await inVps("wg", ["set", iface, "listen-port", String(WIREGUARD_PORT), "private-key", vpsKeyFile, "peer", uplinkKeys.publicKey, "allowed-ips", `${ADDRESSES.uplinkTunnel}/32`]);
  await inVps("ip", ["address", "add", `${ADDRESSES.vpsTunnel}/24`, "dev", iface]);
  await inVps("ip", ["link", "set", "dev", iface, "mtu", String(WIREGUARD_MTU), "up"]);
  // Only for the bench's "tunnel only" path: the client's own connections into the tunnel
  // leave the VPS from its tunnel address, the one source the uplink's peer entry accepts.
  // (In production only Envoy, on the VPS itself, sends into the tunnel.)
  await inVps("nft", ["-f", "-"], [
    "table ip ktube_bench {",
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    `    oifname "${iface}" ip saddr ${ADDRESSES.client} masquerade`,
    "  }",
    "}",
    "",
  ].join("\n"));

  // The uplink's end, by the connector's code: dials out to the VPS over the "internet" link.
  const inUplink = execIn(topology.ns.uplink);
  const kind = await bringUpWireGuard(
    {
      iface: topology.wg.uplink,
      privateKeyFile: uplinkKeyFile,
      address: `${ADDRESSES.uplinkTunnel}/24`,
      mtu: WIREGUARD_MTU,
      vps: { publicKey: vpsKeys.publicKey, endpoint: `${ADDRESSES.vpsToInternet}:${WIREGUARD_PORT}`, tunnelAddress: ADDRESSES.vpsTunnel },
      persistentKeepalive: 25,
    },
    inUplink,
  );
  const uplink: WireGuardKind = kind === "kernel" ? "kernel" : "wireguard-go";
  await applyUplinkRules(
    { iface: topology.wg.uplink, readyPort: READY_PORT, rules: routes.map((route) => ({ protocol: "TCP" as const, ...route })) },
    ["ip", "netns", "exec", topology.ns.uplink, "nft"],
  );
  const deadline = Date.now() + 20_000;
  while (!(await latestHandshake(topology.wg.uplink, inUplink))) {
    if (Date.now() > deadline) throw new Error("no WireGuard handshake between the uplink and the VPS within 20 s");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  log(`WireGuard up: VPS ${vps}, uplink ${uplink}, handshake done`);
  const ready = await startIn(topology.ns.uplink, process.execPath, ["--disable-warning=ExperimentalWarning", join(import.meta.dirname, "backend.ts"), "ready", ADDRESSES.uplinkTunnel, String(READY_PORT)], "listening");
  const vpsPid = vpsDaemon?.pid !== undefined ? findPid(topology.ns.vps, ["wireguard-go", "-f", iface]) : undefined;
  const uplinkPid = uplink === "wireguard-go" ? findPid(topology.ns.uplink, ["wireguard-go", topology.wg.uplink]) : undefined;
  return { vps, uplink, pids: { ...(vpsPid ? { vps: vpsPid } : {}), ...(uplinkPid ? { uplink: uplinkPid } : {}) }, ready };
}
