import { describe, expect, it } from "@jest/globals";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildCrd, KINDS, renderCrdFiles, toStructural } from "../src/index.ts";

describe("CRD generator", () => {
  it("matches the committed crds/ (run `npm run crds` after changing a schema)", () => {
    for (const [name, text] of renderCrdFiles()) {
      expect(readFileSync(join(import.meta.dirname, "..", "..", "..", "crds", name), "utf8")).toBe(text);
    }
  });

  it("writes int-or-string in the one anyOf form structural schemas allow", () => {
    const node = toStructural({
      anyOf: [{ type: "integer", minimum: 1 }, { type: "string", maxLength: 15 }],
      "x-kubernetes-int-or-string": true,
      description: "port",
    });
    expect(node).toEqual({
      description: "port",
      "x-kubernetes-int-or-string": true,
      anyOf: [{ type: "integer" }, { type: "string" }],
      minimum: 1,
      maxLength: 15,
    });
  });

  it("emits no construct a structural schema forbids", () => {
    const offending: string[] = [];
    const walk = (node: unknown, path: string): void => {
      if (typeof node !== "object" || node === null) return;
      const n = node as Record<string, unknown>;
      if ("propertyNames" in n || "$schema" in n || "$ref" in n || "oneOf" in n) offending.push(path);
      if (n.additionalProperties === false || (n.properties && n.additionalProperties)) offending.push(path);
      if (n.anyOf && n["x-kubernetes-int-or-string"] !== true) offending.push(path);
      for (const [key, child] of Object.entries(n)) walk(child, `${path}.${key}`);
    };
    for (const def of KINDS) walk(buildCrd(def), def.kind);
    expect(offending).toEqual([]);
  });
});
