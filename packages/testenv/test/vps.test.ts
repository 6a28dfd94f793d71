// The test VPS: the real OpenSSH client reaches the real sshd in its network namespace with
// the generated key and a pinned host key, and stop() leaves nothing behind.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { startVps, type Vps } from "../src/index.ts";

const run = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), "ktube-vps-test-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function requireSshClient(): void {
  for (const tool of ["ssh", "ssh-keyscan", "ssh-keygen"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    } catch {
      throw new Error(`${tool} was not found: apt-get update && apt-get install -y openssh-client (openssh-server brings it too)`);
    }
  }
}

let files = 0;
function knownHosts(...lines: string[]): string {
  const file = join(scratch, `known_hosts_${files++}`);
  writeFileSync(file, lines.map((l) => `${l}\n`).join(""));
  return file;
}

/** The real ssh client, strict about the host key, with only the given identity. */
async function ssh(
  vps: Vps,
  command: string,
  { knownHostsFile, identity = vps.clientPrivateKeyFile, user = vps.user, extra = [] }: { knownHostsFile: string; identity?: string; user?: string; extra?: string[] },
): Promise<{ stdout: string; stderr: string; code: number }> {
  const args = [
    "-F", "/dev/null",
    "-i", identity,
    "-o", "IdentitiesOnly=yes",
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=yes",
    "-o", `UserKnownHostsFile=${knownHostsFile}`,
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "ConnectTimeout=10",
    "-p", String(vps.port),
    ...extra,
    `${user}@${vps.address}`,
    command,
  ];
  try {
    const { stdout, stderr } = await run("ssh", args);
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; code?: number };
    return { stdout: e.stdout ?? "", stderr: e.stderr ?? "", code: e.code ?? 1 };
  }
}

async function keyscan(vps: Vps): Promise<string> {
  const { stdout } = await run("ssh-keyscan", ["-T", "10", "-t", "ed25519", "-p", String(vps.port), vps.address]);
  return stdout.trim();
}

function netnsList(): string {
  return execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
}

