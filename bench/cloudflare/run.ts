// Cloudflare benchmarks against the test control plane and the fake Cloudflare API
// (50 ms per call). Each scenario prints JSON and a table; --write puts the table in
// bench/README.md and the JSON in bench/cloudflare/results-<scenario>.json.
//
//   npm run bench:cloudflare -w @ktube/bench -- [--scenario converge|scale|churn|chaos|steady] [--write]
//
//   converge  1,000 bindings / 10 tunnels / 10 zones created at once: time to all Ready,
//             Cloudflare calls, Kubernetes writes; then a full resync + 60 s must write nothing
//   scale     10,000 bindings / 100 tunnels / 20 zones, the controller as its own process:
//             time, calls, peak RSS, CPU seconds
//   churn     after converge, 10% of the bindings change hostname: calls and time until
//             Cloudflare's DNS is exactly what the bindings say
//   chaos     converge with the controller process SIGKILLed every 5 s: duplicates, leftovers, extra calls
//   steady    after converge, a full resync and 10 quiet minutes: writes (must be 0), reads per minute
import { TunnelBindingResource, TunnelResource } from "@ktube/api";
import { PatchType } from "@ktube/runtime";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ControllerProcess, inProcessController, kubeWrites } from "./controller.ts";
import { callCounter, callRows, createBindings, createTunnels, hostnameOf, log, NS, parallel, sleep, startEnv, sum, waitBindingsReady, type BenchEnv } from "./setup.ts";

const SCENARIOS = ["converge", "scale", "churn", "chaos", "steady"] as const;
type Scenario = (typeof SCENARIOS)[number];
const { values: args } = parseArgs({
  options: {
    scenario: { type: "string", default: "converge" },
    bindings: { type: "string" },
    tunnels: { type: "string" },
    zones: { type: "string" },
    latency: { type: "string", default: "50" },
    steady: { type: "string" },
    workers: { type: "string", default: "16" },
    heap: { type: "string" },
    write: { type: "boolean", default: false },
  },
});
const scenario = args.scenario as Scenario;
if (!SCENARIOS.includes(scenario)) throw new Error(`--scenario must be one of ${SCENARIOS.join(", ")}`);
const scale = scenario === "scale";
const BINDINGS = Number(args.bindings ?? (scale ? 10_000 : 1_000));
const TUNNELS = Number(args.tunnels ?? (scale ? 100 : 10));
const ZONES = Number(args.zones ?? (scale ? 20 : 10));
const LATENCY = Number(args.latency);
const WORKERS = Number(args.workers);
/** --heap <MiB>: the controller process's V8 old-space limit (scale, chaos), as a container's memory limit sets it. */
const HEAP_MIB = args.heap ? Number(args.heap) : undefined;
const STEADY_S = Number(args.steady ?? (scenario === "steady" ? 600 : 60));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

const env = await startEnv({ latencyMs: LATENCY, zones: ZONES });
const shape = [`| bindings / tunnels / zones | ${BINDINGS} / ${TUNNELS} / ${ZONES} |`, `| fake API latency per call | ${LATENCY} ms |`, `| reconcile workers per controller | ${WORKERS} |`];
let result: Record<string, unknown>;
let table: string[];
let failed: string[] = [];
try {
  ({ result, table, failed } = await ({ converge, scale: scaleRun, churn, chaos, steady } as const)[scenario](env));
} finally {
  await env.stop();
}
report(result, [`| scenario | value |`, `|---|---|`, ...shape, ...table]);
if (failed.length > 0) {
  log(`FAILED: ${failed.join("; ")}`);
  process.exitCode = 1;
}

