// The controller under measurement: in this process (Kubernetes writes counted from its
// own metrics), or as a child process (`apps/cloudflare-controller/src/main.ts`, the
// real binary) whose memory and CPU are read from /proc and which can be SIGKILLed.
import { cloudflarePlugin } from "@ktube/cloudflare-controller/plugin";
import { registerProviderControllers } from "@ktube/provider-kit";
import { createLogger, Manager } from "@ktube/runtime";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { callCounter, NS, sleep, type BenchEnv } from "./setup.ts";

export const OWNER_ID = "bench";
const MANAGED_BY = "ktube-cloudflare-controller";

export function inProcessController(env: BenchEnv, workers: number): Manager {
  const manager = new Manager({ kubeConfig: env.kc, name: "cloudflare-controller", logger: createLogger({ level: process.env.LOG_LEVEL ?? "warn" }), probeAddress: false, metricsAddress: false });
  registerProviderControllers(manager, cloudflarePlugin({ ownerId: OWNER_ID, cloudflaredImage: "cloudflared:bench", apiUrl: env.fake.baseUrl }), {
    namespace: NS,
    managedBy: MANAGED_BY,
    maxConcurrentReconciles: workers,
    configDelayMs: 1000,
  });
  return manager;
}

/** Kubernetes requests other than GET, from a manager's rest client metrics. */
export async function kubeWrites(manager: Manager): Promise<number> {
  return (await manager.metrics.count("rest_client_requests_total")) - (await manager.metrics.count("rest_client_requests_total", { method: "GET" }));
}

/** Waits until no controller has work queued or in flight, then 3 s more for delayed keys and the last writes to land. */
export async function settle(manager: Manager): Promise<void> {
  while (!manager.settled) await sleep(200);
  await sleep(3000);
}

export interface QuietPeriod {
  providerWrites: number;
  providerReads: number;
  /** Cloudflare calls by operation. */
  calls: Record<string, number>;
  kubeWrites: number;
  /** The Kubernetes writes made ("METHOD path code"), to say what wrote when something did. */
  kubePaths: string[];
}

/** A forced full resync, then `seconds` of quiet: what it cost. A steady state must write nothing. */
export async function quietPeriod(env: BenchEnv, manager: Manager, seconds: number): Promise<QuietPeriod> {
  const calls = callCounter(env);
  const w0 = await kubeWrites(manager);
  const kubePaths: string[] = [];
  manager.client.onRequest((method, path, code) => {
    if (method !== "GET") kubePaths.push(`${method} ${path} ${code}`);
  });
  manager.resync();
  await sleep(seconds * 1000);
  return { providerWrites: calls.writes(), providerReads: calls.reads(), calls: calls.since(), kubeWrites: (await kubeWrites(manager)) - w0, kubePaths };
}

/** The controller binary as a child process. */
export class ControllerProcess {
  readonly child: ChildProcess;
  readonly metricsPort: number;
  readonly exited: Promise<void>;
  peakRssMiB = 0;
  private sampler: NodeJS.Timeout;

  private constructor(child: ChildProcess, metricsPort: number) {
    this.child = child;
    this.metricsPort = metricsPort;
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
    child.stderr?.on("data", (chunk: Buffer) => {
      if (process.env.LOG_LEVEL) process.stderr.write(chunk);
    });
    this.sampler = setInterval(() => (this.peakRssMiB = Math.max(this.peakRssMiB, this.rssMiB())), 1000);
    this.sampler.unref();
  }

  /**
   * `heapMiB`: V8's heap limit, as a container's memory limit would set it. `--max-heap-size`
   * (not the old space alone) so that V8 splits it between the generations as it does
   * in a container: the young generation keeps a few MiB instead of the up to 192 MiB
   * this machine's memory would give it.
   */
  static async start(env: BenchEnv, workers: number, heapMiB?: number): Promise<ControllerProcess> {
    const metricsPort = await freePort();
    const main = fileURLToPath(new URL("../../apps/cloudflare-controller/src/main.ts", import.meta.url));
    const child = spawn(
      process.execPath,
      [
        "--disable-warning=ExperimentalWarning",
        ...(heapMiB ? [`--max-heap-size=${heapMiB}`] : []),
        main,
        `--kubeconfig=${env.controlPlane.kubeconfigPath}`,
        `--namespace=${NS}`,
        "--leader-elect=false",
        "--health-probe-bind-address=127.0.0.1:0",
        `--metrics-bind-address=127.0.0.1:${metricsPort}`,
        `--owner-id=${OWNER_ID}`,
        "--cloudflared-image=cloudflared:bench",
        `--cloudflare-api-url=${env.fake.baseUrl}`,
        "--config-delay=1s",
        `--max-concurrent-reconciles=${workers}`,
      ],
      { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? "warn" } },
    );
    return new ControllerProcess(child, metricsPort);
  }

  /** Resident memory now, from /proc. */
  rssMiB(): number {
    try {
      const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.child.pid}/status`, "utf8"))?.[1] ?? 0);
      return kb / 1024;
    } catch {
      return 0; // exited
    }
  }

  /** User + system CPU seconds so far (clock ticks of 1/100 s). */
  cpuSeconds(): number {
    try {
      const fields = readFileSync(`/proc/${this.child.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      return (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      return 0;
    }
  }

  /** Kubernetes writes the process made, from its /metrics. */
  async kubeWrites(): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`)).text();
    let writes = 0;
    for (const line of text.split("\n")) {
      const m = /^rest_client_requests_total\{([^}]*)\} (\d+)/.exec(line);
      if (m && !/method="GET"/.test(m[1]!)) writes += Number(m[2]);
    }
    return writes;
  }

  /** SIGKILL: nothing is flushed or released. */
  async kill(): Promise<void> {
    clearInterval(this.sampler);
    this.child.kill("SIGKILL");
    await this.exited;
  }

  /** SIGTERM, and SIGKILL if it has not exited 10 s later (a stuck shutdown must not hang the bench). */
  async stop(): Promise<void> {
    clearInterval(this.sampler);
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGTERM");
    const forced = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(forced);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
