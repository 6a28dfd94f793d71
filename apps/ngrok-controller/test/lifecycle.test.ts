// The ngrok controller end to end: the real controller against the test API server, the
// real connector processes running the real @ngrok/ngrok SDK against the fake ngrok cloud,
// and requests sent through the fake's public listeners reaching local backends.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import type { KubeObject } from "@ktube/runtime";
import { afterCreationSecond, eventually, ktubeStatus, waitForKtubeCondition } from "@ktube/testenv";
import { createTestCa, type IssuedCert } from "@ktube/fake-ngrok";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import { binding, createHarness, ngrokProvider, service, startBackend, tunnel, type Agent, type Harness } from "./harness.ts";

let h: Harness;
let ns: string;
let agents: Agent[];
const backends: Array<{ port: number; close(): Promise<void> }> = [];
const upstreams: Record<string, string> = {};
let host: string;
let tlsHost: string;
let secureHost: string;
let backendCert: IssuedCert;
let backendCa: string;

/** A backend that speaks TLS itself (an HTTPS Service, or a TLS one behind a passthrough route). */
async function tlsBackend(name: string, port: number): Promise<void> {
  const server = https.createServer({ cert: backendCert.certPem, key: backendCert.keyPem }, (req, res) => res.writeHead(200).end(`${name} ${req.url}`));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  backends.push({ port: (server.address() as AddressInfo).port, close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))) });
  upstreams[`${name}.${ns}.svc.cluster.local:${port}`] = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  await h.client.create(Core.Service, service(ns, name, port) as KubeObject);
}

async function backend(name: string, port: number): Promise<void> {
  const b = await startBackend(name);
  backends.push(b);
  upstreams[`${name}.${ns}.svc.cluster.local:${port}`] = `127.0.0.1:${b.port}`;
  await h.client.create(Core.Service, service(ns, name, port) as KubeObject);
}

const routeUrl = async (name: string, route: string): Promise<string> => {
  const s = await waitForKtubeCondition(h.kc, "TunnelBinding", ns, name, "Ready", { status: "True" }, 30_000);
  return s.routes!.find((r) => r.name === route)!.url!;
};

beforeAll(async () => {
  h = await createHarness();
  ns = await h.namespace("ngrok-shop");
  host = `shop-${h.id}.example.com`;
  h.fake.reserveDomain(host);
  tlsHost = `tls-${h.id}.example.com`;
  secureHost = `secure-${h.id}.example.com`;
  h.fake.reserveDomain(tlsHost);
  h.fake.reserveDomain(secureHost);
  const ca = createTestCa("backend CA");
  backendCa = ca.caPem;
  backendCert = ca.issue([tlsHost, "secure.internal"]);
  await backend("web", 80);
  await backend("api", 8080);
  await backend("echo", 7000);
  await tlsBackend("vault", 8443);
  await h.startController();
  await h.client.create(TunnelProviderResource, ngrokProvider(h, `ngrok-${h.id}`) as KubeObject);
  await h.client.create(TunnelResource, tunnel(ns, "home", `ngrok-${h.id}`, { replicas: 2 }) as KubeObject);
  agents = await h.runAgents(ns, "home", { upstreams, heartbeatS: 1 });
}, 90_000);

afterAll(async () => {
  await h?.close();
  await Promise.all(backends.map((b) => b.close()));
});