/** 1,000 bindings at once, the controller in this process. */
async function converge(env: BenchEnv) {
  const manager = inProcessController(env, WORKERS);
  await manager.start();
  await createTunnels(env, TUNNELS);
  await settle(manager);
  log(`${TUNNELS} tunnels ready; creating ${BINDINGS} bindings`);
  const calls = callCounter(env);
  const w0 = await kubeWrites(manager);
  const started = Date.now();
  const startedMonotonic = performance.now(); // the fake's request log uses this clock
  await createBindings(env, 0, BINDINGS, TUNNELS);
  const created = Date.now() - started;
  await waitBindingsReady(env, BINDINGS, started);
  const ready = Date.now() - started;
  await settle(manager);
  const writes = (await kubeWrites(manager)) - w0;
  const converged = calls.since();
  const lastCall = Math.max(...env.fake.requests.filter((r) => r.method !== "GET").map((r) => r.at)) - startedMonotonic;
  log(`all ${BINDINGS} Ready ${seconds(ready)} after the first create; last Cloudflare write ${seconds(lastCall)}`);

  const quiet = await quietPeriod(env, manager, STEADY_S);
  await manager.stop();
  const failed = quiet.providerWrites + quiet.kubeWrites > 0 ? [`steady state wrote something: ${JSON.stringify(quiet.kubePaths)}`] : [];
  return {
    result: { created, ready, lastCloudflareWrite: lastCall, calls: converged, kubernetesWrites: writes, steady: quiet },
    table: [
      `| all bindings created (client side, 32 in parallel) | ${seconds(created)} |`,
      `| Cloudflare's last write (DNS and configs done) | ${seconds(lastCall)} |`,
      `| **all bindings Ready** (after the first create) | **${seconds(ready)}** |`,
      `| **Cloudflare calls to converge** | **${sum(converged)}** |`,
      ...callRows(converged),
      `| Kubernetes writes by the controller | ${writes} (${(writes / BINDINGS).toFixed(2)} per binding) |`,
      `| steady state: full resync + ${STEADY_S} s, Cloudflare writes / Kubernetes writes | **${quiet.providerWrites} / ${quiet.kubeWrites}** |`,
      `| steady state: Cloudflare reads | ${quiet.providerReads} |`,
      `| requests the OpenAPI schema rejected | ${env.fake.schemaViolations.length} |`,
    ],
    failed,
  };
}

/** 10,000 bindings, the controller as its own process (memory and CPU measured). */
async function scaleRun(env: BenchEnv) {
  const controller = await ControllerProcess.start(env, WORKERS, HEAP_MIB);
  try {
    await createTunnels(env, TUNNELS);
    log(`${TUNNELS} tunnels ready; creating ${BINDINGS} bindings`);
    const calls = callCounter(env);
    const [w0, cpu0] = [await controller.kubeWrites(), controller.cpuSeconds()];
    const started = Date.now();
    await createBindings(env, 0, BINDINGS, TUNNELS);
    const created = Date.now() - started;
    await waitBindingsReady(env, BINDINGS, started);
    const ready = Date.now() - started;
    const cpu = controller.cpuSeconds() - cpu0;
    await sleep(5000);
    const writes = (await controller.kubeWrites()) - w0;
    const converged = calls.since();
    const rss = { peak: controller.peakRssMiB, end: controller.rssMiB() };
    const failed = rss.peak >= 256 ? [`peak RSS ${rss.peak.toFixed(0)} MiB is over the 256 MiB target`] : [];
    return {
      result: { created, ready, calls: converged, kubernetesWrites: writes, cpuSeconds: cpu, rssMiB: rss },
      table: [
        `| all bindings created (client side, 32 in parallel) | ${seconds(created)} |`,
        `| **all bindings Ready** (after the first create) | **${seconds(ready)}** |`,
        `| **Cloudflare calls to converge** | **${sum(converged)}** |`,
        ...callRows(converged),
        `| Kubernetes writes by the controller | ${writes} (${(writes / BINDINGS).toFixed(2)} per binding) |`,
        `| **controller peak RSS** (target < 256 MiB) | **${rss.peak.toFixed(0)} MiB** (${rss.end.toFixed(0)} MiB at the end; V8 old space ${HEAP_MIB ? `limited to ${HEAP_MIB} MiB` : "unlimited"}) |`,
        `| controller CPU, first create to all Ready | ${cpu.toFixed(1)} s |`,
      ],
      failed,
    };
  } finally {
    await controller.stop();
  }
}

/** 10% of the bindings change hostname after converging. */
async function churn(env: BenchEnv) {
  const manager = inProcessController(env, WORKERS);
  await manager.start();
  await createTunnels(env, TUNNELS);
  const started = Date.now();
  await createBindings(env, 0, BINDINGS, TUNNELS);
  await waitBindingsReady(env, BINDINGS, started);
  await settle(manager);
  // Every tenth binding, shifted so that every tunnel and every zone gets its share.
  const changed = Array.from({ length: Math.round(BINDINGS / 10) }, (_, k) => k * 10 + (k % 10));
  log(`${BINDINGS} Ready; renaming ${changed.length} hostnames`);
  const calls = callCounter(env);
  const w0 = await kubeWrites(manager);
  const renamedAt = Date.now();
  await parallel(changed.length, 32, async (k) => {
    const i = changed[k]!;
    await env.client.patch(TunnelBindingResource, NS, `b${i}`, [{ op: "replace", path: "/spec/routes/0/hostname", value: hostnameOf(env, i, `renamed-${i}`) }], PatchType.json);
  });
  const want = await desiredRecords(env, (i) => hostnameOf(env, i, changed.includes(i) ? `renamed-${i}` : `b${i}`));
  while (!sameRecords(env, want)) {
    if (Date.now() - renamedAt > 10 * 60_000) throw new Error("DNS did not match the bindings within 10 minutes");
    await sleep(250);
  }
  const dnsMatches = Date.now() - renamedAt;
  await waitUrls(env, changed, (i) => hostnameOf(env, i, `renamed-${i}`), renamedAt);
  const statusMatches = Date.now() - renamedAt;
  await settle(manager);
  const made = calls.since();
  const writes = (await kubeWrites(manager)) - w0;
  await manager.stop();
  return {
    result: { renamed: changed.length, dnsMatches, statusMatches, calls: made, kubernetesWrites: writes },
    table: [
      `| hostnames renamed (10% of the bindings, 32 patches in parallel) | ${changed.length} |`,
      `| **DNS matches the bindings** (after the first patch) | **${seconds(dnsMatches)}** |`,
      `| every renamed binding shows its new URL | ${seconds(statusMatches)} |`,
      `| **Cloudflare calls** | **${sum(made)}** |`,
      ...callRows(made),
      `| Kubernetes writes by the controller | ${writes} |`,
    ],
    failed: [],
  };
}

