// What the ngrok bench starts from: the test control plane, the fake ngrok cloud (an
// authtoken, an API key so TCP routes reserve addresses through the REST API, a reserved
// domain per HTTP route), two local backends standing in for the Services `web` (HTTP)
// and `echo` (TCP), the TunnelProvider; and helpers to make bindings and wait for them.
import { Core, TunnelBindingResource, TunnelProviderResource } from "@ktube/api";
import { FakeNgrok } from "@ktube/fake-ngrok";
import { KubeClient, type KubeObject } from "@ktube/runtime";
import { ControlPlane, installCrds } from "@ktube/testenv";
import type { KubeConfig } from "@kubernetes/client-node";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { BenchOptions } from "./options.ts";

export const NS = "bench";
export const PROVIDER = "bench";
export const TUNNEL = "home";
export const DOMAIN = "bench.example.com";
export const log = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface BenchEnv {
  controlPlane: ControlPlane;
  kc: KubeConfig;
  client: KubeClient;
  fake: FakeNgrok;
  /** Where the agents reach each Service from this machine: `svc.ns.svc.cluster.local:port` → `127.0.0.1:PORT`. */
  upstreams: Record<string, string>;
  stop(): Promise<void>;
}

/** A binding as the bench reads it: its conditions and route URLs. */
export type BindingStatus = KubeObject & { status?: { conditions?: Array<{ type: string; status: string }>; routes?: Array<{ name: string; url?: string }> } };
export const isReady = (o: BindingStatus): boolean => o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

/** Binding `i` is TCP for `tcp` of the `bindings` indexes, spread evenly (so reservations are spread over the creation). */
export const isTcp = (i: number, { bindings, tcp }: BenchOptions): boolean => Math.floor(((i + 1) * tcp) / bindings) > Math.floor((i * tcp) / bindings);
export const hostnameOf = (i: number): string => `b${i}.${DOMAIN}`;

export async function startEnv(options: BenchOptions): Promise<BenchEnv> {
  const controlPlane = new ControlPlane({ log });
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void controlPlane.stop().then(() => process.exit(130)));
  await controlPlane.start();
  const kc = controlPlane.kubeConfig();
  await installCrds(kc);
  const client = new KubeClient(kc);
  // Every replica binds every endpoint (pooled): the plan must allow replicas × bindings online endpoints (default 200).
  const fake = new FakeNgrok({ limits: { maxEndpoints: options.replicas * options.bindings }, api: { latencyMs: options.latencyMs } });
  const authtoken = fake.addAuthtoken();
  const apiKey = fake.addApiKey();
  for (let i = 0; i < options.bindings; i++) if (!isTcp(i, options)) fake.reserveDomain(hostnameOf(i));
  await fake.start();
  const backends = await Promise.all([startBackend("web"), startBackend("echo")]);
  const upstreams = { [`web.${NS}.svc.cluster.local:80`]: `127.0.0.1:${backends[0].port}`, [`echo.${NS}.svc.cluster.local:7000`]: `127.0.0.1:${backends[1].port}` };

  await client.create(Core.Namespace, { metadata: { name: NS } });
  await client.create(Core.Secret, { metadata: { name: "ngrok", namespace: NS }, stringData: { authtoken, apiKey } } as KubeObject);
  await client.create(Core.Service, { metadata: { name: "web", namespace: NS }, spec: { ports: [{ name: "http", port: 80 }] } } as KubeObject);
  await client.create(Core.Service, { metadata: { name: "echo", namespace: NS }, spec: { ports: [{ name: "tcp", port: 7000 }] } } as KubeObject);
  await client.create(TunnelProviderResource, {
    metadata: { name: PROVIDER },
    spec: { type: "ngrok", ngrok: { authtokenSecretRef: { name: "ngrok", key: "authtoken" }, apiKeySecretRef: { name: "ngrok", key: "apiKey" } } },
  } as KubeObject);
  return {
    controlPlane,
    kc,
    client,
    fake,
    upstreams,
    async stop() {
      await Promise.all(backends.map((b) => b.close()));
      await fake.stop();
      await controlPlane.stop();
    },
  };
}

/** A Service's stand-in on loopback: answers any HTTP request with its name and the path. */
async function startBackend(name: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => res.writeHead(200, { "content-type": "text/plain" }).end(`${name} ${req.url}`));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Creates the bindings, 32 requests in parallel (like `kubectl apply` of many files): HTTP ones on their reserved hostname, TCP ones on a reserved address. */
export async function createBindings(env: BenchEnv, options: BenchOptions): Promise<void> {
  await parallel(options.bindings, 32, async (i) => {
    const route = isTcp(i, options)
      ? { name: "tcp", protocol: "TCP", service: { name: "echo", port: 7000 } }
      : { name: "web", hostname: hostnameOf(i), service: { name: "web", port: "http" } };
    await env.client.create(TunnelBindingResource, { metadata: { name: `b${i}`, namespace: NS }, spec: { tunnelRef: { name: TUNNEL }, routes: [route] } } as KubeObject);
  });
}

export async function listBindings(env: BenchEnv): Promise<BindingStatus[]> {
  return (await env.client.list<BindingStatus>(TunnelBindingResource, { namespace: NS })).items;
}

/** Waits until `count` bindings are Ready (one LIST a second); returns when each was first seen Ready (ms after `since`), by name. */
export async function waitBindingsReady(env: BenchEnv, count: number, since: number, timeoutMs = 15 * 60_000): Promise<Map<string, number>> {
  const readyAt = new Map<string, number>();
  let reported = Date.now();
  for (;;) {
    const items = (await listBindings(env)).filter(isReady);
    for (const b of items) if (!readyAt.has(b.metadata!.name!)) readyAt.set(b.metadata!.name!, Date.now() - since);
    const ready = items.length;
    if (ready >= count) return readyAt;
    if (Date.now() - since > timeoutMs) throw new Error(`only ${ready}/${count} bindings Ready after ${timeoutMs / 60_000} minutes`);
    if (Date.now() - reported > 10_000) {
      log(`${ready}/${count} Ready after ${Math.round((Date.now() - since) / 1000)} s; ${env.fake.api.requests.length} REST calls so far`);
      reported = Date.now();
    }
    await sleep(1000);
  }
}

/** Runs `task(0..count-1)` with at most `width` at once. */
export async function parallel(count: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      for (let i = next++; i < count; i = next++) await task(i);
    }),
  );
}
