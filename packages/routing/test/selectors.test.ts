import { describe, expect, it } from "@jest/globals";
import { matchesSelector, parseLabelSelector } from "../src/index.ts";

describe("parseLabelSelector", () => {
  it("reads every requirement of the kubectl string form", () => {
    expect(parseLabelSelector("a=b,c==d,e!=f,g in (x,y),h notin (z),i,!j")).toEqual({
      matchExpressions: [
        { key: "a", operator: "In", values: ["b"] },
        { key: "c", operator: "In", values: ["d"] },
        { key: "e", operator: "NotIn", values: ["f"] },
        { key: "g", operator: "In", values: ["x", "y"] },
        { key: "h", operator: "NotIn", values: ["z"] },
        { key: "i", operator: "Exists" },
        { key: "j", operator: "DoesNotExist" },
      ],
    });
  });

  it("allows spaces between tokens, prefixed keys and empty values", () => {
    expect(parseLabelSelector("  ktube.dev/shard = a ,  env in ( prod , staging ) , ! legacy, note=")).toEqual({
      matchExpressions: [
        { key: "ktube.dev/shard", operator: "In", values: ["a"] },
        { key: "env", operator: "In", values: ["prod", "staging"] },
        { key: "legacy", operator: "DoesNotExist" },
        { key: "note", operator: "In", values: [""] },
      ],
    });
  });

  it("keeps both requirements when a key repeats, as the string form means", () => {
    const selector = parseLabelSelector("tier=a,tier=b");
    expect(matchesSelector({ tier: "a" }, selector)).toBe(false);
    expect(matchesSelector({ tier: "b" }, selector)).toBe(false);
  });

  it("selects everything when empty", () => {
    expect(parseLabelSelector("")).toEqual({});
    expect(parseLabelSelector("   ")).toEqual({});
    expect(matchesSelector({ any: "thing" }, parseLabelSelector(""))).toBe(true);
  });

  it("reads words like in and notin as keys where a key belongs", () => {
    expect(parseLabelSelector("in=notin")).toEqual({ matchExpressions: [{ key: "in", operator: "In", values: ["notin"] }] });
  });

  it.each([
    ["a=b,", "expected a label key at the end"],
    [",a", 'expected a label key at position 0'],
    ["a b", 'expected an operator (=, ==, !=, in, notin), "," or the end after "a" at position 2'],
    ["a=b=c", 'expected "," between requirements at position 3'],
    ["a=b c", 'expected "," between requirements at position 4'],
    ["a in x", 'expected "(" after in at position 5'],
    ["a in ()", "expected a label value at position 6"],
    ["a in (x", 'expected "," or ")" in the values of in at the end'],
    ["a in (x,)", "expected a label value at position 8"],
    ["a notin (x y)", 'expected "," or ")" in the values of notin at position 11'],
    ["a>1", "operator > is not supported"],
    ["a<1", "operator < is not supported"],
    ["!", "expected a label key at the end"],
    ["!a=b", 'expected "," between requirements at position 2'],
    ["a=!b", "expected a label value at position 2"],
    ["a:b", 'unexpected character ":" at position 1'],
    ["-a=b", '"-a" is not a valid label key'],
    ["Example.com/a=b", '"Example.com/a" is not a valid label key'],
    ["a/b/c=d", '"a/b/c" is not a valid label key'],
    [`a=${"v".repeat(64)}`, `"${"v".repeat(64)}" is not a valid label value (up to 63`],
    [`${"k".repeat(64)}=v`, `"${"k".repeat(64)}" is not a valid label key`],
    ["a=-b", '"-b" is not a valid label value'],
  ])("refuses %j: %s", (text, detail) => {
    expect(() => parseLabelSelector(text)).toThrow(`invalid label selector ${JSON.stringify(text)}: ${detail}`);
  });
});

describe("matchesSelector", () => {
  const selector = parseLabelSelector("a=b,e!=f,g in (x,y),h notin (z),i,!j");
  const base = { a: "b", g: "x", i: "" };

  it("matches labels meeting every requirement", () => {
    expect(matchesSelector(base, selector)).toBe(true);
    expect(matchesSelector({ ...base, e: "other", h: "other", g: "y" }, selector)).toBe(true);
  });

  it.each<[Record<string, string>, string]>([
    [{ a: "c" }, "a=b"],
    [{ e: "f" }, "e!=f"],
    [{ g: "w" }, "g in (x,y)"],
    [{ h: "z" }, "h notin (z)"],
    [{ j: "" }, "!j"],
  ])("fails %j (%s)", (change, _requirement) => {
    expect(matchesSelector({ ...base, ...change }, selector)).toBe(false);
  });

  it("fails when a required label is missing", () => {
    expect(matchesSelector({ a: "b", g: "x" }, selector)).toBe(false);
    expect(matchesSelector({ a: "b", i: "" }, selector)).toBe(false);
  });

  it("reads matchLabels too", () => {
    expect(matchesSelector({ team: "shop" }, { matchLabels: { team: "shop" } })).toBe(true);
    expect(matchesSelector({ team: "other" }, { matchLabels: { team: "shop" } })).toBe(false);
  });
});