/** Converging while the controller process is SIGKILLed every 5 s. */
async function chaos(env: BenchEnv) {
  let controller = await ControllerProcess.start(env, WORKERS);
  await createTunnels(env, TUNNELS);
  const calls = callCounter(env);
  const started = Date.now();
  let kills = 0;
  let done = false;
  const killer = (async () => {
    while (!done && Date.now() - started < 5 * 60_000) {
      await sleep(5000);
      if (done) break;
      await controller.kill();
      kills++;
      controller = await ControllerProcess.start(env, WORKERS);
    }
  })();
  await createBindings(env, 0, BINDINGS, TUNNELS);
  await waitBindingsReady(env, BINDINGS, started);
  done = true;
  await killer;
  const ready = Date.now() - started;
  // The last process finishes whatever is left (a plan cut short by the last kill).
  await sleep(20_000);
  await controller.stop();
  const made = calls.since();

  const want = await desiredRecords(env, (i) => hostnameOf(env, i));
  const names = env.fake.liveTunnels().map((t) => t.name);
  const duplicates = names.length - new Set(names).size;
  const extraTunnels = names.length - TUNNELS;
  const unwanted = [...env.fake.records.values()].filter((r) => want.get(r.name) !== `${r.type} ${r.content}` && !(r.type === "TXT" && want.has(r.name)));
  const missing = [...want.keys()].filter((name) => ![...env.fake.records.values()].some((r) => r.name === name));
  const failed = [
    ...(duplicates + extraTunnels > 0 ? [`${names.length} Cloudflare tunnels for ${TUNNELS} Tunnels`] : []),
    ...(unwanted.length > 0 ? [`${unwanted.length} DNS records the bindings do not want, e.g. ${unwanted[0]!.type} ${unwanted[0]!.name}`] : []),
    ...(missing.length > 0 ? [`${missing.length} wanted DNS records missing`] : []),
    ...(env.fake.apps.size > 0 ? [`${env.fake.apps.size} Access applications`] : []),
  ];
  return {
    result: { kills, ready, calls: made, tunnels: names.length, unwantedRecords: unwanted.length, missingRecords: missing.length, accessApps: env.fake.apps.size },
    table: [
      `| SIGKILLs (one every 5 s until all Ready) | ${kills} |`,
      `| **all bindings Ready** (after the first create) | **${seconds(ready)}** |`,
      `| **Cloudflare calls** (converge without kills: see the first table) | **${sum(made)}** |`,
      ...callRows(made),
      `| Cloudflare tunnels afterwards (Tunnels: ${TUNNELS}) | **${names.length}** |`,
      `| DNS records no binding wants / wanted records missing | **${unwanted.length} / ${missing.length}** |`,
      `| Access applications (none asked for) | **${env.fake.apps.size}** |`,
    ],
    failed,
  };
}

