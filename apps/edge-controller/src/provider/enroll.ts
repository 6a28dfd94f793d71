// Enrollment: brings a VPS to the state the Tunnel asks for, idempotently and resumably.
//
// One probe reads everything that decides the work (who owns the VPS, which tools it has,
// the SHA-256 of every file KTube keeps there, what each service last started with); then
// only what differs is written, each file atomically, and a service is (re)started only
// when it is not running or its inputs changed since it last started. The "last started
// with" marker is written after the start, so a controller killed anywhere in between does
// the missing step on its next run and nothing twice. Drift (a file edited on the VPS) is
// the same difference, found on the periodic resync.
import { createHash } from "node:crypto";
import { ProviderError } from "@ktube/provider-kit";
import { ENVOY_CONFIG_DIR, ENVOY_SDS_DIR } from "./envoy/plan.ts";
import { shellQuote, type VpsSession } from "./ssh.ts";
import {
  ENVOY_BINARY,
  ENVOY_BOOTSTRAP,
  ENVOY_USER,
  FIREWALL_FILE,
  firewallRules,
  KTUBE_ETC_DIR,
  KTUBE_LIB_DIR,
  KTUBE_STATE_DIR,
  OWNER_FILE,
  SERVICE_WRAPPER,
  serviceWrapper,
  UNIT_DIR,
  UNITS,
  unitFiles,
  WIREGUARD_CONF,
  WIREGUARD_ENV,
  WIREGUARD_INTERFACE,
  WIREGUARD_SCRIPT,
  wireguardConf,
  wireguardEnv,
  wireguardScript,
  type FirewallSettings,
  type UnitName,
  type WireGuardSettings,
} from "./vps-files.ts";

export interface EnvoyRelease {
  url: string;
  sha256: string;
}

export interface VpsDesiredState {
  /** Who owns the VPS: `<namespace>/<name> <uid>` of the Tunnel. A VPS owned by another Tunnel is refused. */
  owner: string;
  envoy: EnvoyRelease;
  wireguard: WireGuardSettings;
  firewall: FirewallSettings;
  /** Envoy's bootstrap (JSON); the dynamic LDS/CDS/SDS files are the config step's. */
  bootstrap: string;
}

export interface EnrollmentResult {
  /** What this run changed, in order (empty when the VPS already matched). */
  actions: string[];
  /** The VPS uses systemd (else the wrapper's own fallback runs the services). */
  systemd: boolean;
}

interface ManagedFile {
  path: string;
  content: string;
  mode: string;
}

/** Hex SHA-256, as `sha256sum` prints it on the VPS. */
export const sha256 = (content: string | Buffer): string => createHash("sha256").update(content).digest("hex");

/** Tools the VPS must have; `fetch` is curl or wget. */
const REQUIRED_TOOLS = ["ip", "nft", "wg", "setpriv", "setsid", "sha256sum", "useradd"] as const;
/** Debian/Ubuntu packages that provide what may be missing. */
const APT_PACKAGES = "nftables wireguard-tools wireguard-go curl util-linux iproute2";

function managedFiles(desired: VpsDesiredState): ManagedFile[] {
  const units = unitFiles();
  return [
    { path: SERVICE_WRAPPER, content: serviceWrapper(), mode: "0755" },
    { path: WIREGUARD_SCRIPT, content: wireguardScript(), mode: "0755" },
    ...UNITS.map((unit) => ({ path: `${UNIT_DIR}/${unit}.service`, content: units[unit], mode: "0644" })),
    { path: FIREWALL_FILE, content: firewallRules(desired.firewall), mode: "0644" },
    { path: WIREGUARD_ENV, content: wireguardEnv(desired.wireguard), mode: "0644" },
    { path: WIREGUARD_CONF, content: wireguardConf(desired.wireguard), mode: "0600" },
    { path: ENVOY_BOOTSTRAP, content: desired.bootstrap, mode: "0644" },
  ];
}


