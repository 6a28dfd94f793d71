// Running fake-envoy as a real process from a test: start it with Envoy's arguments, learn
// the admin's address (`--admin-address-path`, so the bootstrap may say port 0), read the
// admin, wait for stats, stop it. Nothing here is needed to run fake-envoy; it saves every
// test the same plumbing.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fakeEnvoyNode, MAIN_SCRIPT } from "./executable.ts";
import { parseStatsText } from "./stats/store.ts";

export interface FakeEnvoyProcessOptions {
  /** Envoy's arguments (`-c <bootstrap> ...`); `--admin-address-path` is added. */
  args: readonly string[];
  /** Run this executable (e.g. one written by writeFakeEnvoyExecutable) instead of Node on main.ts. */
  executable?: string;
  env?: NodeJS.ProcessEnv;
  /** How long to wait for /ready to answer LIVE (default 30 s). */
  readyTimeoutMs?: number;
}

export interface AdminAnswer {
  status: number;
  body: string;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** One HTTP/1.1 request to an admin address (`127.0.0.1:9901`). */
export function adminRequest(address: string, path: string, method = "GET"): Promise<AdminAnswer> {
  const url = new URL(path, `http://${address}`);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`admin request ${method} ${url} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

export class FakeEnvoyProcess {
  readonly child: ChildProcess;
  /** The admin's `ip:port`. */
  readonly adminAddress: string;
  private readonly output: { stdout: string; stderr: string };
  private readonly exited: Promise<ExitStatus>;

  private constructor(child: ChildProcess, adminAddress: string, output: { stdout: string; stderr: string }, exited: Promise<ExitStatus>) {
    this.child = child;
    this.adminAddress = adminAddress;
    this.output = output;
    this.exited = exited;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Everything it wrote to stdout and stderr so far (Envoy logs to stderr without --log-path). */
  get stdout(): string {
    return this.output.stdout;
  }
  get stderr(): string {
    return this.output.stderr;
  }

  /** Starts it and waits until /ready says LIVE; throws with its output if it exits first. */
  static async start(options: FakeEnvoyProcessOptions): Promise<FakeEnvoyProcess> {
    const dir = mkdtempSync(join(tmpdir(), "fake-envoy-admin-"));
    const addressFile = join(dir, "admin-address");
    const args = [...options.args, "--admin-address-path", addressFile];
    const [command, commandArgs] = options.executable
      ? [options.executable, args]
      : [fakeEnvoyNode(), ["--disable-warning=ExperimentalWarning", MAIN_SCRIPT, ...args]];
    const child = spawn(command, commandArgs, { stdio: ["ignore", "pipe", "pipe"], env: options.env ?? process.env });
    const output = { stdout: "", stderr: "" };
    child.stdout!.on("data", (chunk: Buffer) => (output.stdout += chunk.toString("utf8")));
    child.stderr!.on("data", (chunk: Buffer) => (output.stderr += chunk.toString("utf8")));
    let status: ExitStatus | undefined;
    const exited = new Promise<ExitStatus>((resolve) => child.once("exit", (code, signal) => resolve((status = { code, signal }))));
    const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
    try {
      for (;;) {
        if (status) throw new Error(`fake-envoy exited (${status.code ?? status.signal}) before it was ready:\n${output.stderr}${output.stdout}`);
        let address = "";
        try {
          address = readFileSync(addressFile, "utf8").trim();
        } catch {
          // not written yet
        }
        if (address) {
          const ready = await adminRequest(address, "/ready").catch(() => undefined);
          if (ready?.status === 200) return new FakeEnvoyProcess(child, address, output, exited);
        }
        if (Date.now() > deadline) {
          child.kill("SIGKILL");
          throw new Error(`fake-envoy was not ready within ${options.readyTimeoutMs ?? 30_000} ms:\n${output.stderr}`);
        }
        await sleep(50);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  admin(path: string, method = "GET"): Promise<AdminAnswer> {
    return adminRequest(this.adminAddress, path, method);
  }

  /** `/stats?filter=<filter>` as name -> value (text readouts unquoted). */
  async stats(filter?: string): Promise<Map<string, string>> {
    const answer = await this.admin(filter === undefined ? "/stats" : `/stats?filter=${encodeURIComponent(filter)}`);
    if (answer.status !== 200) throw new Error(`/stats answered ${answer.status}: ${answer.body}`);
    return parseStatsText(answer.body);
  }

  /** Polls /stats until `predicate` holds (a barrier); throws with the last stats on timeout. */
  async waitForStats(filter: string, predicate: (stats: Map<string, string>) => boolean, timeoutMs = 15_000): Promise<Map<string, string>> {
    const deadline = Date.now() + timeoutMs;
    let last = new Map<string, string>();
    for (;;) {
      last = await this.stats(filter);
      if (predicate(last)) return last;
      if (Date.now() > deadline) throw new Error(`stats matching /${filter}/ did not reach the expected state within ${timeoutMs} ms: ${JSON.stringify(Object.fromEntries(last))}`);
      await sleep(25);
    }
  }

  /** Sends `signal` (default SIGTERM) and waits for the exit. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<ExitStatus> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }

  /** Resolves when the process exits by itself. */
  waitForExit(): Promise<ExitStatus> {
    return this.exited;
  }
}

export interface RunResult extends ExitStatus {
  stdout: string;
  stderr: string;
}

/** Runs fake-envoy to completion (`--mode validate`, `--version`, a start that must fail). */
export function runFakeEnvoy(args: readonly string[], options: { executable?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  const [command, commandArgs] = options.executable ? [options.executable, [...args]] : [fakeEnvoyNode(), ["--disable-warning=ExperimentalWarning", MAIN_SCRIPT, ...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(command, commandArgs, { stdio: ["ignore", "pipe", "pipe"], env: options.env ?? process.env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`fake-envoy ${args.join(" ")} did not finish within ${options.timeoutMs ?? 30_000} ms:\n${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
