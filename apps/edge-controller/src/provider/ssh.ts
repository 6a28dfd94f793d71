// SSH to a VPS (`ssh2`), with its host key pinned: the key the VPS presents must be one the
// provider's `knownHosts` lists for that address (plain or hashed entries, `[host]:port`
// for a non-default port, as `ssh-keyscan` and OpenSSH write them). An unknown or changed
// key is refused with the fingerprint seen, so a person can compare it with the VPS's own
// (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`); `insecure` accepts any key but still
// reports what it saw. Commands run with their own timeouts; files are written atomically
// (a temporary file in the target directory, then a rename), as Envoy's file-based xDS needs.
import { createHash, createHmac } from "node:crypto";
import { Client, type ConnectConfig } from "ssh2";
import { ProviderError } from "@ktube/provider-kit";

export interface VpsTarget {
  host: string;
  port: number;
  user: string;
  privateKey: string;
  passphrase?: string;
  /** OpenSSH known_hosts text (every VPS of the provider). */
  knownHosts: string;
  insecureSkipHostKeyVerification: boolean;
  connectTimeoutMs?: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface VpsSession {
  /** SHA256:… of the host key the VPS presented. */
  readonly hostKeyFingerprint: string;
  exec(command: string, options?: { timeoutMs?: number; stdin?: string | Buffer }): Promise<ExecResult>;
  /** Writes `path` atomically with `mode` (octal string, e.g. "0600") and, if given, `group`. */
  writeFile(path: string, content: string | Buffer, mode: string, group?: string): Promise<void>;
  close(): void;
}

/** OpenSSH's fingerprint of a public key blob: `SHA256:` + unpadded base64 of its SHA-256. */
export const fingerprint = (keyBlob: Buffer): string => `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`;

/** The name a known_hosts line uses for this host and port. */
const hostPattern = (host: string, port: number): string => (port === 22 ? host : `[${host}]:${port}`);

function hostMatches(field: string, name: string): boolean {
  return field.split(",").some((entry) => {
    if (!entry.startsWith("|1|")) return entry === name;
    // Hashed entry: |1|base64(salt)|base64(HMAC-SHA1(salt, name)).
    const [, , salt, hash] = entry.split("|");
    if (!salt || !hash) return false;
    return createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64") === hash;
  });
}

/** Key blobs known_hosts lists for this host (revoked `@revoked` lines excluded, `@cert-authority` not supported). */
export function knownKeys(knownHosts: string, host: string, port: number): Buffer[] {
  const name = hostPattern(host, port);
  const keys: Buffer[] = [];
  for (const raw of knownHosts.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith("@")) continue;
    const [hosts, , key] = line.split(/\s+/);
    if (hosts && key && hostMatches(hosts, name)) keys.push(Buffer.from(key, "base64"));
  }
  return keys;
}

/** Why a host key was refused: the condition reason and a message naming the fingerprint seen. */
export class HostKeyError extends ProviderError {
  readonly fingerprint: string;

  constructor(reason: "HostKeyUnknown" | "HostKeyChanged", host: string, port: number, seen: string) {
    const what =
      reason === "HostKeyUnknown"
        ? `the provider's knownHosts has no key for ${hostPattern(host, port)}`
        : `the VPS at ${hostPattern(host, port)} presented a key that is not the one in the provider's knownHosts (it changed: a reinstall, or someone in the middle)`;
    super(reason, `${what}; it presented ${seen}. Add its key to knownHosts after checking it on the VPS (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub).`, { terminal: true });
    this.fingerprint = seen;
  }
}

export function connectVps(target: VpsTarget): Promise<VpsSession> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let seen = "";
    let refused: HostKeyError | undefined;
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.user,
      privateKey: target.privateKey,
      ...(target.passphrase ? { passphrase: target.passphrase } : {}),
      readyTimeout: target.connectTimeoutMs ?? 20_000,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer): boolean => {
        seen = fingerprint(key);
        if (target.insecureSkipHostKeyVerification) return true;
        const known = knownKeys(target.knownHosts, target.host, target.port);
        if (known.some((k) => k.equals(key))) return true;
        refused = new HostKeyError(known.length === 0 ? "HostKeyUnknown" : "HostKeyChanged", target.host, target.port, seen);
        return false;
      },
    };
    client.once("ready", () => resolve(session(client, seen, target.user !== "root")));
    client.once("error", (error: Error & { level?: string }) => {
      if (refused) return reject(refused);
      const auth = error.level === "client-authentication";
      reject(
        new ProviderError(
          auth ? "SSHAuthenticationFailed" : "SSHUnreachable",
          auth ? `the VPS at ${target.host}:${target.port} refused the SSH key for user ${target.user}` : `could not reach the VPS at ${target.host}:${target.port} over SSH: ${error.message}`,
          { terminal: false },
        ),
      );
    });
    client.connect(config);
  });
}

/** Quotes a value for a POSIX shell. */
export const shellQuote = (value: string): string => `'${value.replaceAll("'", `'\\''`)}'`;

/**
 * Every command runs as root: as the SSH user when that is root, else through `sudo -n`
 * (passwordless sudo for that user is then a prerequisite of enrollment).
 */
function session(client: Client, hostKeyFingerprint: string, useSudo: boolean): VpsSession {
  const exec: VpsSession["exec"] = (command, options = {}) =>
    new Promise((resolve, reject) => {
      client.exec(useSudo ? `sudo -n sh -c ${shellQuote(command)}` : command, (error, stream) => {
        if (error) return reject(new ProviderError("SSHCommandFailed", `could not run a command on the VPS: ${error.message}`));
        let stdout = "";
        let stderr = "";
        const timer = setTimeout(() => {
          stream.close();
          reject(new ProviderError("SSHCommandTimeout", `a command on the VPS did not finish within ${Math.round((options.timeoutMs ?? 60_000) / 1000)} s`));
        }, options.timeoutMs ?? 60_000);
        stream.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
        stream.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        stream.on("close", (code: number | null) => {
          clearTimeout(timer);
          resolve({ code: code ?? -1, stdout, stderr });
        });
        if (options.stdin !== undefined) stream.end(options.stdin);
        else stream.end();
      });
    });
  return {
    hostKeyFingerprint,
    exec,
    async writeFile(path, content, mode, group) {
      const dir = path.slice(0, path.lastIndexOf("/")) || "/";
      // The temporary file lives in the target directory, so the rename is atomic.
      const chgrp = group ? `chgrp ${shellQuote(group)} "$t"; ` : "";
      const script = `set -e; t=$(mktemp ${shellQuote(`${dir}/.ktube.XXXXXX`)}); cat > "$t"; chmod ${shellQuote(mode)} "$t"; ${chgrp}mv -f "$t" ${shellQuote(path)}`;
      const result = await exec(`sh -c ${shellQuote(script)}`, { stdin: content });
      if (result.code !== 0) throw new ProviderError("SSHCommandFailed", `could not write ${path} on the VPS: ${result.stderr.trim() || `exit ${result.code}`}`);
    },
    close: () => client.end(),
  };
}