/** The files each unit reads when it starts (besides the Envoy binary, in Envoy's inputs by its checksum). */
const UNIT_INPUTS: Record<UnitName, string[]> = {
  "ktube-firewall": [`${UNIT_DIR}/ktube-firewall.service`, FIREWALL_FILE],
  "ktube-wireguard": [`${UNIT_DIR}/ktube-wireguard.service`, WIREGUARD_SCRIPT, WIREGUARD_ENV],
  "ktube-envoy": [`${UNIT_DIR}/ktube-envoy.service`, ENVOY_BOOTSTRAP],
};

/** What a service's last start depended on; a change restarts it (WireGuard peers reload in place instead). */
function unitInputs(unit: UnitName, hashes: Map<string, string>, desired: VpsDesiredState): string {
  const files = UNIT_INPUTS[unit].map((path) => `${path}=${hashes.get(path) ?? ""}`);
  if (unit === "ktube-envoy") files.push(`binary=${desired.envoy.sha256}`);
  return sha256(files.join("\n"));
}

export interface VpsProbe {
  owner: string | undefined;
  systemd: boolean;
  missingTools: string[];
  /** SHA-256 of each existing managed file and of the Envoy binary. */
  hashes: Map<string, string>;
  /** `<unit>` → inputs hash it last started with; `wireguard-peers` → the peers last loaded. */
  applied: Map<string, string>;
}

/** One command that reads every fact enrollment decides on. */
export async function probeVps(session: VpsSession, paths: readonly string[]): Promise<VpsProbe> {
  const script = [
    `for t in ${REQUIRED_TOOLS.join(" ")}; do command -v "$t" >/dev/null 2>&1 || echo "missing $t"; done`,
    `command -v curl >/dev/null 2>&1 || command -v wget >/dev/null 2>&1 || echo "missing curl"`,
    `[ -d /run/systemd/system ] && echo systemd || true`,
    `[ -f ${OWNER_FILE} ] && printf 'owner %s\\n' "$(cat ${OWNER_FILE})" || true`,
    `for f in ${KTUBE_STATE_DIR}/*.applied; do [ -f "$f" ] && printf 'applied %s %s\\n' "$(basename "$f" .applied)" "$(cat "$f")"; done; true`,
    `for f in ${paths.map(shellQuote).join(" ")}; do [ -f "$f" ] && printf 'hash %s %s\\n' "$(sha256sum < "$f" | cut -d' ' -f1)" "$f"; done; true`,
  ].join("\n");
  const result = await session.exec(script, { timeoutMs: 60_000 });
  if (result.code !== 0) throw new ProviderError("VpsProbeFailed", `could not inspect the VPS: ${result.stderr.trim() || `exit ${result.code}`}`);
  const probe: VpsProbe = { owner: undefined, systemd: false, missingTools: [], hashes: new Map(), applied: new Map() };
  for (const line of result.stdout.split("\n")) {
    const [kind, first = "", ...rest] = line.split(" ");
    if (kind === "missing") probe.missingTools.push(first);
    else if (kind === "systemd") probe.systemd = true;
    else if (kind === "owner") probe.owner = [first, ...rest].join(" ");
    else if (kind === "applied") probe.applied.set(first, rest.join(" "));
    else if (kind === "hash") probe.hashes.set(rest.join(" "), first);
  }
  return probe;
}

async function must(session: VpsSession, what: string, command: string, timeoutMs = 60_000): Promise<string> {
  const result = await session.exec(command, { timeoutMs });
  if (result.code !== 0) {
    throw new ProviderError("EnrollmentFailed", `${what} failed on the VPS: ${(result.stderr || result.stdout).trim().slice(-400) || `exit ${result.code}`}`);
  }
  return result.stdout;
}

