// Cloudflare refuses a tunnel's ingress configuration (a 400 on the PUT): the Tunnel
// says ConfigApplied=False with Cloudflare's message, its bindings are not Ready and
// show no URL, nothing else breaks, and it recovers once Cloudflare accepts again.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import type { KubeObject } from "@ktube/runtime";
import { binding, cloudflareProvider, condition, connectTunnel, createHarness, service, tunnel, waitForCondition, type Harness } from "./harness.ts";
import { startRefusingProxy } from "./provider/fixtures.ts";

let h: Harness;
let ns: string;
let proxy: Awaited<ReturnType<typeof startRefusingProxy>>;
let refusing = true;

beforeAll(async () => {
  h = await createHarness();
  h.fake.addZone("example.org", h.account);
  proxy = await startRefusingProxy(h.fake.baseUrl, (method, url) =>
    refusing && method === "PUT" && url.endsWith("/configurations") ? { status: 400, code: 1056, message: "Bad Configuration: ingress rule is invalid" } : undefined,
  );
  ns = await h.namespace("cf-rejected");
  await h.client.create(TunnelProviderResource, cloudflareProvider(h, `cf-rejected-${h.id}`) as KubeObject);
  await h.client.create(Core.Service, service(ns, "web", [{ name: "http", port: 80 }]) as KubeObject);
  await h.client.create(TunnelResource, tunnel(ns, "home", `cf-rejected-${h.id}`) as KubeObject);
  await h.startController({ apiUrl: proxy.baseURL });
  await connectTunnel(h, ns, "home");
});
afterAll(async () => {
  await h.close();
  await proxy.stop();
});

describe("a configuration Cloudflare rejects", () => {
  it("is a condition on the Tunnel and on its bindings, not a log line", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "app", { name: "home" }, [{ name: "web", hostname: "app.example.org", service: { name: "web", port: "http" } }]) as KubeObject);
    const t = await waitForCondition(h, "Tunnel", ns, "home", "ConfigApplied", { status: "False", reason: "ConfigRejected" });
    expect(condition(t, "ConfigApplied")?.message).toContain("Bad Configuration: ingress rule is invalid");
    expect(condition(t, "Ready")).toMatchObject({ status: "False", reason: "ConfigRejected" });
    const b = await waitForCondition(h, "TunnelBinding", ns, "app", "Ready", { status: "False", reason: "ConfigRejected" });
    expect(b.routes?.[0]?.url).toBeUndefined();
  });

  it("recovers once Cloudflare accepts the configuration", async () => {
    refusing = false;
    // The next reconcile (here: a change to the tunnel's bindings) sends the configuration again.
    await h.client.create(TunnelBindingResource, binding(ns, "second", { name: "home" }, [{ name: "web", hostname: "second.example.org", service: { name: "web", port: "http" } }]) as KubeObject);
    await waitForCondition(h, "Tunnel", ns, "home", "ConfigApplied", { status: "True" });
    const b = await waitForCondition(h, "TunnelBinding", ns, "app", "Ready", { status: "True" });
    expect(b.routes).toEqual([{ name: "web", ready: true, url: "https://app.example.org/" }]);
  });
});