describe("ngrok controller", () => {
  it("verifies the authtoken with ngrok", async () => {
    const s = await waitForKtubeCondition(h.kc, "TunnelProvider", undefined, `ngrok-${h.id}`, "Ready", { status: "True", reason: "CredentialsVerified" });
    expect(s.conditions?.find((c) => c.type === "Ready")?.message).toContain("verified");
  });

  it("reports an authtoken ngrok refuses, with ngrok's code", async () => {
    await h.client.create(Core.Secret, { metadata: { name: "ngrok-bad", namespace: h.controllerNs }, stringData: { authtoken: "2abcdefghijklmnopqrstuvwxyz_0123456789ABCDEFGHIJ" } } as KubeObject);
    await h.client.create(TunnelProviderResource, ngrokProvider(h, `ngrok-bad-${h.id}`, { authtokenSecretRef: { name: "ngrok-bad", key: "authtoken" } }) as KubeObject);
    const s = await waitForKtubeCondition(h.kc, "TunnelProvider", undefined, `ngrok-bad-${h.id}`, "Ready", { status: "False", reason: "InvalidCredentials" });
    const message = s.conditions!.find((c) => c.type === "Ready")!.message!;
    expect(message).toMatch(/ERR_NGROK_10[57]/);
    expect(message).not.toContain("2abcdefghijklmnopqrstuvwxyz");
  });

  it("runs the agents under their own least-privilege identity, and they come online", async () => {
    await eventually(async () => {
      const s = await waitForKtubeCondition(h.kc, "Tunnel", ns, "home", "Ready", { status: "True", reason: "AgentsOnline" });
      expect(s.conditions!.find((c) => c.type === "Ready")!.message).toBe("2 agent sessions online");
    }, 30_000);
    expect(h.fake.account.sessions.size).toBeGreaterThanOrEqual(2);
  });

  it("serves a hostname, with several paths routed to their Services", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "shop", "home", [
      { name: "web", hostname: host, service: { name: "web", port: 80 } },
      { name: "api", hostname: host, path: "/api", service: { name: "api", port: "http" } },
    ]) as KubeObject);
    expect(await routeUrl("shop", "web")).toBe(`https://${host}/`);
    expect(await routeUrl("shop", "api")).toBe(`https://${host}/api`);
    expect(await h.fake.httpGet(host, "/index.html")).toEqual({ status: 200, body: "web /index.html" });
    expect(await h.fake.httpGet(host, "/api/orders")).toEqual({ status: 200, body: "api /api/orders" });
    // Pooled: both agents serve the one URL.
    expect(h.fake.account.endpointsAt(`https://${host}`)).toHaveLength(2);
  });

  it("refuses a second binding's claim on a hostname and path another binding holds, naming it", async () => {
    // Strictly younger than the holder (ages have one-second resolution; ties go by name).
    await afterCreationSecond(await h.client.get(TunnelBindingResource, ns, "shop"));
    await h.client.create(TunnelBindingResource, binding(ns, "late", "home", [{ name: "api", hostname: host, path: "/api", service: { name: "web", port: 80 } }]) as KubeObject);
    const s = await waitForKtubeCondition(h.kc, "TunnelBinding", ns, "late", "Accepted", { status: "False", reason: "Conflict" });
    expect(s.conditions!.find((c) => c.type === "Accepted")!.message).toContain(`${ns}/shop`);
    // The holder keeps serving its path.
    expect(await h.fake.httpGet(host, "/api/still")).toEqual({ status: 200, body: "api /api/still" });
  });

  it("gives a hostname-less route the account's dev domain", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "dev", "home", [{ name: "web", service: { name: "web", port: 80 } }]) as KubeObject);
    const url = await routeUrl("dev", "web");
    expect(url).toBe(`https://${h.fake.account.devDomain}/`);
    expect(await h.fake.httpGet(h.fake.account.devDomain, "/x")).toEqual({ status: 200, body: "web /x" });
  });

  it("serves TCP on an address ngrok assigns, from one agent", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "echo", "home", [{ name: "tcp", protocol: "TCP", service: { name: "echo", port: 7000 } }]) as KubeObject);
    const url = new URL(await routeUrl("echo", "tcp"));
    expect(url.protocol).toBe("tcp:");
    // The backend is HTTP; a raw request over the TCP address reaches it.
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(url.port), url.hostname, () => socket.write(`GET /raw HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
      let data = "";
      socket.on("data", (d) => (data += d.toString()));
      socket.on("end", () => resolve(data));
      socket.on("error", reject);
    });
    expect(reply).toContain("echo /raw");
    expect(h.fake.account.endpointsAt(url.href.replace(/\/$/, ""))).toHaveLength(1);
  });

  it("passes TLS through by SNI: the client sees the Service's own certificate", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "vault", "home", [{ name: "tls", protocol: "TLS", hostname: tlsHost, service: { name: "vault", port: 8443 } }]) as KubeObject);
    expect(await routeUrl("vault", "tls")).toMatch(new RegExp(`^tls://${tlsHost.replaceAll(".", "\\.")}`));
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host: "127.0.0.1", port: h.fake.ingress.publicTlsPort, servername: tlsHost, ca: backendCa }, () => {
        socket.write(`GET /sealed HTTP/1.1\r\nHost: ${tlsHost}\r\nConnection: close\r\n\r\n`);
      });
      let data = "";
      socket.on("data", (d) => (data += d.toString()));
      socket.on("end", () => resolve(data));
      socket.on("error", reject);
    });
    expect(reply).toContain("vault /sealed");
  });

  it("reaches an HTTPS Service over TLS (its in-cluster certificate need not name the Service)", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "secure", "home", [{ name: "web", protocol: "HTTPS", hostname: secureHost, service: { name: "vault", port: 8443 } }]) as KubeObject);
    expect(await routeUrl("secure", "web")).toBe(`https://${secureHost}/`);
    expect(await h.fake.httpGet(secureHost, "/over-tls")).toEqual({ status: 200, body: "vault /over-tls" });
  });

  it("refuses UDP with a reason, without touching the other routes", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "dns", "home", [{ name: "dns", protocol: "UDP", service: { name: "echo", port: 7000 } }]) as KubeObject);
    const s = await waitForKtubeCondition(h.kc, "TunnelBinding", ns, "dns", "Accepted", { status: "False", reason: "UnsupportedProtocol" });
    expect(s.conditions!.find((c) => c.type === "Accepted")!.message).toContain("ngrok");
    expect((await ktubeStatus(h.kc, "TunnelBinding", ns, "shop")).conditions!.find((c) => c.type === "Ready")!.status).toBe("True");
  });

  it("keeps serving through a pooled endpoint when one agent is killed", async () => {
    await agents[0]!.process.kill();
    // The fake sees the dead session go (its transport closed); the other agent still serves.
    await eventually(() => expect(h.fake.account.endpointsAt(`https://${host}`)).toHaveLength(1), 15_000);
    expect(await h.fake.httpGet(host, "/still")).toEqual({ status: 200, body: "web /still" });
  });

  it("keeps traffic flowing while the controller is down", async () => {
    await h.stopController();
    expect(await h.fake.httpGet(host, "/no-controller")).toEqual({ status: 200, body: "web /no-controller" });
    await h.startController();
  });

  it("closes a route's endpoint when its binding is deleted", async () => {
    await h.client.delete(TunnelBindingResource, ns, "dev");
    await eventually(() => expect(h.fake.account.endpointsAt(`https://${h.fake.account.devDomain}`)).toHaveLength(0), 20_000);
    expect(await h.fake.httpGet(host, "/")).toEqual({ status: 200, body: "web /" });
  });
});
