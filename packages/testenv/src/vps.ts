// A real VPS for the edge tests: Debian's OpenSSH server alone in a network namespace.
//
// `startVps()` makes a network namespace `ktvps-<6 hex>` joined to the root namespace by a
// veth pair (`ktv<slot>h` here, `eth0` inside, like a VPS's uplink), generates an ed25519
// host key and a client key pair, and runs the real `/usr/sbin/sshd -D -e` inside the
// namespace on its own address. Tests connect to `address:port` from the root namespace
// exactly as the edge controller connects to a VPS, and inspect the VPS with `exec()`.
//
// Addresses: each VPS takes one /30 of 10.213.0.0/16 (16384 slots): slot i is
// 10.213.(i >> 6).((i & 63) * 4), the root side gets .+1 (`hostAddress`: a test can serve
// files there for the VPS to download) and the VPS .+2 (`address`, with a default route via
// the root side). A slot is claimed atomically by creating its host-side veth, whose name
// is derived from the slot: a second VPS (this process or another Jest worker) that picks
// the same slot gets "File exists" and picks another, so several VPSes can run at once.
//
// What is isolated and what is not: the network, and the file system where an enrolled VPS
// keeps its state. A holder process (`sleep infinity`, in the namespace) owns a private mount
// namespace in which /etc, /usr, /var, /opt, /home, /srv, /tmp and /root (with Debian's
// skeleton dotfiles) are overlays of the machine's own directories (writes land in the
// VPS's work dir) and /run/ktube and /run/wireguard are fresh tmpfs; sshd and `exec()` run
// in it. So the controller can create users, install binaries, write /etc/ktube/… and run
// wireguard-go (whose control sockets live in /run/wireguard) on each VPS without touching
// the test machine or another VPS, and `exec()` sees exactly what the controller wrote,
// while the VPS still sees the checkout and its Node (a test can run programs from it there). Processes and the kernel are shared:
// `ps` shows the machine's processes, and a test that wants to know what runs "on the VPS"
// asks the namespace (`ip netns pids`). A user created with `startVps({ user })` is created
// on the machine before the overlays are made (so the VPS sees it) and removed on stop.

