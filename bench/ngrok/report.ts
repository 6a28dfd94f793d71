// What a scenario hands back, and how it is shown: JSON and a markdown table on stdout,
// and with --write the table in its own block of bench/README.md
// (`<!-- ngrok-<scenario>:begin -->` ... `end -->`) and the JSON in
// bench/ngrok/results-<scenario>.json.
import { publishResults, runStamp } from "../results.ts";
import type { BenchOptions } from "./options.ts";
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
export const sum = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0);
export const countRows = (counts: Record<string, number>): string[] =>
  Object.entries(counts)
    .sort()
    .map(([what, n]) => `| &nbsp;&nbsp;${what} | ${n} |`);

export function report(options: BenchOptions, { result, table }: ScenarioResult): void {
  const { date, machine } = runStamp();
  const { scenario, bindings, tcp, replicas, latencyMs, workers, steadySeconds } = options;
  const json = { scenario, date, machine, bindings, tcp, replicas, latencyMs, workers, steadySeconds, ...result };
  const rows = [
    `| scenario | value |`,
    `|---|---|`,
    `| bindings on one Tunnel: HTTP / TCP | ${bindings - tcp} / ${tcp} |`,
    `| agent replicas (connector processes) | ${replicas} |`,
    `| fake REST API latency per call | ${latencyMs} ms |`,
    `| reconcile workers per controller | ${workers} |`,
    ...table,
  ].join("\n");
  publishResults({ bench: "ngrok", scenario: scenario, date, machine, rows, json, write: options.write, log });
}
