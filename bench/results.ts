// How every bench hands over one scenario's result: the JSON and the table on stdout, and
// with --write the table into its marked block of bench/README.md (`<!-- <bench>-<scenario>:begin -->`
// ... `:end -->`) and the JSON into <bench>/results-<scenario>.json.
import { readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";

/** The day and machine a result is stamped with. */
export const runStamp = (): { date: string; machine: string } => ({ date: new Date().toISOString().slice(0, 10), machine: `${cpus().length} cores` });

export interface Published {
  bench: "cloudflare" | "ngrok" | "edge";
  scenario: string;
  date: string;
  machine: string;
  /** The Markdown table. */
  rows: string;
  json: unknown;
  write: boolean;
  log(line: string): void;
}

export function publishResults(result: Published): void {
  const { bench, scenario, rows } = result;
  console.log(JSON.stringify(result.json, null, 2));
  console.log(`\n${rows}`);
  if (!result.write) return;
  const readme = join(import.meta.dirname, "README.md");
  const text = readFileSync(readme, "utf8");
  const marker = `${bench}-${scenario}`;
  const pattern = new RegExp(`<!-- ${marker}:begin -->[\\s\\S]*<!-- ${marker}:end -->`);
  if (!pattern.test(text)) throw new Error(`bench/README.md has no ${marker} block`);
  const block = `<!-- ${marker}:begin -->\nLast run: ${result.date}, ${result.machine}.\n\n${rows}\n<!-- ${marker}:end -->`;
  writeFileSync(readme, text.replace(pattern, () => block));
  writeFileSync(resultsPath(bench, scenario), `${JSON.stringify(result.json, null, 2)}\n`);
  result.log(`bench/README.md and bench/${bench}/results-${scenario}.json updated`);
}

export const resultsPath = (bench: Published["bench"], scenario: string): string => join(import.meta.dirname, bench, `results-${scenario}.json`);