// Service manager: none. Nothing runs systemd here (PID 1 is the sandbox's own process,
// there is no /run/systemd/system, and sshd itself is started by this module, not by a
// unit). What stands in for the VPS's service manager is `stop()`: every process in the
// namespace (sshd, its sessions, and anything a test or the controller left running there
// in the background) is killed with the VPS. Recommendation for the edge controller's
// enrollment: never call `systemctl` directly; upload one small POSIX-sh wrapper,
// `/usr/local/lib/ktube/ktube-service {install|start|stop|restart|status|uninstall} <unit>`,
// and drive every service (Envoy, the WireGuard interface) through it. When the host was
// booted with systemd (`/run/systemd/system` exists, the sd_booted() test; `command -v
// systemctl` is not enough, containers often ship systemctl without a running manager) it
// installs the rendered unit file and runs `systemctl daemon-reload` / `enable --now` /
// `is-active`. Otherwise it runs the unit's ExecStart itself with the same privileges
// (`setpriv --reuid=ktube-envoy --regid=ktube-envoy --init-groups --inh-caps=+net_bind_service
// --ambient-caps=+net_bind_service -- envoy …`, the equivalent of User= plus
// AmbientCapabilities=CAP_NET_BIND_SERVICE) under `setsid -f`, with a pid file in
// /run/ktube/<unit>.pid and output in /var/log/ktube/<unit>.log, and `status` checks the
// pid. The controller's code path is then the same here and on a real VPS; only the
// wrapper's systemd branch is not exercised by these tests (test it by rendering the unit
// and, where available, `systemd-analyze verify`).
//
// sshd settings worth knowing: `UsePAM no`, because Debian's PAM stack for sshd requires
// pam_loginuid, which fails in some sandboxes, and the tests are about keys, not PAM
// (without PAM, sshd refuses accounts whose password is locked with "!", so a created user
// gets the password "*": no password login, but not locked). `StrictModes` stays on (as on a
// real VPS): the work directory is under /run/ktube-vps rather than /tmp, because StrictModes
// rejects an authorized_keys file below a world-writable directory such as /tmp.
import { execFile, execFileSync } from "node:child_process";
import { createHash, randomBytes, randomInt } from "node:crypto";
import { appendFileSync, chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import { TestenvSetupError } from "./binaries.ts";
import { isProcessAlive, logTail, sleep, startProcess, stopProcess, type ManagedProcess } from "./process.ts";

const run = promisify(execFile);

export interface VpsOptions {
  /** TCP port sshd listens on inside the namespace; default 22. */
  port?: number;
  /** The user whose authorized key is the client key: "root" (default), or a user to create (with a home dir) and remove on stop. */
  user?: string;
  /** Where the per-VPS work directories go; default $KTUBE_VPS_DIR or /run/ktube-vps (must have no world-writable parent, see StrictModes). */
  baseDir?: string;
  /** How long to wait for sshd to greet; default 15 s. */
  startTimeoutMs?: number;
}

export interface VpsExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface Vps {
  /** The network namespace, `ktvps-<6 hex>`. */
  readonly namespace: string;
  /** The VPS's address (inside the namespace), reachable from the root namespace. */
  readonly address: string;
  /** The root namespace's side of the veth pair; the VPS reaches the test process here. */
  readonly hostAddress: string;
  readonly port: number;
  readonly user: string;
  /** The client private key, OpenSSH format (`-----BEGIN OPENSSH PRIVATE KEY-----`). */
  readonly clientPrivateKey: string;
  /** The same key in a file (mode 0600), for `ssh -i`. */
  readonly clientPrivateKeyFile: string;
  /** `ssh-ed25519 AAAA… ktube-vps-client`, the line in the authorized keys file. */
  readonly clientPublicKey: string;
  /** The host key as `ssh-keyscan` prints it: `<address> ssh-ed25519 AAAA…` (`[address]:port` when port is not 22). */
  readonly hostPublicKey: string;
  /** `SHA256:…` as OpenSSH prints it. */
  readonly hostKeyFingerprint: string;
  /** sshd's stderr (`-e`, LogLevel VERBOSE). */
  readonly logFile: string;
  /** Runs `sh -c command` inside the namespace as root. Never throws for a non-zero exit. */
  exec(command: string): Promise<VpsExecResult>;
  /** Authorizes one more client key (an `ssh-ed25519 AAAA…` line) for the VPS's user. */
  authorize(publicKeyLine: string): void;
  /** A new host key, sshd restarted on it; resolves once sshd greets again. */
  rotateHostKey(): Promise<void>;
  /** Kills every process in the namespace, deletes the namespace and veth, the created user and the work dir. Idempotent. */
  stop(): Promise<void>;
}

const SUBNET_PREFIX = "10.213";
const SLOTS = 1 << 14;
const NAMESPACE_PREFIX = "ktvps-";
const CLIENT_KEY_COMMENT = "ktube-vps-client";

/** What `cleanup` needs, also written to the work dir so a later run can remove an abandoned VPS. */
interface VpsRecord {
  pid: number;
  namespace: string;
  workDir: string;
  hostVeth?: string;
  createdUser?: string;
}

const live = new Set<VpsRecord>();
let exitHookInstalled = false;

/** The VPS's own copies (overlays) of the machine's directories, and its empty ones. */
// /tmp and /root are overlays too, not empty: the checkout the tests run from (and the
// programs a test installs on the VPS from it) may live there.
const OVERLAID_DIRS = ["/etc", "/usr", "/var", "/opt", "/home", "/srv", "/tmp", "/root"];
const TMPFS_DIRS = ["/run/ktube", "/run/wireguard"];

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const record of live) cleanup(record);
  });
}

// ---- tools -------------------------------------------------------------------------------

const SBIN_DIRS = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...SBIN_DIRS];
  return dirs.map((dir) => join(dir, name)).find((path) => existsSync(path));
}

interface Tools {
  ip: string;
  sshd: string;
  sshKeygen: string;
  nsenter: string;
  unshare: string;
  useradd?: string;
  userdel?: string;
  usermod?: string;
}

const INSTALL_HINT = "apt-get update && apt-get install -y openssh-server iproute2";

