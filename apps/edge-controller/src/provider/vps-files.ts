// The files KTube keeps on an enrolled VPS, rendered from the Tunnel: the service wrapper,
// the three units it drives, the WireGuard interface and the firewall. Everything lives
// below KTube's own paths (/etc/ktube, /usr/local/lib/ktube, /var/lib/ktube, /run/ktube,
// /var/log/ktube), so enrollment and teardown never touch a file KTube did not write.
//
// Services go through `ktube-service`, never `systemctl` directly: on a host booted with
// systemd (`/run/systemd/system` exists) it installs the unit and uses systemctl; on a host
// without a service manager (a container, the test VPS) it runs the unit's ExecStart itself
// with the same user and ambient capability (`setpriv`), a pid file in /run/ktube and a log
// in /var/log/ktube. There nothing restarts a service that dies or starts it after a reboot
// except the controller's periodic resync, which starts every unit that is not running.
import { ENVOY_CONFIG_DIR } from "./envoy/plan.ts";

export const KTUBE_LIB_DIR = "/usr/local/lib/ktube";
export const KTUBE_ETC_DIR = "/etc/ktube";
export const KTUBE_STATE_DIR = "/var/lib/ktube";
export const SERVICE_WRAPPER = `${KTUBE_LIB_DIR}/ktube-service`;
export const WIREGUARD_SCRIPT = `${KTUBE_LIB_DIR}/ktube-wireguard`;
export const ENVOY_BINARY = `${KTUBE_LIB_DIR}/envoy`;
export const UNIT_DIR = `${KTUBE_ETC_DIR}/units`;
export const OWNER_FILE = `${KTUBE_ETC_DIR}/owner`;
export const WIREGUARD_CONF = `${KTUBE_ETC_DIR}/wireguard.conf`;
export const WIREGUARD_ENV = `${KTUBE_ETC_DIR}/wireguard.env`;
export const FIREWALL_FILE = `${KTUBE_ETC_DIR}/firewall.nft`;
export const ENVOY_BOOTSTRAP = `${ENVOY_CONFIG_DIR}/bootstrap.json`;
/** The unprivileged user Envoy runs as. */
export const ENVOY_USER = "ktube-envoy";
/** The WireGuard interface on the VPS (one Tunnel per VPS: see OWNER_FILE). */
export const WIREGUARD_INTERFACE = "ktube0";
/** Seconds Envoy drains a replaced listener's connections before closing them. */
export const ENVOY_DRAIN_SECONDS = 60;

export const UNITS = ["ktube-firewall", "ktube-wireguard", "ktube-envoy"] as const;
export type UnitName = (typeof UNITS)[number];

/**
 * `ktube-service {install|start|stop|restart|status|uninstall|logs} <unit>`. In the
 * fallback it reads Type, ExecStart, ExecStop, User and AmbientCapabilities from the unit
 * file; ExecStart is split on spaces (KTube's units quote nothing).
 */
