// SSH to a real OpenSSH server in a network namespace (the test VPS): the host key pinned from
// the provider's knownHosts (plain and hashed), unknown and changed keys refused with the
// fingerprint seen, the insecure escape hatch, a wrong client key, atomic file writes.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { startVps, type Vps } from "@ktube/testenv";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectVps, HostKeyError, type VpsTarget } from "../../src/provider/ssh.ts";

let vps: Vps;
const target = (over: Partial<VpsTarget> = {}): VpsTarget => ({
  host: vps.address,
  port: vps.port,
  user: vps.user,
  privateKey: vps.clientPrivateKey,
  knownHosts: vps.hostPublicKey,
  insecureSkipHostKeyVerification: false,
  connectTimeoutMs: 10_000,
  ...over,
});

beforeAll(async () => {
  vps = await startVps();
}, 60_000);

afterAll(async () => {
  await vps?.stop();
});

describe("SSH to a VPS", () => {
  it("connects when the host key is the pinned one, and runs commands", async () => {
    const session = await connectVps(target());
    try {
      expect(session.hostKeyFingerprint).toBe(vps.hostKeyFingerprint);
      expect((await session.exec("id -u")).stdout.trim()).toBe(vps.user === "root" ? "0" : expect.any(String));
    } finally {
      session.close();
    }
  });

  it("matches hashed known_hosts entries as OpenSSH writes them", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ktube-kh-"));
    const file = join(dir, "known_hosts");
    writeFileSync(file, `${vps.hostPublicKey}\n`);
    execFileSync("ssh-keygen", ["-H", "-f", file], { stdio: "ignore" });
    const hashed = readFileSync(file, "utf8");
    expect(hashed).toMatch(/^\|1\|/);
    const session = await connectVps(target({ knownHosts: hashed }));
    session.close();
  });

  it("refuses a VPS whose key is not in knownHosts, naming the fingerprint it presented", async () => {
    const error = await connectVps(target({ knownHosts: "" })).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(HostKeyError);
    expect((error as HostKeyError).reason).toBe("HostKeyUnknown");
    expect((error as HostKeyError).message).toContain(vps.hostKeyFingerprint);
  });

  it("refuses a changed host key, and accepts any key only when told to be insecure (still reporting it)", async () => {
    const pinned = vps.hostPublicKey;
    await vps.rotateHostKey();
    const error = await connectVps(target({ knownHosts: pinned })).then(() => undefined, (e: unknown) => e);
    expect((error as HostKeyError).reason).toBe("HostKeyChanged");
    expect((error as HostKeyError).message).toContain(vps.hostKeyFingerprint);
    const session = await connectVps(target({ knownHosts: pinned, insecureSkipHostKeyVerification: true }));
    expect(session.hostKeyFingerprint).toBe(vps.hostKeyFingerprint);
    session.close();
  });

  it("reports a client key the VPS does not accept", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ktube-key-"));
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "id")]);
    const error = await connectVps(target({ privateKey: readFileSync(join(dir, "id"), "utf8") })).then(() => undefined, (e: unknown) => e);
    expect((error as { reason?: string }).reason).toBe("SSHAuthenticationFailed");
  });

  it("writes files atomically with their mode", async () => {
    const session = await connectVps(target());
    try {
      await session.exec("mkdir -p /tmp/ktube-edge-test");
      await session.writeFile("/tmp/ktube-edge-test/lds.json", '{"version_info":"abc"}', "0600");
      const stat = await session.exec("stat -c '%a' /tmp/ktube-edge-test/lds.json; cat /tmp/ktube-edge-test/lds.json; echo; ls -a /tmp/ktube-edge-test");
      const [mode, content, ...listing] = stat.stdout.trim().split("\n");
      expect(mode).toBe("600");
      expect(content).toBe('{"version_info":"abc"}');
      expect(listing.filter((f) => f.startsWith(".ktube."))).toEqual([]);
    } finally {
      session.close();
    }
  });
});
