// The bench's command line: which scenario, and the shape it runs at. Defaults are the
// sizes the README's tables were measured at (scale is ten times converge).
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

export const SCENARIOS = ["converge", "scale", "churn", "chaos", "steady"] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface BenchOptions {
  scenario: Scenario;
  bindings: number;
  tunnels: number;
  zones: number;
  /** What the fake Cloudflare API waits before each answer. */
  latencyMs: number;
  /** --max-concurrent-reconciles of the controller. */
  workers: number;
  /**
   * --heap <MiB>: the controller process's V8 heap limit (scale, chaos), as a container's
   * memory limit sets it. Scale defaults to what the chart's limit gives (see chartHeapMiB).
   */
  heapMiB?: number;
  /** The quiet period after a forced resync (converge: 60 s, steady: 600 s). */
  steadySeconds: number;
  /** Put the table in bench/README.md and the JSON in bench/cloudflare/results-<scenario>.json. */
  write: boolean;
}

export function parseOptions(argv: string[] = process.argv.slice(2)): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: "string", default: "converge" },
      bindings: { type: "string" },
      tunnels: { type: "string" },
      zones: { type: "string" },
      latency: { type: "string", default: "50" },
      steady: { type: "string" },
      workers: { type: "string", default: "16" },
      heap: { type: "string" },
      write: { type: "boolean", default: false },
    },
  });
  const scenario = values.scenario as Scenario;
  if (!SCENARIOS.includes(scenario)) throw new Error(`--scenario must be one of ${SCENARIOS.join(", ")}`);
  const scale = scenario === "scale";
  return {
    scenario,
    bindings: positive("bindings", values.bindings ?? (scale ? "10000" : "1000")),
    tunnels: positive("tunnels", values.tunnels ?? (scale ? "100" : "10")),
    zones: positive("zones", values.zones ?? (scale ? "20" : "10")),
    latencyMs: positive("latency", values.latency, true),
    workers: positive("workers", values.workers),
    heapMiB: values.heap !== undefined ? positive("heap", values.heap) : scale ? chartHeapMiB() : undefined,
    steadySeconds: positive("steady", values.steady ?? (scenario === "steady" ? "600" : "60"), true),
    write: values.write,
  };
}

function positive(flag: string, text: string, zeroAllowed = false): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || (n === 0 && !zeroAllowed)) throw new Error(`--${flag} must be a ${zeroAllowed ? "non-negative" : "positive"} integer, not ${text}`);
  return n;
}

/**
 * The V8 heap the controller has in the chart's container. Node sizes it from the cgroup
 * memory limit (libuv's constrained memory) by V8's rule: a quarter of the memory, times
 * two on 64-bit builds without pointer compression such as Node's own, so half the
 * limit. This machine has no limit and 24 GiB: V8 would take 4 GiB, and let garbage
 * pile up accordingly.
 */
export function chartHeapMiB(): number {
  const values = readFileSync(new URL("../../charts/ktube/charts/cloudflare-controller/values.yaml", import.meta.url), "utf8");
  const limit = /limits:\s*\{\s*memory:\s*(\d+)Mi\s*\}/.exec(values)?.[1];
  if (!limit) throw new Error("the cloudflare-controller chart's values.yaml has no resources.limits.memory in Mi");
  return Number(limit) / 2;
}
