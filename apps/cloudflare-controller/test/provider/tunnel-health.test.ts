// Tunnel health for an account from one shared listing, not one GET per tunnel.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { TunnelHealth } from "../../src/provider/tunnel-health.ts";
import { findOrCreateTunnel } from "../../src/provider/tunnels.ts";
import { startFake, type FakeAccount } from "./fixtures.ts";

let cf: FakeAccount;

beforeAll(async () => {
  cf = await startFake();
});
afterAll(() => cf.stop());

const calls = (name: string) => cf.fake.requests.filter((r) => r.name === name).length;

describe("TunnelHealth", () => {
  it("answers for every tunnel of the account from one listing, shared by concurrent callers", async () => {
    const api = cf.api();
    const tunnels = await Promise.all(Array.from({ length: 20 }, (_, i) => findOrCreateTunnel(api, `health-${i}`)));
    for (const t of tunnels) cf.fake.setConnections(t.id, 2);
    const health = new TunnelHealth();
    const [lists, gets] = [calls("tunnels.list"), calls("tunnels.get")];
    const seen = await Promise.all(tunnels.map((t) => health.tunnel(api, t.id)));
    expect(seen.map((t) => t?.connections?.length)).toEqual(tunnels.map(() => 2));
    // Again within the interval: no call at all.
    await Promise.all(tunnels.map((t) => health.tunnel(api, t.id)));
    expect(calls("tunnels.list") - lists).toBe(1);
    expect(calls("tunnels.get") - gets).toBe(0);
  });

  it("reads again soon for a tunnel it is waiting on, and says nothing of one the account does not have", async () => {
    const api = cf.api();
    const waiting = await findOrCreateTunnel(api, "health-waiting");
    const health = new TunnelHealth({ ttlMs: 60_000, waitingTtlMs: 0 });
    expect((await health.tunnel(api, waiting.id))?.connections ?? []).toEqual([]);
    cf.fake.setConnections(waiting.id, 1);
    expect((await health.tunnel(api, waiting.id))?.connections).toHaveLength(1);
    expect(await health.tunnel(api, "00000000-0000-4000-8000-000000000000")).toBeUndefined();
  });
});
