// steady: after converging, a forced full resync and a long quiet period (600 s). Nothing
// may be written to Cloudflare or Kubernetes (exit 1 otherwise); the reads are what it
// costs to notice drift, reported per minute by operation.
import { quietPeriod } from "./controller.ts";
import { convergedInProcess } from "./converge.ts";
import type { BenchOptions } from "./options.ts";
import type { ScenarioResult } from "./report.ts";
import { log, type BenchEnv } from "./setup.ts";

export async function steady(env: BenchEnv, options: BenchOptions): Promise<ScenarioResult> {
  const { steadySeconds } = options;
  const manager = await convergedInProcess(env, options);
  try {
    log(`resync and ${steadySeconds} s of quiet`);
    const quiet = await quietPeriod(env, manager, steadySeconds);
    const perMinute = (n: number) => (steadySeconds > 0 ? ((n * 60) / steadySeconds).toFixed(1) : "-");
    const readsByOperation = Object.entries(quiet.calls)
      .sort()
      .map(([op, n]) => `| &nbsp;&nbsp;${op} | ${n} (${perMinute(n)} per minute) |`);
    return {
      result: { seconds: steadySeconds, ...quiet },
      table: [
        `| quiet period after a forced full resync | ${steadySeconds} s |`,
        `| **Cloudflare writes** | **${quiet.providerWrites}** |`,
        `| **Kubernetes writes** | **${quiet.kubeWrites}** |`,
        `| Cloudflare reads | ${quiet.providerReads} (${perMinute(quiet.providerReads)} per minute) |`,
        ...readsByOperation,
      ],
      failed: quiet.providerWrites + quiet.kubeWrites > 0 ? [`steady state wrote something: ${JSON.stringify(quiet.kubePaths)}`] : [],
    };
  } finally {
    await manager.stop();
  }
}
