// The uplink's side of the tunnel: a WireGuard interface dialling out to the VPS (kernel
// WireGuard where the module exists, else wireguard-go, the userspace implementation), and
// how fresh its handshake is, which is what the uplink's readiness reports.
import { spawn } from "node:child_process";

export interface UplinkWireGuard {
  iface: string;
  /** The file holding this uplink's private key (its mounted Secret): the key never appears on a command line. */
  privateKeyFile: string;
  /** This uplink's tunnel address with the network's prefix, e.g. 10.200.0.2/24. */
  address: string;
  mtu: number;
  vps: { publicKey: string; endpoint: string; tunnelAddress: string };
  persistentKeepalive: number;
}

/** How stale a handshake may be before the uplink stops reporting ready (WireGuard rekeys every 2 minutes). */
export const HANDSHAKE_FRESH_MS = 180_000;

/** Commands run through `exec` (tests prefix `ip netns exec <ns>`). */
export type Exec = (command: string, args: string[], input?: string) => Promise<string>;

/**
 * Runs a command and resolves with its output once it exits. Not `execFile`: that waits for
 * the output pipes to close, and wireguard-go's daemon (which outlives the command) inherits
 * them, so the output is taken as it stands shortly after the exit.
 */
export const localExec: Exec = (command, args, input) =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("error", (error) => reject(new Error(`${command} ${args.join(" ")}: ${error.message}`)));
    child.once("exit", (code, signal) => {
      const settle = (): void => (code === 0 ? resolve(stdout) : reject(new Error(`${command} ${args.join(" ")}: ${(stderr || `exit ${code ?? signal}`).trim()}`)));
      const grace = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        settle();
      }, 200);
      child.once("close", () => {
        clearTimeout(grace);
        settle();
      });
    });
    // A command that exits without reading its input must not fail the write.
    child.stdin.on("error", () => undefined);
    child.stdin.end(input ?? "");
  });

/** Creates (or reuses) the interface and sets key, peer, address and MTU; idempotent. */
export async function bringUpWireGuard(wg: UplinkWireGuard, exec: Exec = localExec): Promise<"kernel" | "wireguard-go" | "existing"> {
  let kind: "kernel" | "wireguard-go" | "existing" = "existing";
  const exists = await exec("ip", ["link", "show", "dev", wg.iface]).then(
    () => true,
    () => false,
  );
  if (!exists) {
    kind = await exec("ip", ["link", "add", "dev", wg.iface, "type", "wireguard"]).then(
      () => "kernel" as const,
      async () => {
        await exec("wireguard-go", [wg.iface]);
        return "wireguard-go" as const;
      },
    );
  }
  await exec("wg", ["set", wg.iface, "private-key", wg.privateKeyFile]);
  await exec("wg", [
    "set",
    wg.iface,
    "peer",
    wg.vps.publicKey,
    "endpoint",
    wg.vps.endpoint,
    "allowed-ips",
    `${wg.vps.tunnelAddress}/32`,
    "persistent-keepalive",
    String(wg.persistentKeepalive),
  ]);
  await exec("ip", ["address", "replace", wg.address, "dev", wg.iface]);
  await exec("ip", ["link", "set", "dev", wg.iface, "mtu", String(wg.mtu), "up"]);
  return kind;
}

/** When the peer last completed a handshake (undefined: never). */
export async function latestHandshake(iface: string, exec: Exec = localExec): Promise<Date | undefined> {
  const out = await exec("wg", ["show", iface, "latest-handshakes"]);
  const seconds = Math.max(0, ...out.split("\n").map((line) => Number(line.trim().split(/\s+/)[1] ?? 0)).filter(Number.isFinite));
  return seconds > 0 ? new Date(seconds * 1000) : undefined;
}

export async function removeWireGuard(iface: string, exec: Exec = localExec): Promise<void> {
  await exec("ip", ["link", "del", "dev", iface]).catch(() => undefined);
}
