// Writes the CRDs from the zod schemas to crds/ and to every Helm subchart's crds/;
// with --check, fails when any of them is stale.
import { existsSync, readdirSync, readFileSync, writeFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { renderCrdFiles } from "../src/crd.ts";

const root = join(import.meta.dirname, "../../..");
const subcharts = join(root, "charts/ktube/charts");
const targets = [
  join(root, "crds"),
  ...(existsSync(subcharts) ? readdirSync(subcharts).map((chart) => join(subcharts, chart, "crds")).filter(existsSync) : []),
];
const check = process.argv.includes("--check");
const wanted = renderCrdFiles();
const stale: string[] = [];

for (const dir of targets) {
  for (const [name, text] of wanted) {
    const path = join(dir, name);
    const current = existsSync(path) ? readFileSync(path, "utf8") : undefined;
    if (current === text) continue;
    stale.push(path.slice(root.length + 1));
    if (!check) writeFileSync(path, text);
  }
  for (const name of readdirSync(dir)) {
    if (name.endsWith(".yaml") && !wanted.has(name)) {
      stale.push(join(dir, name).slice(root.length + 1));
      if (!check) unlinkSync(join(dir, name));
    }
  }
}

if (check && stale.length > 0) {
  console.error(`CRDs are stale (${stale.join(", ")}): run \`npm run crds\` and commit the result.`);
  process.exit(1);
}
console.log(check ? "CRDs are up to date." : stale.length ? `wrote ${stale.join(", ")}` : "CRDs already up to date.");
