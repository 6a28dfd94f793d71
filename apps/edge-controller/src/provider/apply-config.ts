// Pushes Envoy's dynamic configuration (file-based LDS, CDS and SDS) to the VPS and waits
// until Envoy itself says it runs that version.
//
// Every file is written by temporary file + rename, so Envoy (watching the directory) never
// reads half a file, and only files whose bytes changed are written. SDS secrets go first
// (a listener must never point at a secret that is not there), then CDS before LDS when
// clusters are added (a new route's listener finds its cluster), or LDS before CDS when the
// change only removes clusters (no listener points at a cluster that is gone); secrets no
// longer used are removed last. Acceptance is read from Envoy's admin (loopback only, read
// over SSH): both `listener_manager.lds.version_text` and `cluster_manager.cds.version_text`
// must show the plan's version. An `update_rejected` or `update_failure` counter that moves
// instead is a rejection, reported with Envoy's own log line; neither within the timeout is "not
// confirmed". Both are errors, so the caller never records an unconfirmed version as applied
// and retries with backoff.
import { ProviderError } from "@ktube/provider-kit";
import { ENVOY_CONFIG_DIR, ENVOY_SDS_DIR } from "./envoy/plan.ts";
import { sha256 } from "./enroll.ts";
import { shellQuote, type VpsSession } from "./ssh.ts";
import { ENVOY_USER, SERVICE_WRAPPER } from "./vps-files.ts";

export interface EnvoyConfigFiles {
  /** The plan's version: the `version_info` of the LDS and CDS files. */
  version: string;
  /** Every rendered file with its absolute path on the VPS; the bootstrap, if present, is enrollment's and skipped here. */
  files: ReadonlyArray<{ path: string; content: string }>;
}

export interface ApplyOptions {
  adminPort: number;
  /** How long Envoy has to report the version; default 20 s. */
  confirmTimeoutMs?: number;
  pollIntervalMs?: number;
}

export interface ApplyResult {
  version: string;
  /** Paths written or removed, in order; empty when the VPS already had every byte. */
  changed: string[];
}

const LDS = `${ENVOY_CONFIG_DIR}/lds.json`;
const CDS = `${ENVOY_CONFIG_DIR}/cds.json`;
const STATS_FILTER = String.raw`^(listener_manager\.lds|cluster_manager\.cds)\.(version_text|update_rejected|update_failure)$`;

/** How long a moved rejection counter may be followed by the version after all (see confirmVersion). */
const REJECTION_GRACE_MS = 2_000;


export interface EnvoyUpdateStats {
  ldsVersion: string | undefined;
  cdsVersion: string | undefined;
  /** Updates Envoy refused: `update_rejected` (a valid file it would not apply) plus `update_failure` (a file it could not read). */
  rejected: number;
}

/** Parses Envoy's `/stats` text output (`name: value`, text readouts quoted). */
export function parseUpdateStats(text: string): EnvoyUpdateStats {
  const stats = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^([\w.]+): (.*)$/.exec(line.trim());
    if (match) stats.set(match[1]!, match[2]!);
  }
  const readout = (name: string): string | undefined => {
    const value = stats.get(name);
    return value === undefined ? undefined : value.replace(/^"(.*)"$/, "$1");
  };
  const counter = (name: string): number => Number(stats.get(name) ?? 0) || 0;
  return {
    ldsVersion: readout("listener_manager.lds.version_text"),
    cdsVersion: readout("cluster_manager.cds.version_text"),
    rejected: ["listener_manager.lds", "cluster_manager.cds"].reduce((n, prefix) => n + counter(`${prefix}.update_rejected`) + counter(`${prefix}.update_failure`), 0),
  };
}

/** GETs a path of Envoy's admin from the VPS itself (the admin listens on loopback only). */
export async function readAdmin(session: VpsSession, adminPort: number, path: string): Promise<string> {
  const url = shellQuote(`http://127.0.0.1:${adminPort}${path}`);
  const result = await session.exec(
    `if command -v curl >/dev/null 2>&1; then curl -fsS --max-time 5 ${url}; else wget -qO- -T 5 ${url}; fi`,
    { timeoutMs: 15_000 },
  );
  if (result.code !== 0) {
    throw new ProviderError("EnvoyAdminUnreachable", `Envoy's admin on the VPS (127.0.0.1:${adminPort}) did not answer: ${result.stderr.trim().slice(-300) || `exit ${result.code}`}`);
  }
  return result.stdout;
}

export const readUpdateStats = async (session: VpsSession, adminPort: number): Promise<EnvoyUpdateStats> =>
  parseUpdateStats(await readAdmin(session, adminPort, `/stats?filter=${encodeURIComponent(STATS_FILTER)}`));

const clusterNames = (cds: string | undefined): Set<string> => {
  try {
    const parsed = JSON.parse(cds ?? "{}") as { resources?: Array<{ name?: string }> };
    return new Set((parsed.resources ?? []).map((resource) => resource.name ?? ""));
  } catch {
    return new Set();
  }
};