/** Downloads Envoy into a private temporary directory, checks its SHA-256, then moves it into place. */
async function installEnvoy(session: VpsSession, release: EnvoyRelease): Promise<void> {
  // A download cut off by a killed controller leaves its directory: removed first.
  const script = `set -eu
rm -rf ${KTUBE_LIB_DIR}/.download.*
d=$(mktemp -d ${KTUBE_LIB_DIR}/.download.XXXXXX)
trap 'rm -rf "$d"' EXIT
if command -v curl >/dev/null 2>&1; then curl -fsSL --proto =https --max-time 600 -o "$d/envoy" ${shellQuote(release.url)}
else wget -q -T 600 -O "$d/envoy" ${shellQuote(release.url)}; fi
got=$(sha256sum < "$d/envoy" | cut -d' ' -f1)
if [ "$got" != ${shellQuote(release.sha256)} ]; then echo "checksum mismatch: got $got" >&2; exit 3; fi
chmod 0755 "$d/envoy"
mv -f "$d/envoy" ${ENVOY_BINARY}`;
  const result = await session.exec(script, { timeoutMs: 660_000 });
  if (result.code === 3) {
    const got = /got ([0-9a-f]{64})/.exec(result.stderr)?.[1] ?? "unknown";
    throw new ProviderError(
      "EnvoyChecksumMismatch",
      `the Envoy binary at ${release.url} has SHA-256 ${got}, not the pinned ${release.sha256}; it was not installed`,
      { terminal: true },
    );
  }
  if (result.code !== 0) {
    throw new ProviderError("EnvoyDownloadFailed", `the VPS could not download Envoy from ${release.url}: ${result.stderr.trim().slice(-400) || `exit ${result.code}`}`);
  }
}

async function ensureTools(session: VpsSession, probe: VpsProbe): Promise<string[]> {
  if (probe.missingTools.length === 0) return [];
  const install = await session.exec(
    `command -v apt-get >/dev/null 2>&1 || exit 4; DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${APT_PACKAGES}`,
    { timeoutMs: 600_000 },
  );
  const still = (await probeVps(session, [])).missingTools;
  if (still.length > 0) {
    const why = install.code === 4 ? "it has no apt-get to install them with" : `apt-get failed: ${install.stderr.trim().slice(-300)}`;
    throw new ProviderError("VpsMissingTools", `the VPS lacks ${still.join(", ")} and ${why}; install them (Debian: ${APT_PACKAGES})`);
  }
  return [`installed ${probe.missingTools.join(", ")}`];
}

const emptyDiscovery = (kind: "lds" | "cds"): object => ({
  version_info: "",
  resources: [],
  type_url: `type.googleapis.com/envoy.config.${kind === "lds" ? "listener.v3.Listener" : "cluster.v3.Cluster"}`,
});