export const serviceWrapper = (): string => `#!/bin/sh
# ktube-service: runs KTube's units. Written by the KTube edge controller; do not edit (it is rewritten).
set -eu
cmd=\${1:-}; unit=\${2:-}
file=${UNIT_DIR}/$unit.service
run=/run/ktube; logs=/var/log/ktube
case "$cmd" in install|start|stop|restart|status|uninstall|logs) ;; *) echo "usage: $0 install|start|stop|restart|status|uninstall|logs <unit>" >&2; exit 2 ;; esac
case "$unit" in ktube-*) ;; *) echo "$0: not a KTube unit: $unit" >&2; exit 2 ;; esac

key() { sed -n "s/^$1=//p" "$file" | tail -n 1; }
# X-KTubeCheck (ignored by systemd): a command that fails when the unit no longer does its job.
check() { c=$(key X-KTubeCheck); [ -z "$c" ] || $c >/dev/null 2>&1; }

if [ -d /run/systemd/system ]; then
  case "$cmd" in
    install) install -m 0644 "$file" /etc/systemd/system/"$unit".service; systemctl daemon-reload; systemctl enable --quiet "$unit" ;;
    start) systemctl start "$unit" ;;
    stop) systemctl stop "$unit" || true ;;
    restart) systemctl restart "$unit" ;;
    status) systemctl is-active --quiet "$unit" && check ;;
    uninstall) systemctl disable --now --quiet "$unit" 2>/dev/null || true; rm -f /etc/systemd/system/"$unit".service; systemctl daemon-reload ;;
    logs) journalctl -u "$unit" -n "\${3:-50}" --no-pager -o cat ;;
  esac
  exit
fi

pidfile=$run/$unit.pid; done=$run/$unit.done; log=$logs/$unit.log
mkdir -p "$run" "$logs"
# Running, and not a zombie (where nothing reaps orphans, a killed service stays one).
alive() {
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile"); kill -0 "$pid" 2>/dev/null || return 1
  stat=$(cat /proc/"$pid"/stat 2>/dev/null) || return 1
  state=\${stat##*) }; [ "\${state%% *}" != Z ]
}
start() {
  if [ "$(key Type)" = oneshot ]; then
    [ -f "$done" ] && check && return 0
    # shellcheck disable=SC2046
    $(key ExecStart) >>"$log" 2>&1 && : >"$done"
    return
  fi
  alive && return 0
  user=$(key User); prefix=
  if [ -n "$user" ]; then
    prefix="setpriv --reuid=$user --regid=$user --init-groups"
    case "$(key AmbientCapabilities)" in *CAP_NET_BIND_SERVICE*) prefix="$prefix --inh-caps=+net_bind_service --ambient-caps=+net_bind_service" ;; esac
  fi
  # shellcheck disable=SC2086
  setsid -f sh -c 'echo $$ >"$0"; exec "$@"' "$pidfile" $prefix $(key ExecStart) >>"$log" 2>&1 </dev/null
  i=0; while [ ! -s "$pidfile" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  sleep 0.2; alive
}
stop() {
  if [ "$(key Type)" = oneshot ]; then
    stop_cmd=$(key ExecStop)
    if [ -n "$stop_cmd" ]; then $stop_cmd >>"$log" 2>&1 || true; fi
    rm -f "$done"; return 0
  fi
  alive || { rm -f "$pidfile"; return 0; }
  pid=$(cat "$pidfile"); kill "$pid" 2>/dev/null || true
  i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  kill -9 "$pid" 2>/dev/null || true; rm -f "$pidfile"
}
case "$cmd" in
  install) test -f "$file" ;;
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if [ "$(key Type)" = oneshot ]; then [ -f "$done" ] && check; else alive; fi ;;
  uninstall) stop ;;
  logs) tail -n "\${3:-50}" "$log" 2>/dev/null || true ;;
esac
`;

export interface WireGuardSettings {
  privateKey: string;
  listenPort: number;
  /** The VPS's address with the network's prefix length, e.g. 10.200.0.1/24. */
  address: string;
  mtu: number;
  peers: Array<{ publicKey: string; allowedIp: string }>;
}

/** `wg setconf` format; holds the VPS's private key, so it is written 0600. */
export const wireguardConf = (wg: WireGuardSettings): string =>
  [
    "[Interface]",
    `PrivateKey = ${wg.privateKey}`,
    `ListenPort = ${wg.listenPort}`,
    ...wg.peers.flatMap((peer) => ["", "[Peer]", `PublicKey = ${peer.publicKey}`, `AllowedIPs = ${peer.allowedIp}`]),
    "",
  ].join("\n");

export const wireguardEnv = (wg: WireGuardSettings): string => `IFACE=${WIREGUARD_INTERFACE}\nADDRESS=${wg.address}\nMTU=${wg.mtu}\n`;

