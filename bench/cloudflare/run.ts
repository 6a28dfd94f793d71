// Benchmark: 1,000 TunnelBindings over 10 Tunnels applied at once, against the fake
// Cloudflare API with 50 ms latency per call. Measures the time until every binding is
// Ready, the Cloudflare calls it took (by endpoint), the Kubernetes writes it took, and
// then what a forced full resync plus a quiet period costs (it should write nothing).
//
//   npm run bench:cloudflare -w @ktube/bench [-- --bindings 1000 --tunnels 10 --latency 50 --steady 60 --write]
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import { cloudflarePlugin } from "@ktube/cloudflare-controller/plugin";
import { FakeCloudflare } from "@ktube/fake-cloudflare";
import { registerProviderControllers } from "@ktube/provider-kit";
import { createLogger, KubeClient, Manager, PatchType, type KubeObject } from "@ktube/runtime";
import { ControlPlane, installCrds } from "@ktube/testenv";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    bindings: { type: "string", default: "1000" },
    tunnels: { type: "string", default: "10" },
    latency: { type: "string", default: "50" },
    steady: { type: "string", default: "60" },
    workers: { type: "string", default: "16" },
    write: { type: "boolean", default: false },
  },
});
const BINDINGS = Number(args.bindings);
const TUNNELS = Number(args.tunnels);
const LATENCY = Number(args.latency);
const STEADY_S = Number(args.steady);
const NS = "bench";
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const controlPlane = new ControlPlane({ log });
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void controlPlane.stop().then(() => process.exit(130)));
}
await controlPlane.start();
const kc = controlPlane.kubeConfig();
await installCrds(kc);
const client = new KubeClient(kc);

const fake = new FakeCloudflare({ latencyMs: LATENCY });
const account = fake.addAccount();
fake.addToken("bench-token", [account]);
const zones = Array.from({ length: TUNNELS }, (_, i) => fake.addZone(`z${i}.example.com`, account));
await fake.start();

const manager = new Manager({ kubeConfig: kc, name: "cloudflare-controller", logger: createLogger({ level: process.env.LOG_LEVEL ?? "warn" }), probeAddress: false, metricsAddress: false });
registerProviderControllers(manager, cloudflarePlugin({ ownerId: "bench", cloudflaredImage: "cloudflared:bench", apiUrl: fake.baseUrl }), {
  namespace: NS,
  managedBy: "ktube-cloudflare-controller",
  maxConcurrentReconciles: Number(args.workers),
  configDelayMs: 1000,
});

await client.create(Core.Namespace, { metadata: { name: NS } });
await client.create(Core.Secret, { metadata: { name: "cloudflare-api", namespace: NS }, stringData: { token: "bench-token" } } as KubeObject);
await client.create(Core.Service, { metadata: { name: "web", namespace: NS }, spec: { ports: [{ name: "http", port: 80 }] } } as KubeObject);
await client.create(TunnelProviderResource, { metadata: { name: "bench" }, spec: { type: "cloudflare", cloudflare: { accountId: account, apiTokenSecretRef: { name: "cloudflare-api", key: "token" } } } } as KubeObject);
await manager.start();

type Obj = KubeObject & { status?: { tunnelId?: string; conditions?: Array<{ type: string; status: string }> } };
const isReady = (o: Obj) => o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

