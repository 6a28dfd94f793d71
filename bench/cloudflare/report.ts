// What a scenario hands back, and how it is shown: JSON and a markdown table on stdout,
// and with --write the table in its own block of bench/README.md
// (`<!-- cloudflare-<scenario>:begin -->` ... `end -->`) and the JSON in
// bench/cloudflare/results-<scenario>.json.
import { existsSync, readFileSync } from "node:fs";
import { publishResults, resultsPath, runStamp } from "../results.ts";
import type { BenchOptions, Scenario } from "./options.ts";
import { log } from "./setup.ts";

export interface ScenarioResult {
  /** The scenario's numbers, for results-<scenario>.json. */
  result: Record<string, unknown>;
  /** Its rows of the README table (the shape rows are added in front). */
  table: string[];
  /** Checks that failed: the bench exits 1 when there is any. */
  failed: string[];
}

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
export const sum = (calls: Record<string, number>): number => Object.values(calls).reduce((a, b) => a + b, 0);
export const callRows = (calls: Record<string, number>): string[] =>
  Object.entries(calls)
    .sort()
    .map(([op, n]) => `| &nbsp;&nbsp;${op} | ${n} |`);

export function report(options: BenchOptions, { result, table }: ScenarioResult): void {
  const { date, machine } = runStamp();
  const { scenario, bindings, tunnels, zones, latencyMs, workers } = options;
  const json = { scenario, date, machine, bindings, tunnels, zones, latencyMs, workers, ...result };
  const rows = [
    `| scenario | value |`,
    `|---|---|`,
    `| bindings / tunnels / zones | ${bindings} / ${tunnels} / ${zones} |`,
    `| fake API latency per call | ${latencyMs} ms |`,
    `| reconcile workers per controller | ${workers} |`,
    ...table,
  ].join("\n");
  publishResults({ bench: "cloudflare", scenario: scenario, date, machine, rows, json, write: options.write, log });
}

/**
 * The calls of the last recorded run of `scenario`, if it ran at the same shape (so
 * chaos can say what the kills cost on top of converge); undefined otherwise.
 */
export function recordedCalls(scenario: Scenario, options: BenchOptions): Record<string, number> | undefined {
  if (!existsSync(resultsPath("cloudflare", scenario))) return undefined;
  const recorded = JSON.parse(readFileSync(resultsPath("cloudflare", scenario), "utf8")) as { bindings: number; tunnels: number; zones: number; latencyMs: number; calls?: Record<string, number> };
  const sameShape = recorded.bindings === options.bindings && recorded.tunnels === options.tunnels && recorded.zones === options.zones && recorded.latencyMs === options.latencyMs;
  return sameShape ? recorded.calls : undefined;
}