/** What is on the VPS now: the hash of every dynamic file, and the current CDS (for the write order). */
async function probeConfig(session: VpsSession): Promise<{ hashes: Map<string, string>; cds: string | undefined }> {
  const script = [
    `for f in ${LDS} ${CDS} ${ENVOY_SDS_DIR}/*.json; do [ -f "$f" ] && printf 'hash %s %s\\n' "$(sha256sum < "$f" | cut -d' ' -f1)" "$f"; done`,
    `echo ---`,
    `cat ${CDS} 2>/dev/null; true`,
  ].join("\n");
  const result = await session.exec(script);
  if (result.code !== 0) throw new ProviderError("VpsProbeFailed", `could not read Envoy's files on the VPS: ${result.stderr.trim()}`);
  const [head = "", ...rest] = result.stdout.split("\n---\n");
  const hashes = new Map<string, string>();
  for (const line of head.split("\n")) {
    const [kind, hash, ...path] = line.split(" ");
    if (kind === "hash" && hash) hashes.set(path.join(" "), hash);
  }
  return { hashes, cds: rest.join("\n---\n") || undefined };
}

export async function applyEnvoyConfig(session: VpsSession, config: EnvoyConfigFiles, options: ApplyOptions): Promise<ApplyResult> {
  const { hashes, cds: currentCds } = await probeConfig(session);
  const before = await statsOnceUp(session, options);
  const byPath = new Map(config.files.map((file) => [file.path, file.content]));
  const secrets = config.files.filter((file) => file.path.startsWith(`${ENVOY_SDS_DIR}/`));
  const changed: string[] = [];
  // Envoy does not run this version although the files may already hold it (a rejected
  // update, or a restart that lost it): write LDS and CDS again so Envoy reads them again.
  const rewrite = before.ldsVersion !== config.version || before.cdsVersion !== config.version;
  const write = async (path: string, content: string, secret: boolean): Promise<void> => {
    if (hashes.get(path) === sha256(content) && (secret || !rewrite)) return;
    // Secrets hold private keys: readable by Envoy's group only.
    await session.writeFile(path, content, secret ? "0640" : "0644", secret ? ENVOY_USER : undefined);
    changed.push(path);
  };

  for (const secret of secrets) await write(secret.path, secret.content, true);
  const lds = byPath.get(LDS);
  const cds = byPath.get(CDS);
  if (lds === undefined || cds === undefined) throw new Error("applyEnvoyConfig needs the rendered lds.json and cds.json");
  const current = clusterNames(currentCds);
  const wanted = clusterNames(cds);
  const onlyRemoves = [...wanted].every((name) => current.has(name)) && current.size > wanted.size;
  if (onlyRemoves) {
    await write(LDS, lds, false);
    await write(CDS, cds, false);
  } else {
    await write(CDS, cds, false);
    await write(LDS, lds, false);
  }
  const stale = [...hashes.keys()].filter((path) => path.startsWith(`${ENVOY_SDS_DIR}/`) && !byPath.has(path));
  if (stale.length > 0) {
    const result = await session.exec(`rm -f ${stale.map(shellQuote).join(" ")}`);
    if (result.code !== 0) throw new ProviderError("EnvoyConfigWriteFailed", `could not remove unused secrets on the VPS: ${result.stderr.trim()}`);
    changed.push(...stale);
  }

  await confirmVersion(session, config.version, before.rejected, options);
  return { version: config.version, changed };
}

/** Envoy's update stats, waiting for its admin to answer (Envoy may have just been started or restarted). */
async function statsOnceUp(session: VpsSession, options: ApplyOptions): Promise<EnvoyUpdateStats> {
  const deadline = Date.now() + (options.confirmTimeoutMs ?? 20_000);
  for (;;) {
    try {
      return await readUpdateStats(session, options.adminPort);
    } catch (error) {
      if (!(error instanceof ProviderError) || error.reason !== "EnvoyAdminUnreachable" || Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollIntervalMs ?? 250));
  }
}

/** Waits until Envoy reports `version` for both LDS and CDS; throws on a rejection or a timeout. */
export async function confirmVersion(session: VpsSession, version: string, rejectedBefore: number, options: ApplyOptions): Promise<void> {
  const deadline = Date.now() + (options.confirmTimeoutMs ?? 20_000);
  let stats: EnvoyUpdateStats;
  let rejectedAt: number | undefined;
  for (;;) {
    stats = await readUpdateStats(session, options.adminPort);
    if (stats.ldsVersion === version && stats.cdsVersion === version) return;
    // Envoy reloads both files on any rename into the directory, so a state between two of
    // our writes (new CDS, old LDS) may be rejected on the way: a rejection counts once the
    // version has still not shown a moment later.
    if (stats.rejected > rejectedBefore) rejectedAt ??= Date.now();
    if (rejectedAt !== undefined && Date.now() - rejectedAt >= REJECTION_GRACE_MS) {
      // Envoy logs "Filesystem config update rejected: <reason>" or "... update failure: in <path>, <reason>".
      const log = await session.exec(`${SERVICE_WRAPPER} logs ktube-envoy 200 | grep -E 'config update (rejected|failure)' | tail -n 1`);
      const reason = log.stdout.trim().replace(/^.*?config update (rejected|failure):?\s*/, "") || "see Envoy's log on the VPS";
      throw new ProviderError("EnvoyConfigRejected", `Envoy rejected configuration ${version}: ${reason.slice(0, 600)}`);
    }
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, options.pollIntervalMs ?? 250));
  }
  throw new ProviderError(
    "EnvoyConfigNotConfirmed",
    `Envoy did not report configuration ${version} within ${Math.round((options.confirmTimeoutMs ?? 20_000) / 1000)} s (it reports listeners ${stats.ldsVersion || "none"}, clusters ${stats.cdsVersion || "none"})`,
  );
}
