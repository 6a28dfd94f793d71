// converge: the bindings on one Tunnel created at once (default 160 HTTP + 40 TCP), the
// controller in this process, the Tunnel's 2 agents as connector processes. Time to all
// Ready; REST calls by operation, the busiest 60 s and 429s (ngrok allows 120 a minute);
// agent Binds; Kubernetes writes by the controller; each connector's peak RSS. Then a
// forced full resync and a quiet period (60 s) that must make no REST write, no Kubernetes
// write and no Bind; then traffic spot checks. Any of those failing exits 1.
import { Core, TunnelResource } from "@ktube/api";
import type { KubeObject, Manager } from "@ktube/runtime";
import { performance } from "node:perf_hooks";
import { Agents } from "./agents.ts";
import { agentRpcsSince, busiestMinute, mark, restSince } from "./calls.ts";
import { inProcessController, recordKubeWrites, settle, writesByKind, type KubeWrite } from "./controller.ts";
import type { BenchOptions } from "./options.ts";
import { countRows, seconds, sum, type ScenarioResult } from "./report.ts";
import { createBindings, isReady, isTcp, log, NS, PROVIDER, sleep, TUNNEL, waitBindingsReady, type BenchEnv, type BindingStatus } from "./setup.ts";
import { spotCheck } from "./traffic.ts";

const RATE_LIMIT = 120;

export async function converge(env: BenchEnv, options: BenchOptions): Promise<ScenarioResult> {
  const { bindings, workers, replicas, steadySeconds } = options;
  const manager = inProcessController(env, workers);
  const writes = recordKubeWrites(manager);
  await manager.start();
  const agents = new Agents(env);
  try {
    const setup = mark(env);
    await env.client.create(TunnelResource, { metadata: { name: TUNNEL, namespace: NS }, spec: { providerRef: { name: PROVIDER }, ngrok: { replicas } } } as KubeObject);
    await agents.start(env);
    await waitTunnelReady(env);
    await settle(manager);
    const setupCalls = restSince(env, setup);
    log(`tunnel Ready with ${replicas} agents online; creating ${bindings} bindings`);

    const before = mark(env);
    const w0 = writes.length;
    const started = Date.now();
    const startedMonotonic = performance.now(); // the fake's logs use this clock
    await createBindings(env, options);
    const created = Date.now() - started;
    const readyAt = await waitBindingsReady(env, bindings, started);
    const ready = Date.now() - started;
    const lastReady = (tcp: boolean) => Math.max(0, ...[...readyAt].filter(([name]) => isTcp(Number(name.slice(1)), options) === tcp).map(([, at]) => at));
    await settle(manager);
    const rest = restSince(env, before);
    const rpcs = agentRpcsSince(env, before);
    const kube = writes.slice(w0);
    const lastRestCall = Math.round((env.fake.api.requests.at(-1)?.at ?? startedMonotonic) - startedMonotonic);
    log(`all ${bindings} Ready ${seconds(ready)} after the first create; ${rest.total} REST calls, ${rpcs.Bind ?? 0} Binds, ${kube.length} Kubernetes writes`);

    const quiet = await quietPeriod(env, manager, writes, steadySeconds);
    const traffic = await spotCheck(env, options);
    const memory = agents.memory();
    const busiest = busiestMinute(env);
    const rateLimited = restSince(env, setup).rateLimited;
    const failed = [
      ...(rateLimited > 0 ? [`${rateLimited} REST calls answered 429`] : []),
      ...(busiest > RATE_LIMIT ? [`${busiest} REST calls in one minute (limit ${RATE_LIMIT})`] : []),
      ...(quiet.rest.writes > 0 ? [`steady state made ${quiet.rest.writes} REST writes: ${JSON.stringify(quiet.rest.byOperation)}`] : []),
      ...(quiet.kube.length > 0 ? [`steady state made ${quiet.kube.length} Kubernetes writes: ${JSON.stringify(quiet.kube.slice(0, 10))}`] : []),
      ...((quiet.rpcs.Bind ?? 0) > 0 ? [`steady state made ${quiet.rpcs.Bind} agent Binds`] : []),
      ...traffic.filter((c) => !c.ok).map((c) => `${c.what}: ${c.got}`),
      ...agents.exited(),
    ];
    const peak = Math.max(...memory.map((m) => m.peakMiB));
    return {
      result: {
        created,
        ready,
        lastHttpReady: lastReady(false),
        lastTcpReady: lastReady(true),
        lastRestCall,
        setupRestCalls: setupCalls.byOperation,
        restCalls: rest.byOperation,
        busiestMinute: busiest,
        rateLimited,
        agentRpcs: rpcs,
        kubernetesWrites: writesByKind(kube),
        connectorMemoryMiB: memory,
        steady: { rest: quiet.rest, agentRpcs: quiet.rpcs, kubernetesWrites: quiet.kube, agentReportsChanged: quiet.reportsChanged },
        traffic,
        schemaViolations: env.fake.api.schemaViolations.length,
        ingressViolations: env.fake.ingress.violations.length,
      },
      table: [
        `| all bindings created (client side, 32 in parallel) | ${seconds(created)} |`,
        `| **all bindings Ready** (after the first create) | **${seconds(ready)}** |`,
        `| &nbsp;&nbsp;the last HTTP / TCP binding seen Ready | ${seconds(lastReady(false))} / ${seconds(lastReady(true))} |`,
        `| REST calls before the bindings (provider and API key checks) | ${setupCalls.total} |`,
        `| **REST calls to converge** (last one ${seconds(lastRestCall)} after the first create) | **${rest.total}** |`,
        ...countRows(rest.byOperation),
        `| **most REST calls in any 60 s** (limit ${RATE_LIMIT}) / answered 429 | **${busiest} / ${rateLimited}** |`,
        `| agent RPCs to converge (both replicas) | ${sum(rpcs)} |`,
        ...countRows(rpcs),
        `| Kubernetes writes by the controller | ${kube.length} (${(kube.length / bindings).toFixed(2)} per binding) |`,
        ...countRows(writesByKind(kube)),
        `| **connector peak RSS** (each replica) | **${memory.map((m) => `${m.peakMiB.toFixed(0)} MiB`).join(" / ")}** (${memory.map((m) => `${m.endMiB.toFixed(0)}`).join(" / ")} MiB at the end) |`,
        `| steady state: full resync + ${steadySeconds} s, REST writes / Kubernetes writes / agent Binds | **${quiet.rest.writes} / ${quiet.kube.length} / ${quiet.rpcs.Bind ?? 0}** |`,
        `| steady state: REST reads / agent reports changed | ${quiet.rest.total - quiet.rest.writes} / ${quiet.reportsChanged ? "yes" : "no"} |`,
        `| traffic spot checks (${traffic.length - 1} hostnames, 1 TCP address) | ${traffic.filter((c) => c.ok).length} / ${traffic.length} answered by their backend |`,
        `| requests the OpenAPI schema rejected / ingress violations | ${env.fake.api.schemaViolations.length} / ${env.fake.ingress.violations.length} |`,
      ],
      failed: peak > 0 ? failed : [...failed, "no connector memory was sampled"],
    };
  } finally {
    await agents.stop();
    await manager.stop();
  }
}