/** Checks root and the tools, failing with what to install. */
function requireTools(needUserTools: boolean): Tools {
  if (process.getuid?.() !== 0) {
    throw new TestenvSetupError(
      "startVps needs root (it creates network namespaces and veth pairs and runs sshd): run the tests as root, e.g. in CI's container",
    );
  }
  const wanted: Array<[keyof Tools, string, string]> = [
    ["ip", "ip", "iproute2"],
    ["sshd", "sshd", "openssh-server"],
    ["sshKeygen", "ssh-keygen", "openssh-client"],
    ["nsenter", "nsenter", "util-linux"],
    ["unshare", "unshare", "util-linux"],
  ];
  if (needUserTools) wanted.push(["useradd", "useradd", "passwd"], ["userdel", "userdel", "passwd"], ["usermod", "usermod", "passwd"]);
  const found: Partial<Tools> = {};
  const missing: string[] = [];
  for (const [key, name, pkg] of wanted) {
    // sshd must be called by its absolute path (it re-executes itself), and Debian's is /usr/sbin/sshd.
    const path = name === "sshd" ? (existsSync("/usr/sbin/sshd") ? "/usr/sbin/sshd" : undefined) : findTool(name);
    if (path) found[key] = path;
    else missing.push(`${name} (Debian package ${pkg})`);
  }
  if (missing.length > 0) {
    const pkgs = [...new Set(wanted.filter(([key]) => !found[key]).map(([, , pkg]) => pkg))].join(" ");
    throw new TestenvSetupError(
      `startVps needs ${missing.join(", ")}: install with \`apt-get update && apt-get install -y ${pkgs}\` (everything the test VPS uses: ${INSTALL_HINT})`,
    );
  }
  return found as Tools;
}

function ipSync(ip: string, args: string[]): void {
  try {
    execFileSync(ip, args, { stdio: "ignore" });
  } catch {
    // already gone
  }
}

