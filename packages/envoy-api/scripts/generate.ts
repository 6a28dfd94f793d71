// Regenerates src/gen/ from the envoy-validator checker's descriptor (see codegen.ts);
// with --check, writes nothing and fails when the committed files are stale.
import { relative } from "node:path";
import { dumpDescriptorSet, GEN_DIR, generate, staleFiles, writeFiles } from "./codegen.ts";

const check = process.argv.includes("--check");
const started = Date.now();
const wanted = await generate(await dumpDescriptorSet((line) => console.error(line)));
const stale = staleFiles(wanted);
const where = relative(process.cwd(), GEN_DIR) || ".";
const bytes = [...wanted.values()].reduce((sum, text) => sum + Buffer.byteLength(text), 0);

if (check) {
  if (stale.length > 0) {
    console.error(
      `@ktube/envoy-api: ${stale.length} generated file(s) in ${where} are stale (${stale.slice(0, 5).join(", ")}${stale.length > 5 ? ", …" : ""}): ` +
        "run `npm run generate -w @ktube/envoy-api` and commit the result.",
    );
    process.exit(1);
  }
  console.log(`@ktube/envoy-api: ${wanted.size} generated files are up to date (${Date.now() - started} ms).`);
} else {
  writeFiles(wanted);
  console.log(
    `@ktube/envoy-api: ${wanted.size} files, ${(bytes / 1024).toFixed(0)} KiB in ${where}` +
      (stale.length ? `; ${stale.length} changed` : "; nothing changed") +
      ` (${Date.now() - started} ms).`,
  );
}
