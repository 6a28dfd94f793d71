import { describe, expect, it } from "@jest/globals";
import { ExponentialBackoffLimiter, MaxOfLimiter, TokenBucketLimiter, WorkQueue, sleep } from "../src/index.ts";

describe("WorkQueue", () => {
  it("holds a waiting key once however often it is added", async () => {
    const q = new WorkQueue();
    for (let i = 0; i < 100; i++) q.add("a");
    q.add("b");
    expect(q.length).toBe(2);
    expect(await q.get()).toBe("a");
    expect(await q.get()).toBe("b");
  });

  it("never hands out a key that is being processed; a re-add runs after done()", async () => {
    const q = new WorkQueue();
    q.add("a");
    const first = await q.get();
    q.add("a");
    q.add("a");
    expect(q.length).toBe(0); // not handed out while processing
    let second: string | undefined;
    void q.get().then((k) => (second = k));
    await sleep(10);
    expect(second).toBeUndefined();
    q.done(first!);
    await sleep(0);
    expect(second).toBe("a");
  });

  it("keeps the earliest of several delayed adds", async () => {
    const q = new WorkQueue();
    const started = Date.now();
    q.addAfter("a", 1000);
    q.addAfter("a", 50);
    q.addAfter("a", 500);
    expect(await q.get()).toBe("a");
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(45);
    expect(waited).toBeLessThan(500);
  });

  it("debounces: a burst becomes one add once it stops, capped at maxDelay", async () => {
    const q = new WorkQueue();
    const started = Date.now();
    for (let i = 0; i < 5; i++) {
      q.addDebounced("a", 100, 1000);
      await sleep(50);
    }
    expect(q.length).toBe(0); // still bursting
    expect(await q.get()).toBe("a");
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(290); // the last add came at 200 ms, then 100 ms of quiet
    q.done("a");
    const capped = Date.now();
    const burst = setInterval(() => q.addDebounced("b", 100, 300), 20);
    // Without the cap the add would never fire while the burst goes on: get() returning is the proof.
    expect(await q.get()).toBe("b");
    clearInterval(burst);
    expect(Date.now() - capped).toBeGreaterThanOrEqual(295);
  });

  it("shutDownWithDrain waits for keys in flight and hands out no more", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("b");
    const key = await q.get();
    let drained = false;
    const drain = q.shutDownWithDrain().then(() => (drained = true));
    await sleep(20);
    expect(drained).toBe(false);
    expect(await q.get()).toBeUndefined();
    q.done(key!);
    await drain;
    expect(drained).toBe(true);
  });
});

describe("rate limiters", () => {
  it("back off exponentially per key up to the cap, and forget resets", () => {
    const l = new ExponentialBackoffLimiter(5, 15 * 60_000);
    expect([1, 2, 3, 4, 5].map(() => l.when("a"))).toEqual([5, 10, 20, 40, 80]);
    expect(l.when("b")).toBe(5);
    for (let i = 0; i < 40; i++) l.when("a");
    expect(l.when("a")).toBe(15 * 60_000);
    l.forget("a");
    expect(l.when("a")).toBe(5);
  });

  it("the token bucket lets a burst through, then spaces keys at its rate", () => {
    const l = new TokenBucketLimiter(10, 5);
    const delays = Array.from({ length: 8 }, () => l.when());
    expect(delays.slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
    expect(delays[5]).toBeGreaterThanOrEqual(90);
    expect(delays[7]).toBeGreaterThanOrEqual(290);
  });

  it("the default combination takes the longer delay", () => {
    const l = new MaxOfLimiter(new ExponentialBackoffLimiter(1000, 10_000), new TokenBucketLimiter(1000, 1000));
    expect(l.when("a")).toBe(1000);
    expect(l.retries("a")).toBe(1);
  });
});
