import { describe, expect, it } from "@jest/globals";
import { readFileSync } from "node:fs";
import { join } from "node:path";

describe("README", () => {
  it("shows examples/stamp-controller.ts verbatim, so the documented example is the tested one", () => {
    const root = join(import.meta.dirname, "..");
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const example = readFileSync(join(root, "examples", "stamp-controller.ts"), "utf8");
    expect(readme).toContain("```ts\n" + example + "```");
  });
});
