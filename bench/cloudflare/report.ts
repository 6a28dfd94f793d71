// What a scenario hands back, and how it is shown: JSON and a markdown table on stdout,
// and with --write the table in its own block of bench/README.md
// (`<!-- cloudflare-<scenario>:begin -->` ... `end -->`) and the JSON in
// bench/cloudflare/results-<scenario>.json.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
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
  const date = new Date().toISOString().slice(0, 10);
  const machine = `${cpus().length} cores`;
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
  console.log(JSON.stringify(json, null, 2));
  console.log(`\n${rows}`);
  if (!options.write) return;
  const readme = join(import.meta.dirname, "..", "README.md");
  const text = readFileSync(readme, "utf8");
  const pattern = new RegExp(`<!-- cloudflare-${scenario}:begin -->[\\s\\S]*<!-- cloudflare-${scenario}:end -->`);
  if (!pattern.test(text)) throw new Error(`bench/README.md has no cloudflare-${scenario} block`);
  const block = `<!-- cloudflare-${scenario}:begin -->\nLast run: ${date}, ${machine}.\n\n${rows}\n<!-- cloudflare-${scenario}:end -->`;
  writeFileSync(readme, text.replace(pattern, () => block));
  writeFileSync(resultsPath(scenario), `${JSON.stringify(json, null, 2)}\n`);
  log(`bench/README.md and bench/cloudflare/results-${scenario}.json updated`);
}

/**
 * The calls of the last recorded run of `scenario`, if it ran at the same shape (so
 * chaos can say what the kills cost on top of converge); undefined otherwise.
 */
export function recordedCalls(scenario: Scenario, options: BenchOptions): Record<string, number> | undefined {
  if (!existsSync(resultsPath(scenario))) return undefined;
  const recorded = JSON.parse(readFileSync(resultsPath(scenario), "utf8")) as { bindings: number; tunnels: number; zones: number; latencyMs: number; calls?: Record<string, number> };
  const sameShape = recorded.bindings === options.bindings && recorded.tunnels === options.tunnels && recorded.zones === options.zones && recorded.latencyMs === options.latencyMs;
  return sameShape ? recorded.calls : undefined;
}

const resultsPath = (scenario: Scenario): string => join(import.meta.dirname, `results-${scenario}.json`);
