// A token with Tunnel and DNS rights but none for Access (least privilege for users who
// do not use Access): plain routes are served, and bindings come and go, without a
// single Access call; a route that asks for Access says why it cannot have it.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import { ApiError, type KubeObject } from "@ktube/runtime";
import { eventually } from "@ktube/testenv";
import { binding, cloudflareProvider, connectTunnel, createHarness, service, tunnel, waitForCondition, type Harness } from "./harness.ts";
import { startAccessDenyingProxy } from "./provider/fixtures.ts";

let h: Harness;
let ns: string;
let proxy: Awaited<ReturnType<typeof startAccessDenyingProxy>>;
const accessCalls = async () => {
  const metrics = h.manager!.metrics;
  const { values } = await metrics.registry.getSingleMetric("ktube_provider_requests_total")!.get();
  return values.filter((v) => String(v.labels.operation).startsWith("access.")).reduce((n, v) => n + v.value, 0);
};

beforeAll(async () => {
  h = await createHarness();
  h.fake.addZone("example.com", h.account);
  proxy = await startAccessDenyingProxy(h.fake.baseUrl);
  ns = await h.namespace("cf-noaccess");
  await h.client.create(TunnelProviderResource, cloudflareProvider(h, `cf-noaccess-${h.id}`) as KubeObject);
  await h.client.create(TunnelResource, tunnel(ns, "home", `cf-noaccess-${h.id}`) as KubeObject);
  await h.client.create(Core.Service, service(ns, "web", [{ name: "http", port: 80 }]) as KubeObject);
  await h.startController({ apiUrl: proxy.baseURL });
  await connectTunnel(h, ns, "home");
});
afterAll(async () => {
  await h.close();
  await proxy.stop();
});

describe("a token without Access rights", () => {
  it("serves plain routes and deletes their bindings without calling Access", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "plain", { name: "home" }, [{ name: "web", hostname: "plain.example.com", service: { name: "web", port: "http" } }]) as KubeObject);
    await waitForCondition(h, "TunnelBinding", ns, "plain", "Ready", { status: "True" });
    await h.client.delete(TunnelBindingResource, ns, "plain");
    await eventually(() => expect(h.client.get(TunnelBindingResource, ns, "plain")).rejects.toBeInstanceOf(ApiError));
    expect([...h.fake.records.values()].some((r) => r.name.includes("plain.example.com"))).toBe(false);
    expect(await accessCalls()).toBe(0);
  });

  it("says AccessNotPermitted on a route that asks for Access, and serves the binding's other routes", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "mixed", { name: "home" }, [
      { name: "open", hostname: "open.example.com", service: { name: "web", port: "http" } },
      { name: "admin", hostname: "admin.example.com", service: { name: "web", port: "http" }, access: { emails: ["alice@example.com"] } },
    ]) as KubeObject);
    const s = await waitForCondition(h, "TunnelBinding", ns, "mixed", "Ready", { status: "False", reason: "AccessNotPermitted" });
    expect(s.routes?.find((r) => r.name === "open")).toEqual({ name: "open", ready: true, url: "https://open.example.com/" });
    expect(s.routes?.find((r) => r.name === "admin")).toMatchObject({ ready: false });
    expect(s.routes?.find((r) => r.name === "admin")?.url).toBeUndefined();
    // Not published without its login in front: no DNS record points the name at the tunnel.
    expect([...h.fake.records.values()].filter((r) => r.name.endsWith("admin.example.com"))).toEqual([]);
    expect([...h.fake.records.values()].some((r) => r.name === "open.example.com")).toBe(true);
  });
});