async function waitTunnelReady(env: BenchEnv, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!isReady(await env.client.get<BindingStatus>(TunnelResource, NS, TUNNEL))) {
    if (Date.now() > deadline) throw new Error(`the Tunnel was not Ready within ${timeoutMs / 1000} s`);
    await sleep(500);
  }
}

interface Quiet {
  rest: ReturnType<typeof restSince>;
  rpcs: Record<string, number>;
  kube: KubeWrite[];
  /** Whether the agents' status ConfigMap changed (a connector wrote a different report). */
  reportsChanged: boolean;
}

/** A forced full resync, then `secondsQuiet` of quiet: what it cost. A steady state must write nothing. */
async function quietPeriod(env: BenchEnv, manager: Manager, writes: KubeWrite[], secondsQuiet: number): Promise<Quiet> {
  log(`resync and ${secondsQuiet} s of quiet`);
  const from = mark(env);
  const w0 = writes.length;
  const statusVersion = async () => (await env.client.get(Core.ConfigMap, NS, `${TUNNEL}-ngrok-status`)).metadata?.resourceVersion;
  const v0 = await statusVersion();
  manager.resync();
  await sleep(secondsQuiet * 1000);
  return { rest: restSince(env, from), rpcs: agentRpcsSince(env, from), kube: writes.slice(w0), reportsChanged: (await statusVersion()) !== v0 };
}