/** Brings the VPS to `desired`; throws a ProviderError whose reason is the condition reason. */
export async function enrollVps(session: VpsSession, desired: VpsDesiredState): Promise<EnrollmentResult> {
  const files = managedFiles(desired);
  const probe = await probeVps(session, [...files.map((file) => file.path), ENVOY_BINARY]);
  if (probe.owner !== undefined && probe.owner !== desired.owner) {
    throw new ProviderError(
      "VpsInUse",
      `the VPS is enrolled by another Tunnel (${probe.owner}); a VPS serves one Tunnel. Delete that Tunnel, or remove ${OWNER_FILE} on the VPS if it is gone`,
      { terminal: true },
    );
  }
  const actions = await ensureTools(session, probe);

  if (probe.owner === undefined) {
    // Claimed first, so a second Tunnel racing for the same VPS is refused from here on.
    await must(session, "creating KTube's directories", `mkdir -p ${KTUBE_ETC_DIR} && umask 022 && printf '%s\\n' ${shellQuote(desired.owner)} > ${OWNER_FILE}`);
    actions.push("claimed the VPS");
  }
  await must(
    session,
    "creating the envoy user and KTube's directories",
    [
      `id -u ${ENVOY_USER} >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin ${ENVOY_USER}`,
      `mkdir -p ${KTUBE_LIB_DIR} ${UNIT_DIR} ${KTUBE_STATE_DIR} ${ENVOY_CONFIG_DIR} ${ENVOY_SDS_DIR} /var/log/ktube`,
      `chmod 0755 ${KTUBE_LIB_DIR} ${ENVOY_CONFIG_DIR}`,
      `chmod 0700 ${KTUBE_STATE_DIR}`,
      // SDS files hold private keys: readable by Envoy's group only.
      `chown root:${ENVOY_USER} ${ENVOY_SDS_DIR} && chmod 0750 ${ENVOY_SDS_DIR}`,
      // Envoy starts on empty dynamic config until the config step writes the real one.
      ...(["lds", "cds"] as const).map(
        (kind) => `{ [ -f ${ENVOY_CONFIG_DIR}/${kind}.json ] || printf '%s\n' ${shellQuote(JSON.stringify(emptyDiscovery(kind)))} > ${ENVOY_CONFIG_DIR}/${kind}.json; }`,
      ),
    ].join(" && "),
  );

  if (probe.hashes.get(ENVOY_BINARY) !== desired.envoy.sha256) {
    await installEnvoy(session, desired.envoy);
    actions.push(probe.hashes.has(ENVOY_BINARY) ? "replaced the Envoy binary" : "installed Envoy");
  }
  const hashes = new Map(probe.hashes);
  const rewritten = new Set<string>();
  hashes.set(ENVOY_BINARY, desired.envoy.sha256);
  for (const file of files) {
    const want = sha256(file.content);
    if (probe.hashes.get(file.path) === want) continue;
    await session.writeFile(file.path, file.content, file.mode);
    hashes.set(file.path, want);
    if (probe.hashes.has(file.path)) rewritten.add(file.path);
    actions.push(`${probe.hashes.has(file.path) ? "rewrote" : "wrote"} ${file.path}`);
  }

  for (const unit of UNITS) {
    const inputs = unitInputs(unit, hashes, desired);
    const changed = probe.applied.get(unit) !== inputs;
    // A rewritten input was drift: the running service may have read the edited file.
    const stale = changed || UNIT_INPUTS[unit].some((path) => rewritten.has(path));
    // Not running, or running but no longer doing its job (a deleted table, a removed interface).
    const active = (await session.exec(`${SERVICE_WRAPPER} status ${unit}`)).code === 0;
    if (stale) await must(session, `installing ${unit}`, `${SERVICE_WRAPPER} install ${unit}`);
    if (!active || stale) {
      await must(session, `${active ? "restarting" : "starting"} ${unit}`, `${SERVICE_WRAPPER} restart ${unit}`, 120_000);
      actions.push(`${active ? "restarted" : "started"} ${unit}`);
    }
    if (changed) await session.writeFile(`${KTUBE_STATE_DIR}/${unit}.applied`, inputs, "0600");
    if (unit === "ktube-wireguard") {
      // Peers change with the uplinks: reloaded in place, the interface and its sessions stay.
      const peers = hashes.get(WIREGUARD_CONF) ?? "";
      const peersChanged = probe.applied.get("wireguard-peers") !== peers;
      if ((peersChanged || rewritten.has(WIREGUARD_CONF)) && active && !stale) {
        await must(session, "reloading WireGuard peers", `${WIREGUARD_SCRIPT} reload`);
        actions.push("reloaded WireGuard peers");
      }
      if (peersChanged) await session.writeFile(`${KTUBE_STATE_DIR}/wireguard-peers.applied`, peers, "0600");
    }
  }
  return { actions, systemd: probe.systemd };
}

/** What `teardownVps` did. */
export interface TeardownResult {
  /** False when the VPS is not (or no longer) this owner's: nothing was touched. */
  removed: boolean;
  owner: string | undefined;
}

/** Stops KTube's services and removes everything KTube put on the VPS, only when `owner` owns it. */
export async function teardownVps(session: VpsSession, owner: string): Promise<TeardownResult> {
  const probe = await probeVps(session, []);
  if (probe.owner !== owner) return { removed: false, owner: probe.owner };
  const script = [
    ...[...UNITS].reverse().map((unit) => `[ -x ${SERVICE_WRAPPER} ] && ${SERVICE_WRAPPER} uninstall ${unit} || true`),
    `nft delete table inet ktube 2>/dev/null || true`,
    `ip link del dev ${WIREGUARD_INTERFACE} 2>/dev/null || true`,
    `userdel ${ENVOY_USER} 2>/dev/null || true`,
    `rm -rf ${KTUBE_LIB_DIR} ${KTUBE_STATE_DIR} /var/log/ktube /run/ktube/ktube-*`,
    // Last: a teardown killed before this point finds the VPS still ours and runs again.
    `rm -rf ${KTUBE_ETC_DIR}`,
  ].join("\n");
  await must(session, "removing KTube", script, 120_000);
  return { removed: true, owner };
}
