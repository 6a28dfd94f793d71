// What every Cloudflare scenario starts from: the test control plane, the fake
// Cloudflare API with a latency per call, one account with N zones, the controller's
// namespace, Secret, Service and TunnelProvider; and helpers to make tunnels (connected,
// since no data plane runs here) and bindings, and to wait for them.
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import { FakeCloudflare } from "@ktube/fake-cloudflare";
import { KubeClient, PatchType, type KubeObject } from "@ktube/runtime";
import { ControlPlane, installCrds } from "@ktube/testenv";
import type { KubeConfig } from "@kubernetes/client-node";

export const NS = "bench";
export const PROVIDER = "bench";
export const log = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface BenchEnv {
  controlPlane: ControlPlane;
  kc: KubeConfig;
  client: KubeClient;
  fake: FakeCloudflare;
  account: string;
  zones: Array<{ id: string; name: string }>;
  stop(): Promise<void>;
}

/** A Tunnel or TunnelBinding as the bench reads it: its tunnel id and conditions. */
export type StatusObject = KubeObject & { status?: { tunnelId?: string; conditions?: Array<{ type: string; status: string }> } };
export const isReady = (o: StatusObject): boolean => o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

export async function startEnv(options: { latencyMs: number; zones: number }): Promise<BenchEnv> {
  const controlPlane = new ControlPlane({ log });
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void controlPlane.stop().then(() => process.exit(130)));
  await controlPlane.start();
  const kc = controlPlane.kubeConfig();
  await installCrds(kc);
  const client = new KubeClient(kc);
  const fake = new FakeCloudflare({ latencyMs: options.latencyMs });
  const account = fake.addAccount();
  fake.addToken("bench-token", [account]);
  const zones = Array.from({ length: options.zones }, (_, i) => fake.addZone(`z${i}.example.com`, account));
  await fake.start();
  await client.create(Core.Namespace, { metadata: { name: NS } });
  await client.create(Core.Secret, { metadata: { name: "cloudflare-api", namespace: NS }, stringData: { token: "bench-token" } } as KubeObject);
  await client.create(Core.Service, { metadata: { name: "web", namespace: NS }, spec: { ports: [{ name: "http", port: 80 }] } } as KubeObject);
  await client.create(TunnelProviderResource, { metadata: { name: PROVIDER }, spec: { type: "cloudflare", cloudflare: { accountId: account, apiTokenSecretRef: { name: "cloudflare-api", key: "token" } } } } as KubeObject);
  return {
    controlPlane,
    kc,
    client,
    fake,
    account,
    zones,
    async stop() {
      await fake.stop();
      await controlPlane.stop();
    },
  };
}

/** Tunnels t0..t{n-1}, each Ready: its Cloudflare tunnel connected and its Deployment available (stood in for). */
export async function createTunnels(env: BenchEnv, count: number): Promise<void> {
  const { client, fake } = env;
  for (let t = 0; t < count; t++) await client.create(TunnelResource, { metadata: { name: `t${t}`, namespace: NS }, spec: { providerRef: { name: PROVIDER }, cloudflare: { replicas: 1 } } } as KubeObject);
  await parallel(count, 8, async (t) => {
    let tunnel: StatusObject;
    for (;;) {
      tunnel = await client.get<StatusObject>(TunnelResource, NS, `t${t}`);
      if (tunnel.status?.tunnelId) break;
      await sleep(200);
    }
    fake.setConnections(tunnel.status!.tunnelId!, 1);
    for (;;) {
      try {
        await client.patch(Core.Deployment, NS, `t${t}-cloudflared`, { status: { replicas: 1, readyReplicas: 1, availableReplicas: 1 } }, PatchType.merge, { subresource: "status" });
        break;
      } catch {
        await sleep(200);
      }
    }
  });
  while ((await client.list<StatusObject>(TunnelResource, { namespace: NS })).items.filter(isReady).length < count) await sleep(500);
}

/** The hostname of binding `i`: its tunnel is i % tunnels, its zone i % zones. */
export const hostnameOf = (env: BenchEnv, i: number, label = `b${i}`): string => `${label}.${env.zones[i % env.zones.length]!.name}`;

/** Creates bindings [from, to), 32 requests in parallel (like `kubectl apply` of many files). */
export async function createBindings(env: BenchEnv, from: number, to: number, tunnels: number): Promise<void> {
  await parallel(to - from, 32, async (k) => {
    const i = from + k;
    await env.client.create(TunnelBindingResource, {
      metadata: { name: `b${i}`, namespace: NS },
      spec: { tunnelRef: { name: `t${i % tunnels}` }, routes: [{ name: "web", hostname: hostnameOf(env, i), service: { name: "web", port: "http" } }] },
    } as KubeObject);
  });
}

/** Waits until `count` bindings are Ready (one LIST a second, so the wait itself loads the API server little). */
export async function waitBindingsReady(env: BenchEnv, count: number, since: number, timeoutMs = 30 * 60_000): Promise<void> {
  let reported = Date.now();
  for (;;) {
    const ready = (await env.client.list<StatusObject>(TunnelBindingResource, { namespace: NS })).items.filter(isReady).length;
    if (ready >= count) return;
    if (Date.now() - since > timeoutMs) throw new Error(`only ${ready}/${count} bindings Ready after ${timeoutMs / 60_000} minutes`);
    if (Date.now() - reported > 10_000) {
      log(`${ready}/${count} Ready after ${Math.round((Date.now() - since) / 1000)} s; ${env.fake.requests.length} Cloudflare calls so far`);
      reported = Date.now();
    }
    await sleep(1000);
  }
}

/** Cloudflare calls by operation since a mark. */
export function callCounter(env: BenchEnv): { since(): Record<string, number>; total(): number; reads(): number; writes(): number } {
  const start = env.fake.requests.length;
  const made = () => env.fake.requests.slice(start);
  return {
    since() {
      const counts: Record<string, number> = {};
      for (const r of made()) counts[r.operation] = (counts[r.operation] ?? 0) + 1;
      return counts;
    },
    total: () => made().length,
    reads: () => made().filter((r) => r.method === "GET").length,
    writes: () => made().filter((r) => r.method !== "GET").length,
  };
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