describe("startVps (root)", () => {
  let vps: Vps;
  beforeAll(async () => {
    requireSshClient();
    vps = await startVps();
  });
  afterAll(() => vps?.stop());

  it("accepts the client key for root over real SSH, with the host key pinned", async () => {
    expect(vps.namespace).toMatch(/^ktvps-[0-9a-f]{6}$/);
    expect(vps.address).toMatch(/^10\.213\.\d+\.\d+$/);
    expect(vps).toMatchObject({ port: 22, user: "root" });
    expect(vps.clientPrivateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    expect(vps.clientPublicKey).toMatch(/^ssh-ed25519 AAAA\S+ /);
    expect(vps.hostPublicKey).toMatch(new RegExp(`^${vps.address.replaceAll(".", "\\.")} ssh-ed25519 AAAA\\S+$`));
    const result = await ssh(vps, "id -u", { knownHostsFile: knownHosts(vps.hostPublicKey) });
    expect(result).toMatchObject({ code: 0, stdout: "0\n" });
  });

  it("runs sshd inside the namespace, and exec() sees the VPS's side", async () => {
    const server = createServer();
    const addr = await vps.exec("ip -4 -o addr show dev eth0");
    expect(addr.code).toBe(0);
    expect(addr.stdout).toContain(`inet ${vps.address}/30`);
    const listening = await vps.exec("ss -Hltnp");
    expect(listening.stdout).toContain(`${vps.address}:22`);
    expect(listening.stdout).toContain("sshd");
    // The root namespace has no socket on that address: the server really is in the namespace.
    expect(execFileSync("ss", ["-Hltn"], { encoding: "utf8" })).not.toContain(`${vps.address}:22`);
    expect((await vps.exec("exit 3")).code).toBe(3);
    // The VPS reaches the test process on hostAddress (say, to download a file the test serves).
    const received = new Promise<string>((resolve) => {
      server.once("connection", (socket) => socket.once("data", (data) => resolve(data.toString())));
    });
    await new Promise<void>((resolve) => server.listen(0, vps.hostAddress, resolve));
    const { port } = server.address() as AddressInfo;
    expect((await vps.exec(`bash -c 'echo from-vps >/dev/tcp/${vps.hostAddress}/${port}'`)).code).toBe(0);
    expect(await received).toBe("from-vps\n");
    server.close();
  });

  it("shows the same host key to ssh-keyscan, with OpenSSH's fingerprint", async () => {
    expect(await keyscan(vps)).toBe(vps.hostPublicKey);
    const file = knownHosts(vps.hostPublicKey);
    const fingerprint = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", file], { encoding: "utf8" });
    expect(fingerprint.split(" ")[1]).toBe(vps.hostKeyFingerprint);
    expect(vps.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it("refuses another key, passwords and an unknown host key", async () => {
    const other = join(scratch, "other_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
    const wrongKey = await ssh(vps, "true", { knownHostsFile: knownHosts(vps.hostPublicKey), identity: other });
    expect(wrongKey.code).toBe(255);
    expect(wrongKey.stderr).toContain("Permission denied (publickey)");

    const password = await ssh(vps, "true", {
      knownHostsFile: knownHosts(vps.hostPublicKey),
      extra: ["-o", "PreferredAuthentications=password,keyboard-interactive"],
    });
    expect(password.code).toBe(255);
    expect(password.stderr).toContain("Permission denied (publickey)");

    const unknown = await ssh(vps, "true", { knownHostsFile: knownHosts() });
    expect(unknown.code).toBe(255);
    expect(unknown.stderr).toContain("Host key verification failed");
  });

  it("rotateHostKey() restarts sshd on a new host key, which a pinned client refuses", async () => {
    const pinned = knownHosts(vps.hostPublicKey);
    const before = { line: vps.hostPublicKey, fingerprint: vps.hostKeyFingerprint };
    await vps.rotateHostKey();
    expect(vps.hostKeyFingerprint).not.toBe(before.fingerprint);
    expect(vps.hostPublicKey).not.toBe(before.line);
    expect(await keyscan(vps)).toBe(vps.hostPublicKey);

    const changed = await ssh(vps, "id -u", { knownHostsFile: pinned });
    expect(changed.code).toBe(255);
    expect(changed.stderr).toContain("REMOTE HOST IDENTIFICATION HAS CHANGED");
    expect(await ssh(vps, "id -u", { knownHostsFile: knownHosts(vps.hostPublicKey) })).toMatchObject({ code: 0, stdout: "0\n" });
  });
});

describe("startVps (its own file system)", () => {
  it("keeps what an SSH session writes to /etc, /usr/local and /tmp on that VPS only, across sshd restarts", async () => {
    requireSshClient();
    const [a, b] = await Promise.all([startVps(), startVps()]);
    const marker = `ktube-vps-fs-${a.namespace}`;
    try {
      const write = await ssh(
        a,
        `echo a > /etc/${marker} && mkdir -p /usr/local/lib/${marker} && echo a > /tmp/${marker} && useradd --system --no-create-home ${marker.slice(0, 30)} && echo ok`,
        { knownHostsFile: knownHosts(a.hostPublicKey) },
      );
      expect(write).toMatchObject({ code: 0, stdout: "ok\n" });
      // exec() sees the VPS's files; the machine and the other VPS do not.
      expect((await a.exec(`cat /etc/${marker} /tmp/${marker}; id -u ${marker.slice(0, 30)} >/dev/null && echo user`)).stdout).toBe("a\na\nuser\n");
      expect(existsSync(`/etc/${marker}`)).toBe(false);
      expect(existsSync(`/usr/local/lib/${marker}`)).toBe(false);
      expect(existsSync(`/tmp/${marker}`)).toBe(false);
      expect(execFileSync("sh", ["-c", `id -u ${marker.slice(0, 30)} 2>/dev/null || echo none`], { encoding: "utf8" })).toBe("none\n");
      expect((await b.exec(`test -e /etc/${marker} || echo absent`)).stdout).toBe("absent\n");
      // A restarted sshd (a new host key) serves the same disk.
      await a.rotateHostKey();
      expect(await ssh(a, `cat /etc/${marker}`, { knownHostsFile: knownHosts(a.hostPublicKey) })).toMatchObject({ code: 0, stdout: "a\n" });
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});

describe("startVps (several, a created user, stop)", () => {
  it("runs two VPSes at once on different addresses, and stop() leaves nothing behind", async () => {
    requireSshClient();
    const user = `ktvu${Date.now().toString(36).slice(-6)}`;
    const [a, b] = await Promise.all([startVps(), startVps({ user, port: 2222 })]);
    try {
      expect(a.namespace).not.toBe(b.namespace);
      expect(a.address).not.toBe(b.address);
      expect(netnsList()).toContain(a.namespace);
      expect(netnsList()).toContain(b.namespace);

      expect(await ssh(a, "id -u", { knownHostsFile: knownHosts(a.hostPublicKey) })).toMatchObject({ code: 0, stdout: "0\n" });

      // b: a created user with a home dir, on port 2222 (known_hosts spells it [address]:2222).
      expect(b.hostPublicKey.startsWith(`[${b.address}]:2222 ssh-ed25519 `)).toBe(true);
      expect(await keyscan(b)).toBe(b.hostPublicKey);
      const who = await ssh(b, 'id -un; echo "$HOME"; test -d "$HOME" && echo home', { knownHostsFile: knownHosts(b.hostPublicKey) });
      expect(who).toMatchObject({ code: 0, stdout: `${user}\n/home/${user}\nhome\n` });
      const asRoot = await ssh(b, "true", { knownHostsFile: knownHosts(b.hostPublicKey), user: "root" });
      expect(asRoot.stderr).toContain("Permission denied");
      // Each VPS has its own host key.
      expect(a.hostKeyFingerprint).not.toBe(b.hostKeyFingerprint);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }

    for (const vps of [a, b]) {
      expect(netnsList()).not.toContain(vps.namespace);
      expect(existsSync(vps.clientPrivateKeyFile)).toBe(false);
    }
    const rootAddresses = execFileSync("ip", ["-4", "-o", "addr", "show"], { encoding: "utf8" });
    expect(rootAddresses).not.toContain(`inet ${a.hostAddress}/`);
    expect(rootAddresses).not.toContain(`inet ${b.hostAddress}/`);
    expect(() => execFileSync("id", ["-u", user], { stdio: "ignore" })).toThrow();
    expect(existsSync(`/home/${user}`)).toBe(false);
    const sshds = execFileSync("sh", ["-c", "pgrep -a sshd || true"], { encoding: "utf8" });
    expect(sshds).not.toContain(a.namespace);
    expect(sshds).not.toContain(b.namespace);
    // Idempotent.
    await expect(a.stop()).resolves.toBeUndefined();
  });
});
