// Status writes and the Events they record, against the real API server.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { TunnelResource } from "@ktube/api";
import { createLogger, KubeClient, Manager, type KubeObject } from "@ktube/runtime";
import { createTestNamespace, deleteTestNamespace, testKubeConfig } from "@ktube/testenv";
import { writeStatus, type TunnelObject } from "../src/index.ts";
import { tunnel } from "./harness.ts";

const kc = testKubeConfig();
const client = new KubeClient(kc);
let ns: string;
let manager: Manager;

beforeAll(async () => {
  ns = await createTestNamespace(kc, "kit-status");
  manager = new Manager({ kubeConfig: kc, name: "status-test", logger: createLogger({ level: "silent" }), probeAddress: false, metricsAddress: false });
});
afterAll(async () => {
  await manager.stop();
  await deleteTestNamespace(kc, ns);
});

describe("writeStatus", () => {
  it("records one Event for conditions that fail for one cause, none for a write that changes nothing", async () => {
    let t = (await client.create(TunnelResource, tunnel(ns, "down", "any") as KubeObject)) as TunnelObject;
    const cause = { status: "False" as const, reason: "ConnectorsUnavailable", message: "no replica is available" };
    t = await writeStatus(manager, TunnelResource, t, [{ type: "ConnectorsReady", ...cause }, { type: "Ready", ...cause }]);
    expect(manager.events.stats.created).toBe(1);
    expect(t.status?.conditions?.map((c) => [c.type, c.status])).toEqual([["ConnectorsReady", "False"], ["Ready", "False"]]);
    // The same again: no change, so no status write and no Event (not even a series count).
    await writeStatus(manager, TunnelResource, t, [{ type: "ConnectorsReady", ...cause }, { type: "Ready", ...cause }]);
    await manager.events.flush();
    expect(manager.events.stats).toMatchObject({ created: 1, seriesPatches: 0 });
  });
});