/** A full resync and a long quiet period after converging. */
async function steady(env: BenchEnv) {
  const manager = inProcessController(env, WORKERS);
  await manager.start();
  await createTunnels(env, TUNNELS);
  const started = Date.now();
  await createBindings(env, 0, BINDINGS, TUNNELS);
  await waitBindingsReady(env, BINDINGS, started);
  await settle(manager);
  log(`${BINDINGS} Ready; resync and ${STEADY_S} s of quiet`);
  const quiet = await quietPeriod(env, manager, STEADY_S);
  await manager.stop();
  const perMinute = Object.entries(quiet.calls).map(([op, n]) => `| &nbsp;&nbsp;${op} | ${n} (${((n * 60) / STEADY_S).toFixed(1)} per minute) |`);
  return {
    result: { seconds: STEADY_S, ...quiet },
    table: [
      `| quiet period after a forced full resync | ${STEADY_S} s |`,
      `| **Cloudflare writes** | **${quiet.providerWrites}** |`,
      `| **Kubernetes writes** | **${quiet.kubeWrites}** |`,
      `| Cloudflare reads | ${quiet.providerReads} (${((quiet.providerReads * 60) / STEADY_S).toFixed(1)} per minute) |`,
      ...perMinute,
    ],
    failed: quiet.providerWrites + quiet.kubeWrites > 0 ? [`steady state wrote something: ${JSON.stringify(quiet.kubePaths)}`] : [],
  };
}

/** A forced full resync, then `seconds` of quiet: what it cost. */
async function quietPeriod(env: BenchEnv, manager: ReturnType<typeof inProcessController>, seconds: number) {
  const calls = callCounter(env);
  const w0 = await kubeWrites(manager);
  const kubePaths: string[] = [];
  manager.client.onRequest((method, path, code) => {
    if (method !== "GET") kubePaths.push(`${method} ${path} ${code}`);
  });
  manager.resync();
  await sleep(seconds * 1000);
  return { providerWrites: calls.writes(), providerReads: calls.reads(), calls: calls.since(), kubeWrites: (await kubeWrites(manager)) - w0, kubePaths };
}

async function settle(manager: ReturnType<typeof inProcessController>): Promise<void> {
  while (!manager.settled) await sleep(200);
  await sleep(3000);
}

/** name -> "TYPE content" of every CNAME the bindings want (their TXT marks are checked by name). */
async function desiredRecords(env: BenchEnv, hostname: (i: number) => string): Promise<Map<string, string>> {
  const ids = new Map((await env.client.list<{ metadata: { name: string }; status?: { tunnelId?: string } }>(TunnelResource, { namespace: NS })).items.map((t) => [t.metadata.name, t.status?.tunnelId]));
  const want = new Map<string, string>();
  for (let i = 0; i < BINDINGS; i++) {
    want.set(hostname(i), `CNAME ${ids.get(`t${i % TUNNELS}`)}.cfargotunnel.com`);
    want.set(`_ktube.${hostname(i)}`, "TXT");
  }
  return want;
}

function sameRecords(env: BenchEnv, want: Map<string, string>): boolean {
  const records = [...env.fake.records.values()];
  if (records.length !== want.size) return false;
  return records.every((r) => (r.type === "TXT" ? want.get(r.name) === "TXT" : want.get(r.name) === `${r.type} ${r.content}`));
}

async function waitUrls(env: BenchEnv, indexes: number[], hostname: (i: number) => string, since: number): Promise<void> {
  for (;;) {
    const items = (await env.client.list<{ metadata: { name: string }; status?: { routes?: Array<{ url?: string }> } }>(TunnelBindingResource, { namespace: NS })).items;
    const byName = new Map(items.map((b) => [b.metadata.name, b.status?.routes?.[0]?.url]));
    if (indexes.every((i) => byName.get(`b${i}`) === `https://${hostname(i)}/`)) return;
    if (Date.now() - since > 10 * 60_000) throw new Error("renamed bindings did not show their new URL within 10 minutes");
    await sleep(1000);
  }
}

function report(result: Record<string, unknown>, rows: string[]): void {
  const date = new Date().toISOString().slice(0, 10);
  const machine = `${cpus().length} cores`;
  const json = { scenario, date, machine, bindings: BINDINGS, tunnels: TUNNELS, zones: ZONES, latencyMs: LATENCY, workers: WORKERS, ...result };
  console.log(JSON.stringify(json, null, 2));
  const table = rows.join("\n");
  console.log(`\n${table}`);
  if (!args.write) return;
  const readme = join(import.meta.dirname, "..", "README.md");
  const block = `<!-- cloudflare-${scenario}:begin -->\nLast run: ${date}, ${machine}.\n\n${table}\n<!-- cloudflare-${scenario}:end -->`;
  const text = readFileSync(readme, "utf8");
  const pattern = new RegExp(`<!-- cloudflare-${scenario}:begin -->[\\s\\S]*<!-- cloudflare-${scenario}:end -->`);
  if (!pattern.test(text)) throw new Error(`bench/README.md has no cloudflare-${scenario} block`);
  writeFileSync(readme, text.replace(pattern, block));
  writeFileSync(join(import.meta.dirname, `results-${scenario}.json`), `${JSON.stringify(json, null, 2)}\n`);
  log(`bench/README.md and bench/cloudflare/results-${scenario}.json updated`);
}
