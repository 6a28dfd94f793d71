import { describe, expect, it } from "@jest/globals";
import { changed, type KubeObject, ObjectStore } from "../src/index.ts";

const obj = (name: string, labels: Record<string, string> = {}): KubeObject => ({ metadata: { name, labels } });
const byTeam = (o: KubeObject): string[] => (o.metadata?.labels?.team ? o.metadata.labels.team.split(",") : []);
const names = (objs: KubeObject[]): string[] => objs.map((o) => o.metadata!.name!).sort();

describe("ObjectStore indexes", () => {
  it("files objects under every value, moves them on update and forgets them on delete", () => {
    const store = new ObjectStore<KubeObject>();
    store.addIndex("team", byTeam);
    store.set("a", obj("a", { team: "red,blue" }));
    store.set("b", obj("b", { team: "red" }));
    expect(names(store.byIndex("team", "red"))).toEqual(["a", "b"]);
    expect(names(store.byIndex("team", "blue"))).toEqual(["a"]);

    store.set("a", obj("a", { team: "green" }));
    expect(names(store.byIndex("team", "red"))).toEqual(["b"]);
    expect(store.byIndex("team", "blue")).toEqual([]);
    expect(names(store.byIndex("team", "green"))).toEqual(["a"]);

    store.delete("b");
    expect(store.byIndex("team", "red")).toEqual([]);
    expect(store.indexValues("team")).toEqual(["green"]); // no empty buckets left behind
  });

  it("indexes what it holds already when an index is added; a throwing index function files nothing", () => {
    const errors: string[] = [];
    const store = new ObjectStore<KubeObject>((index, key) => errors.push(`${index}:${key}`));
    store.set("a", obj("a", { team: "red" }));
    store.set("bad", obj("bad", { team: "red" }));
    store.addIndex("team", (o) => {
      if (o.metadata?.name === "bad") throw new Error("boom");
      return byTeam(o);
    });
    expect(names(store.byIndex("team", "red"))).toEqual(["a"]);
    expect(errors).toEqual(["team:bad"]);
    expect(() => store.addIndex("team", byTeam)).toThrow(/already exists/);
  });
});

describe("changed predicate", () => {
  it("passes only when the selected value differs by deep equality", () => {
    const ready = changed((o) => [o.metadata?.labels, o.metadata?.generation]);
    const a = { metadata: { name: "a", generation: 1, labels: { x: "1" }, resourceVersion: "1" } };
    expect(ready(a, { metadata: { ...a.metadata, resourceVersion: "2" } })).toBe(false);
    expect(ready(a, { metadata: { ...a.metadata, labels: { x: "1" } } })).toBe(false);
    expect(ready(a, { metadata: { ...a.metadata, labels: { x: "2" } } })).toBe(true);
    expect(ready(a, { metadata: { ...a.metadata, generation: 2 } })).toBe(true);
  });
});
