// The Tunnel's agent replicas as real connector processes: a LocalKubelet (testenv has no
// nodes or workload controllers) makes the Pods of the agent Deployment and runs each as
// `apps/ngrok-controller/src/main.ts connector` with that Pod's env, volumes and
// ServiceAccount token. Their memory is sampled from /proc every second.
import { Core } from "@ktube/api";
import { LocalKubelet, type LocalPod } from "@ktube/testenv";
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { log, NS, sleep, TUNNEL, type BenchEnv } from "./setup.ts";

/** The controller binary; `connector` (the container's args) makes it the agent. */
// (Its real path: Node does not strip types under node_modules, where the workspace link is.)
const MAIN = realpathSync(fileURLToPath(new URL("./main.ts", import.meta.resolve("@ktube/ngrok-controller/plugin"))));
const DEPLOYMENT = `${TUNNEL}-ngrok`;

export interface AgentMemory {
  pod: string;
  peakMiB: number;
  endMiB: number;
}

export class Agents {
  private readonly kubelet: LocalKubelet;
  private pods: LocalPod[] = [];
  private readonly peaks = new Map<string, number>();
  private readonly sampler: NodeJS.Timeout;

  constructor(env: BenchEnv) {
    this.kubelet = new LocalKubelet(env.kc, { command: () => [process.execPath, "--disable-warning=ExperimentalWarning", MAIN] });
    this.sampler = setInterval(() => this.sample(), 1000);
    this.sampler.unref();
  }

  /** Waits for the controller's Deployment, then makes its Pods and runs them. */
  async start(env: BenchEnv): Promise<void> {
    for (;;) {
      try {
        await env.client.get(Core.Deployment, NS, DEPLOYMENT);
        break;
      } catch {
        await sleep(200);
      }
    }
    this.pods = await this.kubelet.runDeployment(NS, DEPLOYMENT, {
      LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
      KTUBE_PROBE_ADDRESS: "127.0.0.1:0",
      KTUBE_UPSTREAM_OVERRIDES: JSON.stringify(env.upstreams),
    });
    log(`agents running: ${this.pods.map((p) => `${p.name} (pid ${p.process.child.pid})`).join(", ")}`);
  }

  /** Each connector's peak and current resident memory. */
  memory(): AgentMemory[] {
    this.sample();
    return this.pods.map((p) => ({ pod: p.name, peakMiB: this.peaks.get(p.name) ?? 0, endMiB: rssMiB(p.process.child.pid) }));
  }

  /** Connectors that exited (none should), with the end of what they printed. */
  exited(): string[] {
    return this.pods.filter((p) => !p.process.running).map((p) => `${p.name} exited: ${p.process.output.slice(-500)}`);
  }

  async stop(): Promise<void> {
    clearInterval(this.sampler);
    await this.kubelet.close();
  }

  private sample(): void {
    for (const p of this.pods) this.peaks.set(p.name, Math.max(this.peaks.get(p.name) ?? 0, rssMiB(p.process.child.pid)));
  }
}

/** Resident memory of a process now, from /proc (0 once it has exited). */
function rssMiB(pid: number | undefined): number {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}