// Tunnels first, connected (the data plane cannot run here), so the measurement is about bindings.
for (let t = 0; t < TUNNELS; t++) await client.create(TunnelResource, { metadata: { name: `t${t}`, namespace: NS }, spec: { providerRef: { name: "bench" }, cloudflare: { replicas: 1 } } } as KubeObject);
for (let t = 0; t < TUNNELS; t++) {
  let tunnel: Obj;
  for (;;) {
    tunnel = await client.get<Obj>(TunnelResource, NS, `t${t}`);
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
}
while (!(await client.list<Obj>(TunnelResource, { namespace: NS })).items.every(isReady)) await sleep(500);
while (!manager.idle) await sleep(200);
await sleep(2000);
log(`${TUNNELS} tunnels ready; applying ${BINDINGS} bindings`);

const kubeWrites = async () => {
  const all = await manager.metrics.count("rest_client_requests_total");
  return all - (await manager.metrics.count("rest_client_requests_total", { method: "GET" }));
};
const kubeReads = () => manager.metrics.count("rest_client_requests_total", { method: "GET" });
const mark = () => ({ requests: fake.requests.length });
const callsSince = (m: { requests: number }) => {
  const counts: Record<string, number> = {};
  for (const r of fake.requests.slice(m.requests)) counts[r.operation] = (counts[r.operation] ?? 0) + 1;
  return counts;
};

const before = mark();
const [w0, r0] = [await kubeWrites(), await kubeReads()];
const started = Date.now();
const pending = Array.from({ length: BINDINGS }, (_, i) => i);
const workers = Array.from({ length: 32 }, async () => {
  for (let i = pending.shift(); i !== undefined; i = pending.shift()) {
    const t = i % TUNNELS;
    await client.create(TunnelBindingResource, {
      metadata: { name: `b${i}`, namespace: NS },
      spec: { tunnelRef: { name: `t${t}` }, routes: [{ name: "web", hostname: `b${i}.${zones[t]!.name}`, service: { name: "web", port: "http" } }] },
    } as KubeObject);
  }
});
await Promise.all(workers);
const applied = Date.now();
let ready = 0;
let reported = Date.now();
while (ready < BINDINGS) {
  ready = (await client.list<Obj>(TunnelBindingResource, { namespace: NS })).items.filter(isReady).length;
  if (Date.now() - started > 30 * 60_000) throw new Error(`only ${ready}/${BINDINGS} Ready after 30 minutes`);
  if (Date.now() - reported > 10_000) {
    log(`${ready}/${BINDINGS} Ready after ${Math.round((Date.now() - started) / 1000)} s; ${fake.requests.length - before.requests} Cloudflare calls so far: ${JSON.stringify(callsSince(before))}`);
    reported = Date.now();
  }
  await sleep(250);
}
const allReady = Date.now();
while (!manager.idle) await sleep(200);
await sleep(3000); // config rebuilds gathered after the last binding
const converge = { calls: callsSince(before), kubeWrites: (await kubeWrites()) - w0, kubeReads: (await kubeReads()) - r0 };
const configs = [...fake.configurations.values()].map((c) => (c.config as { ingress: unknown[] }).ingress.length - 1);
log(`all ${BINDINGS} Ready ${((allReady - started) / 1000).toFixed(1)} s after the first create`);

// Steady state: a forced full resync, then a quiet period.
const steadyMark = mark();
const [w1, r1] = [await kubeWrites(), await kubeReads()];
// Which writes, if any: a steady state must make none, and when it does the log says what.
const steadyWrites: string[] = [];
manager.client.onRequest((method, path, code) => {
  if (method !== "GET") steadyWrites.push(`${method} ${path} ${code}`);
});
manager.resync();
await sleep(STEADY_S * 1000);
const steadyCalls = callsSince(steadyMark);
const steady = {
  providerWrites: fake.requests.slice(steadyMark.requests).filter((r) => r.method !== "GET").length,
  providerReads: fake.requests.slice(steadyMark.requests).filter((r) => r.method === "GET").length,
  kubeWrites: (await kubeWrites()) - w1,
  kubeReads: (await kubeReads()) - r1,
};
await manager.stop();
await fake.stop();
await controlPlane.stop();

const total = Object.values(converge.calls).reduce((a, b) => a + b, 0);
const result = {
  date: new Date().toISOString().slice(0, 10),
  machine: `${cpus().length} cores`,
  bindings: BINDINGS,
  tunnels: TUNNELS,
  latencyMs: LATENCY,
  secondsToApply: (applied - started) / 1000,
  secondsToAllReady: (allReady - started) / 1000,
  cloudflareCalls: total,
  callsByOperation: converge.calls,
  configPuts: converge.calls["cloudflare-tunnel-configuration-put-configuration"] ?? 0,
  rulesPerTunnel: configs,
  kubernetesWrites: converge.kubeWrites,
  kubernetesReads: converge.kubeReads,
  steady: { seconds: STEADY_S, ...steady, calls: steadyCalls },
  schemaViolations: fake.schemaViolations.length,
};
console.log(JSON.stringify(result, null, 2));

const table = [
  `| scenario | value |`,
  `|---|---|`,
  `| bindings / tunnels / zones | ${BINDINGS} / ${TUNNELS} / ${TUNNELS} |`,
  `| fake API latency per call | ${LATENCY} ms |`,
  `| reconcile workers per controller | ${args.workers} |`,
  `| all bindings created (client side, 32 in parallel) | ${result.secondsToApply.toFixed(1)} s |`,
  `| **all bindings Ready** | **${result.secondsToAllReady.toFixed(1)} s** |`,
  `| Cloudflare calls to converge | ${total} |`,
  ...Object.entries(converge.calls).sort().map(([op, n]) => `| &nbsp;&nbsp;${op} | ${n} |`),
  `| **config PUTs** (${TUNNELS} tunnels) | **${result.configPuts}** |`,
  `| Kubernetes writes by the controller | ${converge.kubeWrites} |`,
  `| Kubernetes GETs and LISTs by the controller (it reads from its informer cache) | ${converge.kubeReads} |`,
  `| steady state: full resync + ${STEADY_S} s, Cloudflare writes | **${steady.providerWrites}** |`,
  `| steady state: Cloudflare reads | ${steady.providerReads} |`,
  `| steady state: Kubernetes writes | **${steady.kubeWrites}** |`,
  `| requests the OpenAPI schema rejected | ${result.schemaViolations} |`,
].join("\n");
console.log(`\n${table}`);
if (args.write) {
  const readme = join(import.meta.dirname, "..", "README.md");
  const text = readFileSync(readme, "utf8");
  const updated = text.replace(/<!-- cloudflare:begin -->[\s\S]*<!-- cloudflare:end -->/, `<!-- cloudflare:begin -->\nLast run: ${result.date}, ${result.machine}.\n\n${table}\n<!-- cloudflare:end -->`);
  writeFileSync(readme, updated);
  writeFileSync(join(import.meta.dirname, "results.json"), `${JSON.stringify(result, null, 2)}\n`);
  log("bench/README.md and bench/cloudflare/results.json updated");
}
if (steady.providerWrites > 0 || steady.kubeWrites > 0) {
  log(`steady state wrote something: that is a bug. Kubernetes writes: ${JSON.stringify(steadyWrites)}`);
  process.exitCode = 1;
}