/** Brings the interface up (kernel WireGuard where the module exists, else wireguard-go), reloads peers in place, or removes it. */
export const wireguardScript = (): string => `#!/bin/sh
# ktube-wireguard up|reload|down|check. Written by the KTube edge controller; do not edit.
set -eu
. ${WIREGUARD_ENV}
case "\${1:-}" in
  up)
    if ! ip link show dev "$IFACE" >/dev/null 2>&1; then
      ip link add dev "$IFACE" type wireguard 2>/dev/null || wireguard-go "$IFACE"
    fi
    wg setconf "$IFACE" ${WIREGUARD_CONF}
    ip address replace "$ADDRESS" dev "$IFACE"
    ip link set dev "$IFACE" mtu "$MTU" up ;;
  reload) wg syncconf "$IFACE" ${WIREGUARD_CONF} ;;
  down) ip link del dev "$IFACE" 2>/dev/null || true ;;
  check) wg show "$IFACE" listen-port >/dev/null 2>&1 ;;
  *) echo "usage: $0 up|reload|down|check" >&2; exit 2 ;;
esac
`;

export interface PortRange {
  from: number;
  to?: number;
}

export interface FirewallSettings {
  sshPort: number;
  wireguardPort: number;
  listenPorts: readonly PortRange[];
}

const portSet = (ranges: readonly PortRange[]): string =>
  `{ ${ranges.map((r) => (r.to !== undefined && r.to !== r.from ? `${r.from}-${r.to}` : `${r.from}`)).join(", ")} }`;

/**
 * KTube's own nftables table: inbound traffic is dropped except loopback, replies, ICMP,
 * SSH (the controller's way in), the WireGuard port and the tunnel's listen ports. The file
 * replaces the whole table atomically (`nft -f`); other tables are left alone, but a drop
 * here is final, so other services on the VPS need their ports in listenPorts.
 */
export const firewallRules = (fw: FirewallSettings): string => `# KTube's firewall. Written by the KTube edge controller; do not edit.
table inet ktube
delete table inet ktube
table inet ktube {
  chain input {
    type filter hook input priority filter; policy drop;
    iif "lo" accept
    ct state established,related accept
    ct state invalid drop
    meta l4proto { icmp, ipv6-icmp } accept
    tcp dport ${fw.sshPort} accept
    udp dport ${fw.wireguardPort} accept
    tcp dport ${portSet(fw.listenPorts)} accept
    udp dport ${portSet(fw.listenPorts)} accept
  }
}
`;

/** The three units; systemd reads them as they are, the wrapper's fallback reads the keys it knows. */
export function unitFiles(): Record<UnitName, string> {
  const header = (description: string): string => `# Written by the KTube edge controller; do not edit.\n[Unit]\nDescription=${description}\n`;
  return {
    "ktube-firewall": `${header("KTube firewall (nftables table inet ktube)")}Before=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f ${FIREWALL_FILE}
ExecStop=/usr/sbin/nft delete table inet ktube
X-KTubeCheck=/usr/sbin/nft list table inet ktube

[Install]
WantedBy=multi-user.target
`,
    "ktube-wireguard": `${header("KTube WireGuard interface")}After=network-online.target ktube-firewall.service
Wants=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=${WIREGUARD_SCRIPT} up
ExecReload=${WIREGUARD_SCRIPT} reload
ExecStop=${WIREGUARD_SCRIPT} down
X-KTubeCheck=${WIREGUARD_SCRIPT} check

[Install]
WantedBy=multi-user.target
`,
    // Wants, not Requires: restarting WireGuard must not restart Envoy (and close every connection).
    "ktube-envoy": `${header("KTube edge proxy (Envoy)")}After=ktube-wireguard.service
Wants=ktube-wireguard.service

[Service]
Type=simple
User=${ENVOY_USER}
Group=${ENVOY_USER}
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
LimitNOFILE=65536
ExecStart=${ENVOY_BINARY} -c ${ENVOY_BOOTSTRAP} --drain-time-s ${ENVOY_DRAIN_SECONDS} --log-level info
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
`,
  };
}