async function must(file: string, args: string[]): Promise<string> {
  try {
    return (await run(file, args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (error) {
    const e = error as Error & { stderr?: string };
    throw new TestenvSetupError(`${file} ${args.join(" ")} failed: ${(e.stderr ?? e.message).trim()}`);
  }
}

// ---- cleanup -----------------------------------------------------------------------------

/** Synchronous, so it also runs from the exit hook: kills everything in the namespace, then removes it all. */
function cleanup(record: VpsRecord): void {
  const ip = findTool("ip") ?? "ip";
  let pids: number[] = [];
  try {
    pids = execFileSync(ip, ["netns", "pids", record.namespace], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    // no such namespace
  }
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already exited
    }
  }
  ipSync(ip, ["netns", "del", record.namespace]);
  // Deleting the namespace destroys eth0 and with it its peer; this is for a half-made pair.
  if (record.hostVeth) ipSync(ip, ["link", "del", record.hostVeth]);
  if (record.createdUser) {
    const userdel = findTool("userdel");
    // A session just killed may still hold the user for a moment: userdel refuses a logged-in user.
    if (userdel) ipSync(userdel, ["--remove", "--force", record.createdUser]);
  }
  rmSync(record.workDir, { recursive: true, force: true });
  live.delete(record);
}

/** Removes VPSes left behind by test processes that died without running their exit hook (SIGKILL). */
function removeAbandoned(baseDir: string): void {
  if (!existsSync(baseDir)) return;
  for (const name of readdirSync(baseDir)) {
    if (!name.startsWith(NAMESPACE_PREFIX)) continue;
    const workDir = join(baseDir, name);
    let record: VpsRecord;
    try {
      record = JSON.parse(readFileSync(join(workDir, "vps.json"), "utf8")) as VpsRecord;
    } catch {
      continue; // being created right now, or not ours
    }
    if (!ownerAlive(record.pid)) cleanup({ ...record, workDir });
  }
}

/** Alive and not a zombie: a killed test runner may stay a zombie for a while where nothing reaps it. */
function ownerAlive(pid: number): boolean {
  if (!isProcessAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc: trust kill(pid, 0)
  }
}

// ---- keys --------------------------------------------------------------------------------

function fingerprintOf(publicKeyLine: string): string {
  const blob = publicKeyLine.trim().split(/\s+/)[1] ?? "";
  return `SHA256:${createHash("sha256").update(Buffer.from(blob, "base64")).digest("base64").replace(/=+$/, "")}`;
}

async function generateKey(sshKeygen: string, file: string, comment: string): Promise<void> {
  rmSync(file, { force: true });
  rmSync(`${file}.pub`, { force: true });
  await must(sshKeygen, ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
}

// ---- the VPS -----------------------------------------------------------------------------

class TestVps implements Vps {
  namespace: string;
  address = "";
  hostAddress = "";
  port: number;
  user: string;
  clientPrivateKey = "";
  clientPrivateKeyFile: string;
  clientPublicKey = "";
  hostPublicKey = "";
  hostKeyFingerprint = "";
  logFile: string;

  private sshd?: ManagedProcess;
  private fileSystem?: ManagedProcess;
  private stopping?: Promise<void>;
  private readonly record: VpsRecord;
  private readonly hostKeyFile: string;
  private readonly configFile: string;

  private readonly tools: Tools;

  constructor(tools: Tools, workDir: string, namespace: string, options: VpsOptions) {
    this.tools = tools;
    this.namespace = namespace;
    this.port = options.port ?? 22;
    this.user = options.user ?? "root";
    this.record = { pid: process.pid, namespace, workDir };
    this.clientPrivateKeyFile = join(workDir, "client_ed25519");
    this.hostKeyFile = join(workDir, "ssh_host_ed25519_key");
    this.configFile = join(workDir, "sshd_config");
    this.logFile = join(workDir, "sshd.log");
  }

  async start(options: VpsOptions): Promise<void> {
    const { workDir } = this.record;
    // 0755: sshd reads the authorized keys file as the user, who must be able to reach it.
    mkdirSync(workDir, { mode: 0o755 });
    chmodSync(workDir, 0o755);
    this.saveRecord();
    live.add(this.record);
    installExitHook();

    await must(this.tools.ip, ["netns", "add", this.namespace]);
    await this.claimSlot();
    if (this.user !== "root") await this.createUser();

    await generateKey(this.tools.sshKeygen, this.clientPrivateKeyFile, CLIENT_KEY_COMMENT);
    this.clientPrivateKey = readFileSync(this.clientPrivateKeyFile, "utf8");
    this.clientPublicKey = readFileSync(`${this.clientPrivateKeyFile}.pub`, "utf8").trim();
    writeFileSync(join(workDir, "authorized_keys"), `${this.clientPublicKey}\n`, { mode: 0o644 });
    await this.newHostKey();
    this.writeConfig();
    // sshd's privilege separation directory (Debian's unit creates it; nothing does here).
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    await this.startFileSystem();
    await this.startSshd(options.startTimeoutMs ?? 15_000);
  }

  async exec(command: string): Promise<VpsExecResult> {
    try {
      const { stdout, stderr } = await run(this.tools.nsenter, [...this.enter(), "sh", "-c", command], {
        maxBuffer: 64 * 1024 * 1024,
      });
      return { stdout, stderr, code: 0 };
    } catch (error) {
      const e = error as Error & { stdout?: string; stderr?: string; code?: number | string };
      return { stdout: e.stdout ?? "", stderr: e.stderr ?? e.message, code: typeof e.code === "number" ? e.code : 1 };
    }
  }

  authorize(publicKeyLine: string): void {
    appendFileSync(join(this.record.workDir, "authorized_keys"), `${publicKeyLine.trim()}\n`);
  }

  async rotateHostKey(): Promise<void> {
    if (this.stopping) throw new Error(`VPS ${this.namespace} is stopped`);
    if (this.sshd) await stopProcess(this.sshd);
    const before = this.hostKeyFingerprint;
    do await this.newHostKey();
    while (this.hostKeyFingerprint === before);
    await this.startSshd(15_000);
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.sshd) await stopProcess(this.sshd, 2000);
      cleanup(this.record);
    })();
    return this.stopping;
  }

  /** nsenter's arguments into the VPS: its network namespace and its private file system. */
  private enter(): string[] {
    if (!this.fileSystem) throw new Error(`VPS ${this.namespace} has no file system yet`);
    return ["-t", String(this.fileSystem.child.pid), "-m", "-n", "--"];
  }

  /** Starts the holder of the VPS's private mount namespace (see the top of this file). */
  private async startFileSystem(): Promise<void> {
    const root = join(this.record.workDir, "fs");
    const ready = join(this.record.workDir, "fs-ready");
    const mounts = OVERLAID_DIRS.map((dir) => {
      const name = dir.slice(1);
      mkdirSync(join(root, name, "upper"), { recursive: true });
      mkdirSync(join(root, name, "work"), { recursive: true });
      return `mount -t overlay overlay -o lowerdir=${dir},upperdir=${root}/${name}/upper,workdir=${root}/${name}/work ${dir}`;
    });
    for (const dir of TMPFS_DIRS) mkdirSync(dir, { recursive: true });
    const script = [
      "set -e",
      ...mounts,
      ...TMPFS_DIRS.map((dir) => `mount -t tmpfs -o mode=0755 tmpfs ${dir}`),
      // root's shell dotfiles as on a fresh Debian VPS (the machine's own may be slow to source: sshd's bash reads .bashrc).
      "rm -f /root/.bash_profile /root/.bash_login && cp /etc/skel/.bashrc /etc/skel/.profile /root/ 2>/dev/null || true",
      `: > ${ready}`,
      "exec sleep infinity",
    ].join("\n");
    const holder = startProcess(
      "vps-fs",
      this.tools.ip,
      ["netns", "exec", this.namespace, this.tools.unshare, "--mount", "--propagation", "private", "--", "sh", "-c", script],
      join(this.record.workDir, "fs.log"),
    );
    this.fileSystem = holder;
    let exited = false;
    void holder.exited.then(() => (exited = true));
    const deadline = Date.now() + 15_000;
    while (!existsSync(ready)) {
      if (exited || Date.now() > deadline) {
        throw new TestenvSetupError(`the file system of VPS ${this.namespace} did not come up:\n${logTail(join(this.record.workDir, "fs.log"))}`);
      }
      await sleep(10);
    }
  }

  private saveRecord(): void {
    writeFileSync(join(this.record.workDir, "vps.json"), JSON.stringify(this.record));
  }

  /** Picks a free /30 and claims it by creating its veth pair (atomic across processes). */
  private async claimSlot(): Promise<void> {
    const used = new Set(
      [...execFileSync(this.tools.ip, ["-4", "-o", "addr", "show"], { encoding: "utf8" }).matchAll(/inet (\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]),
    );
    for (let attempt = 0; attempt < 100; attempt++) {
      const slot = randomInt(SLOTS);
      const base = `${SUBNET_PREFIX}.${slot >> 6}.`;
      const last = (slot & 63) * 4;
      const host = `${base}${last + 1}`;
      const vps = `${base}${last + 2}`;
      if (used.has(host) || used.has(vps)) continue;
      const hostVeth = `ktv${slot.toString(16).padStart(4, "0")}h`;
      try {
        await run(this.tools.ip, ["link", "add", hostVeth, "type", "veth", "peer", "name", "eth0", "netns", this.namespace]);
      } catch (error) {
        if (/File exists/.test((error as { stderr?: string }).stderr ?? "")) continue;
        throw new TestenvSetupError(`cannot create a veth pair: ${(error as { stderr?: string }).stderr ?? error}`);
      }
      this.record.hostVeth = hostVeth;
      this.saveRecord();
      this.hostAddress = host;
      this.address = vps;
      const ip = this.tools.ip;
      await must(ip, ["addr", "add", `${host}/30`, "dev", hostVeth]);
      await must(ip, ["link", "set", hostVeth, "up"]);
      await must(ip, ["-n", this.namespace, "link", "set", "lo", "up"]);
      await must(ip, ["-n", this.namespace, "addr", "add", `${vps}/30`, "dev", "eth0"]);
      await must(ip, ["-n", this.namespace, "link", "set", "eth0", "up"]);
      await must(ip, ["-n", this.namespace, "route", "add", "default", "via", host]);
      return;
    }
    throw new TestenvSetupError(`no free /30 in ${SUBNET_PREFIX}.0.0/16 after 100 tries: are abandoned ktv*h veth pairs left? (ip -br link)`);
  }

  private async createUser(): Promise<void> {
    if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(this.user)) throw new TestenvSetupError(`not a valid user name: ${this.user}`);
    try {
      execFileSync("id", ["-u", this.user], { stdio: "ignore" });
      throw new TestenvSetupError(
        `user ${this.user} already exists: a VPS's users are the test machine's users, so each VPS needs its own name`,
      );
    } catch (error) {
      if (error instanceof TestenvSetupError) throw error;
    }
    mkdirSync("/home", { recursive: true });
    await must(this.tools.useradd!, ["--create-home", "--home-dir", `/home/${this.user}`, "--shell", "/bin/sh", this.user]);
    this.record.createdUser = this.user;
    this.saveRecord();
    // "*": no password login, but not "!"-locked, which sshd without PAM refuses even for keys.
    await must(this.tools.usermod!, ["--password", "*", this.user]);
  }

  private async newHostKey(): Promise<void> {
    await generateKey(this.tools.sshKeygen, this.hostKeyFile, "");
    const [type, blob] = readFileSync(`${this.hostKeyFile}.pub`, "utf8").trim().split(/\s+/);
    const host = this.port === 22 ? this.address : `[${this.address}]:${this.port}`;
    this.hostPublicKey = `${host} ${type} ${blob}`;
    this.hostKeyFingerprint = fingerprintOf(`${type} ${blob}`);
  }

  private writeConfig(): void {
    const dir = this.record.workDir;
    const lines = [
      `# sshd for the test VPS ${this.namespace}, written by @ktube/testenv`,
      `ListenAddress ${this.address}`,
      `Port ${this.port}`,
      "AddressFamily inet",
      `HostKey ${this.hostKeyFile}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      `AllowUsers ${this.user}`,
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      "UsePAM no",
      "StrictModes yes",
      "PrintMotd no",
      "UseDNS no",
      "LogLevel VERBOSE",
      "Subsystem sftp internal-sftp",
    ];
    writeFileSync(this.configFile, `${lines.join("\n")}\n`, { mode: 0o644 });
  }

  private async startSshd(timeoutMs: number): Promise<void> {
    const sshd = startProcess(
      "sshd",
      this.tools.nsenter,
      [...this.enter(), this.tools.sshd, "-D", "-e", "-f", this.configFile],
      this.logFile,
    );
    this.sshd = sshd;
    let exited = false;
    void sshd.exited.then(() => (exited = true));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exited) throw new TestenvSetupError(`sshd in ${this.namespace} exited at start:\n${logTail(this.logFile)}`);
      if (await greets(this.address, this.port)) return;
      if (Date.now() > deadline) {
        throw new TestenvSetupError(`sshd in ${this.namespace} did not greet on ${this.address}:${this.port} within ${timeoutMs} ms:\n${logTail(this.logFile)}`);
      }
      await sleep(20);
    }
  }
}

/** True once the server at address:port sends an SSH-2.0 identification line. */
function greets(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    let received = "";
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.on("error", () => done(false));
    socket.on("data", (chunk) => {
      received += chunk.toString("latin1");
      if (received.includes("\n")) done(received.startsWith("SSH-2.0-"));
    });
    socket.on("end", () => done(false));
  });
}

/** Starts a VPS: see the top of this file. Call `stop()` when done (an exit hook and the next run clean up otherwise). */
export async function startVps(options: VpsOptions = {}): Promise<Vps> {
  const user = options.user ?? "root";
  const tools = requireTools(user !== "root");
  const baseDir = options.baseDir ?? process.env.KTUBE_VPS_DIR ?? "/run/ktube-vps";
  mkdirSync(baseDir, { recursive: true, mode: 0o755 });
  removeAbandoned(baseDir);
  const namespace = `${NAMESPACE_PREFIX}${randomBytes(3).toString("hex")}`;
  const vps = new TestVps(tools, join(baseDir, namespace), namespace, options);
  try {
    await vps.start(options);
  } catch (error) {
    await vps.stop();
    throw error;
  }
  return vps;
}
