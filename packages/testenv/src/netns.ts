// Network namespaces a test makes for itself (a cluster node and its Pods, a client...),
// removed together with every process in them: by `stop()`, by an exit hook when the test
// process ends, and, when it was killed before either could run (SIGKILL), by the next
// group made on this machine: each group keeps a record naming its process and namespaces
// in /run/ktube-netns, and a record whose process is gone is cleaned up. wireguard-go
// leaves its control socket behind when killed: sockets in /var/run/wireguard whose name
// contains the group's id go with the group.
import { execFileSync, spawn, type SpawnOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestenvSetupError } from "./binaries.ts";
import { TestProcess } from "./ktube-objects.ts";

const RECORDS = "/run/ktube-netns";

const WIREGUARD_SOCKETS = "/var/run/wireguard";

interface Record {
  pid: number;
  id: string;
  namespaces: string[];
}

const live = new Set<NetnsGroup>();
let hooked = false;

export class NetnsGroup {
  /** Four hex digits, unique per group: use it in interface names (15 characters at most, shared by every namespace for wireguard-go). */
  readonly id = randomBytes(2).toString("hex");
  private readonly namespaces: string[] = [];
  private readonly record = join(RECORDS, `${process.pid}-${this.id}.json`);

  constructor() {
    if (process.getuid?.() !== 0) throw new TestenvSetupError("network namespaces need root: run the tests as root (CI's container does)");
    try {
      execFileSync("ip", ["-V"], { stdio: "ignore" });
    } catch {
      throw new TestenvSetupError("this test needs `ip`: apt-get install -y iproute2");
    }
    mkdirSync(RECORDS, { recursive: true });
    removeAbandoned();
    live.add(this);
    if (!hooked) {
      hooked = true;
      process.once("exit", () => {
        for (const group of live) group.stopSync();
      });
    }
  }

  /** Makes the namespace `kt<id>-<name>` with its loopback up; returns its name. */
  add(name: string): string {
    const namespace = `kt${this.id}-${name}`;
    this.namespaces.push(namespace);
    this.save();
    execFileSync("ip", ["netns", "add", namespace]);
    execFileSync("ip", ["-n", namespace, "link", "set", "lo", "up"]);
    return namespace;
  }

  /** Runs a shell script in the machine's namespace (for `ip link add … netns …`, `ip -n …`): throws with its stderr. */
  sh(script: string): string {
    try {
      return execFileSync("sh", ["-ec", script], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      throw new Error(`${script}\n${(error as { stderr?: string }).stderr ?? error}`);
    }
  }

  /** Runs a command in `namespace`. */
  exec(namespace: string, command: string, args: string[], input?: string): string {
    try {
      return execFileSync("ip", ["netns", "exec", namespace, command, ...args], { encoding: "utf8", input: input ?? "", stdio: ["pipe", "pipe", "pipe"] });
    } catch (error) {
      throw new Error(`${command} ${args.join(" ")} in ${namespace}: ${(error as { stderr?: string }).stderr ?? error}`);
    }
  }

  /** Starts a long-running process in `namespace`. */
  spawn(namespace: string, command: string, args: string[], options: SpawnOptions = {}): TestProcess {
    return new TestProcess(spawn("ip", ["netns", "exec", namespace, command, ...args], { stdio: ["ignore", "pipe", "pipe"], ...options }));
  }

  /** SIGKILLs every process in `namespace` (a node or Pod dying) and removes it. */
  remove(namespace: string): void {
    destroy(namespace);
    this.namespaces.splice(this.namespaces.indexOf(namespace), 1);
    this.save();
  }

  stop(): Promise<void> {
    this.stopSync();
    return Promise.resolve();
  }

  private stopSync(): void {
    for (const namespace of this.namespaces.splice(0)) destroy(namespace);
    removeSockets(this.id);
    rmSync(this.record, { force: true });
    live.delete(this);
  }

  private save(): void {
    writeFileSync(this.record, JSON.stringify({ pid: process.pid, id: this.id, namespaces: this.namespaces } satisfies Record));
  }
}

function destroy(namespace: string): void {
  let pids: number[] = [];
  try {
    pids = execFileSync("ip", ["netns", "pids", namespace], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).split("\n").filter(Boolean).map(Number);
  } catch {
    return; // no such namespace
  }
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already exited
    }
  }
  try {
    // A veth's peer goes with its namespace; a wireguard-go interface with its process.
    execFileSync("ip", ["netns", "del", namespace], { stdio: "ignore" });
  } catch {
    // already gone
  }
}

function removeSockets(id: string): void {
  if (!existsSync(WIREGUARD_SOCKETS)) return;
  for (const name of readdirSync(WIREGUARD_SOCKETS)) if (name.includes(id) && name.endsWith(".sock")) rmSync(join(WIREGUARD_SOCKETS, name), { force: true });
}

function removeAbandoned(): void {
  if (!existsSync(RECORDS)) return;
  for (const name of readdirSync(RECORDS)) {
    const path = join(RECORDS, name);
    let record: Record;
    try {
      record = JSON.parse(readFileSync(path, "utf8")) as Record;
    } catch {
      continue;
    }
    if (isAlive(record.pid)) continue;
    for (const namespace of record.namespaces) destroy(namespace);
    if (record.id) removeSockets(record.id);
    rmSync(path, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
