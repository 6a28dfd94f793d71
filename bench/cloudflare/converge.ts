// converge: 1,000 bindings created at once, the controller in this process. Time to all
// Ready, Cloudflare calls, Kubernetes writes; then a forced full resync and a quiet
// period (60 s) that must write nothing.
import type { Manager } from "@ktube/runtime";
import { inProcessController, kubeWrites, quietPeriod, settle } from "./controller.ts";
import type { BenchOptions } from "./options.ts";
import { callRows, seconds, sum, type ScenarioResult } from "./report.ts";
import { callCounter, createBindings, createTunnels, log, waitBindingsReady, type BenchEnv } from "./setup.ts";

export async function converge(env: BenchEnv, options: BenchOptions): Promise<ScenarioResult> {
  const { bindings, tunnels, workers, steadySeconds } = options;
  const manager = inProcessController(env, workers);
  await manager.start();
  try {
    await createTunnels(env, tunnels);
    await settle(manager);
    log(`${tunnels} tunnels ready; creating ${bindings} bindings`);
    const calls = callCounter(env);
    const w0 = await kubeWrites(manager);
    const started = Date.now();
    const startedMonotonic = performance.now(); // the fake's request log uses this clock
    await createBindings(env, 0, bindings, tunnels);
    const created = Date.now() - started;
    await waitBindingsReady(env, bindings, started);
    const ready = Date.now() - started;
    await settle(manager);
    const writes = (await kubeWrites(manager)) - w0;
    const converged = calls.since();
    const lastCall = Math.max(...env.fake.requests.filter((r) => r.method !== "GET").map((r) => r.at)) - startedMonotonic;
    log(`all ${bindings} Ready ${seconds(ready)} after the first create; last Cloudflare write ${seconds(lastCall)}`);

    const quiet = await quietPeriod(env, manager, steadySeconds);
    return {
      result: { created, ready, lastCloudflareWrite: lastCall, calls: converged, kubernetesWrites: writes, steady: quiet },
      table: [
        `| all bindings created (client side, 32 in parallel) | ${seconds(created)} |`,
        `| Cloudflare's last write (DNS and configs done) | ${seconds(lastCall)} |`,
        `| **all bindings Ready** (after the first create) | **${seconds(ready)}** |`,
        `| **Cloudflare calls to converge** | **${sum(converged)}** |`,
        ...callRows(converged),
        `| Kubernetes writes by the controller | ${writes} (${(writes / bindings).toFixed(2)} per binding) |`,
        `| steady state: full resync + ${steadySeconds} s, Cloudflare writes / Kubernetes writes | **${quiet.providerWrites} / ${quiet.kubeWrites}** |`,
        `| steady state: Cloudflare reads | ${quiet.providerReads} |`,
        `| requests the OpenAPI schema rejected | ${env.fake.schemaViolations.length} |`,
      ],
      failed: quiet.providerWrites + quiet.kubeWrites > 0 ? [`steady state wrote something: ${JSON.stringify(quiet.kubePaths)}`] : [],
    };
  } finally {
    await manager.stop();
  }
}

/**
 * The starting point of churn and steady: the controller in this process, the tunnels
 * and every binding created and Ready, and the controller settled. The caller stops it.
 */
export async function convergedInProcess(env: BenchEnv, options: BenchOptions): Promise<Manager> {
  const manager = inProcessController(env, options.workers);
  await manager.start();
  try {
    await createTunnels(env, options.tunnels);
    const started = Date.now();
    await createBindings(env, 0, options.bindings, options.tunnels);
    await waitBindingsReady(env, options.bindings, started);
    await settle(manager);
    log(`${options.bindings} bindings Ready ${seconds(Date.now() - started)} after the first create`);
    return manager;
  } catch (error) {
    await manager.stop();
    throw error;
  }
}
