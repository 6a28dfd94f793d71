// Writes crds/*.yaml from the zod schemas; with --check, fails when they are stale.
import { existsSync, readdirSync, readFileSync, writeFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { renderCrdFiles } from "../src/crd.ts";

const crdDir = join(import.meta.dirname, "../../../crds");
const check = process.argv.includes("--check");
const wanted = renderCrdFiles();
const stale: string[] = [];

for (const [name, text] of wanted) {
  const path = join(crdDir, name);
  const current = existsSync(path) ? readFileSync(path, "utf8") : undefined;
  if (current === text) continue;
  stale.push(name);
  if (!check) writeFileSync(path, text);
}
for (const name of readdirSync(crdDir)) {
  if (name.endsWith(".yaml") && !wanted.has(name)) {
    stale.push(name);
    if (!check) unlinkSync(join(crdDir, name));
  }
}

if (check && stale.length > 0) {
  console.error(`crds/ is stale (${stale.join(", ")}): run \`npm run crds\` and commit the result.`);
  process.exit(1);
}
console.log(check ? "crds/ is up to date." : stale.length ? `wrote ${stale.join(", ")}` : "crds/ already up to date.");
