// TCP routes on a provider with an API key: a reserved address per route, recorded in the
// binding's status, pooled across the agents, released or retained as the Tunnel says, and
// never reserved twice (a create whose answer was lost is adopted, not repeated).
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import type { KubeObject } from "@ktube/runtime";
import { eventually, waitForKtubeCondition } from "@ktube/testenv";
import net from "node:net";
import { binding, createHarness, ngrokProvider, service, startBackend, tunnel, type Harness } from "./harness.ts";

let h: Harness;
let ns: string;
let stopBackend: () => Promise<void>;
const upstreams: Record<string, string> = {};

const tcpRoute = [{ name: "db", protocol: "TCP", service: { name: "db", port: 5432 } }];

async function reservationOf(name: string): Promise<{ id: string; address?: string }> {
  const s = await waitForKtubeCondition(h.kc, "TunnelBinding", ns, name, "Ready", { status: "True" }, 30_000);
  const route = s.routes![0]!;
  expect(route.url).toBe(`tcp://${route.reservation?.address}`);
  return route.reservation!;
}

function request(address: string): Promise<string> {
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), host, () => socket.write("GET /tcp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    let data = "";
    socket.on("data", (d) => (data += d.toString()));
    socket.on("end", () => resolve(data));
    socket.on("error", reject);
  });
}

beforeAll(async () => {
  h = await createHarness();
  ns = await h.namespace("ngrok-tcp");
  const db = await startBackend("db");
  stopBackend = db.close;
  upstreams[`db.${ns}.svc.cluster.local:5432`] = `127.0.0.1:${db.port}`;
  await h.client.create(Core.Service, service(ns, "db", 5432) as KubeObject);
  await h.startController();
  await h.client.create(TunnelProviderResource, ngrokProvider(h, `ngrok-${h.id}`, { apiKeySecretRef: { name: "ngrok", key: "apiKey" } }) as KubeObject);
  await h.client.create(TunnelResource, tunnel(ns, "home", `ngrok-${h.id}`, { replicas: 2 }) as KubeObject);
  await h.client.create(TunnelResource, tunnel(ns, "keep", `ngrok-${h.id}`, { replicas: 1, tcpAddressReclaimPolicy: "Retain" }) as KubeObject);
  await h.runAgents(ns, "home", { upstreams, heartbeatS: 1 });
  await h.runAgents(ns, "keep", { upstreams, heartbeatS: 1 });
  await waitForKtubeCondition(h.kc, "TunnelProvider", undefined, `ngrok-${h.id}`, "Ready", { status: "True", reason: "CredentialsVerified" });
}, 90_000);

afterAll(async () => {
  expect(h.fake.api.schemaViolations).toEqual([]);
  expect(h.fake.api.responseViolations).toEqual([]);
  await h?.close();
  await stopBackend?.();
});

describe("reserved TCP addresses", () => {
  it("reserves one per route, records it, and every agent serves it", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "pg", "home", tcpRoute) as KubeObject);
    const reservation = await reservationOf("pg");
    expect(reservation.id).toMatch(/^ra_/);
    expect(h.fake.account.reservedAddrs.get(reservation.id)?.addr).toBe(reservation.address);
    await eventually(() => expect(h.fake.account.endpointsAt(`tcp://${reservation.address}`)).toHaveLength(2), 20_000);
    expect(await request(reservation.address!)).toContain("db /tcp");
    // No names in clear in what ngrok stores.
    expect(h.fake.account.reservedAddrs.get(reservation.id)!.metadata).not.toContain(ns);
  });

  it("adopts the address whose create answer was lost instead of reserving a second one", async () => {
    h.fake.api.injectFault("ReservedAddrsCreate", { count: 1, kind: "5xx", when: "after" });
    const before = h.fake.account.reservedAddrs.size;
    await h.client.create(TunnelBindingResource, binding(ns, "retry", "home", tcpRoute) as KubeObject);
    const reservation = await reservationOf("retry");
    expect(h.fake.account.reservedAddrs.size).toBe(before + 1);
    expect(h.fake.account.reservedAddrs.has(reservation.id)).toBe(true);
  });

  it("releases the address of a deleted binding on a Delete tunnel", async () => {
    const reservation = await reservationOf("pg");
    await h.client.delete(TunnelBindingResource, ns, "pg");
    await eventually(() => expect(h.fake.account.reservedAddrs.has(reservation.id)).toBe(false), 20_000);
    await eventually(() => h.client.get(TunnelBindingResource, ns, "pg").then(() => Promise.reject(new Error("still there")), () => undefined), 20_000);
  });

  it("keeps the address on a Retain tunnel, and gives it back to the binding when it returns", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "kept", "keep", tcpRoute) as KubeObject);
    const first = await reservationOf("kept");
    await h.client.delete(TunnelBindingResource, ns, "kept");
    await eventually(() => h.client.get(TunnelBindingResource, ns, "kept").then(() => Promise.reject(new Error("still there")), () => undefined), 20_000);
    expect(h.fake.account.reservedAddrs.has(first.id)).toBe(true);
    await h.client.create(TunnelBindingResource, binding(ns, "kept", "keep", tcpRoute) as KubeObject);
    const again = await reservationOf("kept");
    expect(again).toEqual(first);
    expect(await request(again.address!)).toContain("db /tcp");
  });

  it("never releases an address KTube did not reserve", async () => {
    const own = await fetch(`${h.fake.apiUrl}/reserved_addrs`, {
      method: "POST",
      headers: { authorization: `Bearer ${h.apiKey}`, "ngrok-version": "2", "content-type": "application/json" },
      body: JSON.stringify({ description: "reserved by hand", metadata: "" }),
    }).then((r) => r.json() as Promise<{ id: string }>);
    await h.client.create(TunnelBindingResource, binding(ns, "short", "home", tcpRoute) as KubeObject);
    const reservation = await reservationOf("short");
    expect(reservation.id).not.toBe(own.id);
    await h.client.delete(TunnelBindingResource, ns, "short");
    await eventually(() => expect(h.fake.account.reservedAddrs.has(reservation.id)).toBe(false), 20_000);
    expect(h.fake.account.reservedAddrs.has(own.id)).toBe(true);
  });
});
