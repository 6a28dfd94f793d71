import { describe, expect, it } from "@jest/globals";
import { jitteredResyncPeriod, resyncKeyDelay, resyncSpreadMs, WorkQueue } from "../src/index.ts";

describe("resync timing", () => {
  it("jitters the period by ±10%", () => {
    expect(jitteredResyncPeriod(600_000, () => 0)).toBe(540_000);
    expect(jitteredResyncPeriod(600_000, () => 0.5)).toBe(600_000);
    expect(jitteredResyncPeriod(600_000, () => 0.999999)).toBe(660_000);
  });

  it("spreads a resync's keys over 10% of the period, at most 30 s", () => {
    expect(resyncSpreadMs(60_000)).toBe(6000);
    expect(resyncSpreadMs(10 * 60_000)).toBe(30_000);
    const delays = Array.from({ length: 1000 }, () => resyncKeyDelay(10 * 60_000));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...delays)).toBeLessThan(30_000);
    // Spread, not bunched: 1,000 keys land in many distinct seconds.
    expect(new Set(delays.map((d) => Math.floor(d / 1000))).size).toBeGreaterThan(20);
  });
});

describe("WorkQueue in-flight work", () => {
  it("reports unfinished work and the longest-running key until they are done", async () => {
    const q = new WorkQueue();
    expect(q.unfinishedWorkSeconds()).toBe(0);
    expect(q.longestRunningProcessorSeconds()).toBe(0);
    q.add("a");
    q.add("b");
    const t0 = Date.now();
    const a = await q.get();
    const b = await q.get();
    expect(q.unfinishedWorkSeconds(t0 + 3000)).toBeGreaterThanOrEqual(5.5);
    expect(q.longestRunningProcessorSeconds(t0 + 3000)).toBeGreaterThanOrEqual(2.5);
    q.done(a!);
    q.done(b!);
    expect(q.unfinishedWorkSeconds()).toBe(0);
    expect(q.longestRunningProcessorSeconds()).toBe(0);
  });
});
