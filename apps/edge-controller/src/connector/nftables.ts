// The uplink's packet rules: each route's tunnel port, arriving over WireGuard, is DNATed to
// the route's target (a Service's cluster IP and port, or an allowed raw address) and
// masqueraded, so replies come back through this pod. Nothing else from the tunnel gets in:
// the readiness port is the only local port it may reach, and only DNATed flows are
// forwarded. The table is replaced in one `nft -f` transaction, and NAT decisions live in
// conntrack, so established flows of unchanged (and even removed) routes keep going while
// the rules change.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export const UPLINK_TABLE = "ktube_uplink";

export interface ForwardRule {
  protocol: "TCP" | "UDP";
  /** The port on this uplink's tunnel address (the VPS's Envoy sends the route here). */
  tunnelPort: number;
  /** Where it goes in the cluster. */
  target: { ip: string; port: number };
}

export interface UplinkRules {
  /** The WireGuard interface. */
  iface: string;
  /** The readiness port Envoy's health checks reach over the tunnel. */
  readyPort: number;
  rules: readonly ForwardRule[];
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const IFACE = /^[A-Za-z0-9_.-]{1,15}$/;

/** The whole table as `nft -f` input; throws on anything that is not a valid interface, IPv4 address or port. */
export function renderUplinkRules(spec: UplinkRules): string {
  if (!IFACE.test(spec.iface)) throw new Error(`not an interface name: ${spec.iface}`);
  const port = (p: number): number => {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`not a port: ${p}`);
    return p;
  };
  const iif = `iifname "${spec.iface}"`;
  const sorted = [...spec.rules].sort((a, b) => a.tunnelPort - b.tunnelPort || a.protocol.localeCompare(b.protocol));
  const dnat = sorted.map((rule) => {
    if (!IPV4.test(rule.target.ip)) throw new Error(`not an IPv4 address: ${rule.target.ip}`);
    return `    ${iif} ${rule.protocol.toLowerCase()} dport ${port(rule.tunnelPort)} dnat to ${rule.target.ip}:${port(rule.target.port)}`;
  });
  return [
    `table ip ${UPLINK_TABLE}`,
    `delete table ip ${UPLINK_TABLE}`,
    `table ip ${UPLINK_TABLE} {`,
    "  chain prerouting {",
    "    type nat hook prerouting priority dstnat; policy accept;",
    ...dnat,
    "  }",
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    `    ${iif} ct status dnat masquerade`,
    "  }",
    "  chain forward {",
    "    type filter hook forward priority filter; policy accept;",
    `    ${iif} ct status dnat accept`,
    `    ${iif} drop`,
    "  }",
    "  chain input {",
    "    type filter hook input priority filter; policy accept;",
    `    ${iif} ct state established,related accept`,
    `    ${iif} tcp dport ${port(spec.readyPort)} accept`,
    `    ${iif} drop`,
    "  }",
    "}",
    "",
  ].join("\n");
}

/** Replaces the table in one transaction. `nft` is the command (tests prefix `ip netns exec <ns>`). */
export async function applyUplinkRules(spec: UplinkRules, nft: readonly string[] = ["nft"]): Promise<void> {
  const ruleset = renderUplinkRules(spec);
  const [command, ...args] = nft;
  await new Promise<void>((resolve, reject) => {
    const child = execFile(command!, [...args, "-f", "-"], (error, _stdout, stderr) => {
      if (error) reject(new Error(`nft refused the uplink rules: ${(stderr || error.message).trim()}`));
      else resolve();
    });
    child.stdin?.end(ruleset);
  });
}

/** Removes the table (on shutdown). */
export async function removeUplinkRules(nft: readonly string[] = ["nft"]): Promise<void> {
  const [command, ...args] = nft;
  await run(command!, [...args, "delete", "table", "ip", UPLINK_TABLE]).catch(() => undefined);
}
