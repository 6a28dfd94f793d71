import { describe, expect, it } from "@jest/globals";
import { findCondition, isConditionTrue, removeCondition, setCondition } from "../src/index.ts";

const t0 = new Date("2026-01-01T00:00:00.000Z");
const t1 = new Date("2026-01-01T00:05:00.000Z");

describe("setCondition", () => {
  it("adds a condition with the time and observedGeneration", () => {
    const list = setCondition([], { type: "Ready", status: "False", reason: "Pending", message: "waiting" }, 3, t0);
    expect(list).toEqual([
      { type: "Ready", status: "False", reason: "Pending", message: "waiting", observedGeneration: 3, lastTransitionTime: "2026-01-01T00:00:00Z" },
    ]);
  });

  it("keeps lastTransitionTime when only reason or message change", () => {
    const first = setCondition([], { type: "Ready", status: "False", reason: "Pending", message: "a" }, 1, t0);
    const second = setCondition(first, { type: "Ready", status: "False", reason: "Failed", message: "b" }, 2, t1);
    expect(second[0]).toMatchObject({ reason: "Failed", message: "b", observedGeneration: 2, lastTransitionTime: "2026-01-01T00:00:00Z" });
  });

  it("moves lastTransitionTime when the status changes", () => {
    const first = setCondition([], { type: "Ready", status: "False", reason: "Pending", message: "a" }, 1, t0);
    const second = setCondition(first, { type: "Ready", status: "True", reason: "Ready", message: "" }, 1, t1);
    expect(second[0]?.lastTransitionTime).toBe("2026-01-01T00:05:00Z");
  });

  it("is a no-op when nothing changes, so callers can skip the write", () => {
    const input = { type: "Ready", status: "True" as const, reason: "Ready", message: "ok" };
    const first = setCondition([], input, 1, t0);
    expect(setCondition(first, input, 1, t1)).toEqual(first);
  });

  it("leaves other conditions alone and does not mutate its input", () => {
    const first = setCondition([], { type: "Accepted", status: "True", reason: "Accepted", message: "" }, 1, t0);
    const frozen = Object.freeze([...first]);
    const second = setCondition(frozen, { type: "Ready", status: "True", reason: "Ready", message: "" }, 1, t1);
    expect(second.map((c) => c.type)).toEqual(["Accepted", "Ready"]);
    expect(frozen).toHaveLength(1);
    expect(isConditionTrue(second, "Ready")).toBe(true);
    expect(findCondition(removeCondition(second, "Ready"), "Ready")).toBeUndefined();
  });

  it("truncates messages to the API's 32768 characters", () => {
    const list = setCondition([], { type: "Ready", status: "False", reason: "X", message: "m".repeat(40000) }, 1, t0);
    expect(list[0]?.message).toHaveLength(32768);
  });
});
