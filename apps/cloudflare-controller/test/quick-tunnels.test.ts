// Quick tunnels: no account, a cloudflared connector per route, its random URL in status.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import { ApiError, PatchType, type KubeObject } from "@ktube/runtime";
import { eventually } from "@ktube/testenv";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { binding, cloudflareProvider, condition, createHarness, provider, service, tunnel, waitForCondition, type Harness } from "./harness.ts";

let h: Harness;
let ns: string;
let server: Server;

beforeAll(async () => {
  h = await createHarness();
  ns = await h.namespace("cf-quick");
  // Stands in for the connectors' metrics endpoints: /<deployment>/quicktunnel.
  server = createServer((req, res) => {
    const name = req.url!.split("/")[1]!;
    // A tenant controls the pod behind a connector's Service: it may answer anything.
    const hostname = name.includes("evil") ? "login.bank.example" : `${name}-words.trycloudflare.com`;
    res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ hostname }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await h.startController({ quickTunnelEndpoint: (_namespace, name) => `http://127.0.0.1:${port}/${name}/quicktunnel` });
  await h.client.create(TunnelProviderResource, provider(h, `quick-${h.id}`, { cloudflare: { quickTunnels: true } }) as KubeObject);
  await h.client.create(TunnelResource, tunnel(ns, "dev", `quick-${h.id}`, { cloudflare: undefined }) as KubeObject);
  await h.client.create(Core.Service, service(ns, "whoami", [{ name: "http", port: 80 }]) as KubeObject);
});
afterAll(async () => {
  server.close();
  await h.close();
});

/** Plays the kubelet and Deployment controller, which testenv does not run. */
const markAvailable = (name: string) =>
  h.client.patch(Core.Deployment, ns, name, { status: { replicas: 1, readyReplicas: 1, availableReplicas: 1 } }, PatchType.merge, { subresource: "status" });

describe("quick tunnels", () => {
  it("need no account: provider and tunnel are Ready without a Cloudflare call", async () => {
    await waitForCondition(h, "TunnelProvider", undefined, `quick-${h.id}`, "Ready", { status: "True", reason: "QuickTunnels" });
    await waitForCondition(h, "Tunnel", ns, "dev", "Ready", { status: "True", reason: "QuickTunnels" });
    expect(h.fake.requests).toEqual([]);
  });

  it("run a connector per route and put its trycloudflare.com URL in status", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "whoami", { name: "dev" }, [{ name: "web", service: { name: "whoami", port: "http" } }]) as KubeObject);
    const deployment = await eventually(() => h.client.get<KubeObject & { spec: { template: { spec: { containers: Array<{ args: string[] }> } } } }>(Core.Deployment, ns, "qt-whoami-web"));
    expect(deployment.spec.template.spec.containers[0]!.args).toEqual(["tunnel", "--no-autoupdate", "--metrics", "0.0.0.0:2000", "--url", `http://whoami.${ns}.svc.cluster.local:80`]);
    expect(deployment.metadata?.ownerReferences?.[0]).toMatchObject({ kind: "TunnelBinding", name: "whoami" });
    await eventually(() => h.client.get(Core.Service, ns, "qt-whoami-web")); // applied right after the Deployment
    const waiting = await waitForCondition(h, "TunnelBinding", ns, "whoami", "Ready", { status: "False" });
    expect(waiting.routes?.[0]?.message).toBe("waiting for the quick tunnel connector");
    expect(waiting.routes?.[0]?.url).toBeUndefined();
    await markAvailable("qt-whoami-web");
    const ready = await waitForCondition(h, "TunnelBinding", ns, "whoami", "Ready", { status: "True" });
    expect(ready.routes).toEqual([{ name: "web", url: "https://qt-whoami-web-words.trycloudflare.com/", ready: true }]);
    expect(h.fake.requests).toEqual([]);
  });

  it("refuse a hostname, which a quick tunnel cannot have", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "named", { name: "dev" }, [{ name: "web", hostname: "app.example.com", service: { name: "whoami", port: "http" } }]) as KubeObject);
    const s = await waitForCondition(h, "TunnelBinding", ns, "named", "Accepted", { status: "False", reason: "UnsupportedField" });
    expect(condition(s, "Accepted")?.message).toContain("does not support hostname");
  });

  it("refuse a URL outside trycloudflare.com that a connector reports", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "evil", { name: "dev" }, [{ name: "web", service: { name: "whoami", port: "http" } }]) as KubeObject);
    await eventually(() => h.client.get(Core.Deployment, ns, "qt-evil-web"));
    await markAvailable("qt-evil-web");
    const s = await waitForCondition(h, "TunnelBinding", ns, "evil", "Ready", { status: "False", reason: "InvalidQuickTunnelURL" });
    expect(s.routes?.[0]?.url).toBeUndefined();
    expect(s.routes?.[0]?.message).toContain("is not a trycloudflare.com hostname");
  });

  it("remove a binding's connectors when its Tunnel goes", async () => {
    await h.client.create(TunnelResource, tunnel(ns, "brief", `quick-${h.id}`, { cloudflare: undefined }) as KubeObject);
    await h.client.create(TunnelBindingResource, binding(ns, "short", { name: "brief" }, [{ name: "web", service: { name: "whoami", port: "http" } }]) as KubeObject);
    await eventually(() => h.client.get(Core.Deployment, ns, "qt-short-web"));
    await eventually(() => h.client.get(Core.Service, ns, "qt-short-web"));
    await h.client.delete(TunnelResource, ns, "brief");
    await waitForCondition(h, "TunnelBinding", ns, "short", "Accepted", { status: "False", reason: "TunnelNotFound" });
    await eventually(async () => {
      expect(await h.client.get(Core.Deployment, ns, "qt-short-web").catch((e: unknown) => e)).toBeInstanceOf(ApiError);
      expect(await h.client.get(Core.Service, ns, "qt-short-web").catch((e: unknown) => e)).toBeInstanceOf(ApiError);
    });
  });

  it("remove a binding's connectors when it moves to a named tunnel", async () => {
    await h.client.create(TunnelProviderResource, cloudflareProvider(h, `named-${h.id}`) as KubeObject);
    await h.client.create(TunnelResource, tunnel(ns, "named", `named-${h.id}`) as KubeObject);
    await h.client.create(TunnelBindingResource, binding(ns, "mover", { name: "dev" }, [{ name: "web", service: { name: "whoami", port: "http" } }]) as KubeObject);
    await eventually(() => h.client.get(Core.Deployment, ns, "qt-mover-web"));
    await h.client.patch(TunnelBindingResource, ns, "mover", { spec: { tunnelRef: { name: "named" } } }, PatchType.merge);
    // On a named tunnel the route needs a hostname: the binding is refused there, and its quick connector goes.
    await waitForCondition(h, "TunnelBinding", ns, "mover", "Accepted", { status: "False", reason: "HostnameRequired" });
    await eventually(async () => expect(await h.client.get(Core.Deployment, ns, "qt-mover-web").catch((e: unknown) => e)).toBeInstanceOf(ApiError));
  });

  it("remove the connector of a route that is gone", async () => {
    await h.client.patch(TunnelBindingResource, ns, "whoami", [{ op: "replace", path: "/spec/routes/0/name", value: "site" }], PatchType.json);
    await eventually(() => h.client.get(Core.Deployment, ns, "qt-whoami-site"));
    await eventually(async () => expect(await h.client.get(Core.Deployment, ns, "qt-whoami-web").catch((e: unknown) => e)).toBeInstanceOf(ApiError));
  });
});
