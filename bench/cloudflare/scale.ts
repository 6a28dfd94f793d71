// scale: 10,000 bindings over 100 tunnels in 20 zones, the controller as its own process
// so that its memory (peak VmRSS, sampled every second) and CPU time are its own.
// Target: peak RSS under 256 MiB.
import { ControllerProcess } from "./controller.ts";
import { chartHeapMiB, type BenchOptions } from "./options.ts";
import { callRows, seconds, sum, type ScenarioResult } from "./report.ts";
import { callCounter, createBindings, createTunnels, log, sleep, waitBindingsReady, type BenchEnv } from "./setup.ts";

const RSS_TARGET_MIB = 256;

export async function scale(env: BenchEnv, options: BenchOptions): Promise<ScenarioResult> {
  const { bindings, tunnels, workers, heapMiB } = options;
  const controller = await ControllerProcess.start(env, workers, heapMiB);
  try {
    await createTunnels(env, tunnels);
    log(`${tunnels} tunnels ready; creating ${bindings} bindings`);
    const calls = callCounter(env);
    const [w0, cpu0] = [await controller.kubeWrites(), controller.cpuSeconds()];
    const started = Date.now();
    await createBindings(env, 0, bindings, tunnels);
    const created = Date.now() - started;
    await waitBindingsReady(env, bindings, started);
    const ready = Date.now() - started;
    const cpu = controller.cpuSeconds() - cpu0;
    // The last status writes after the LIST that saw all Ready, before counting.
    await sleep(5000);
    const writes = (await controller.kubeWrites()) - w0;
    const converged = calls.since();
    const rss = { peak: controller.peakRssMiB, end: controller.rssMiB() };
    log(`all ${bindings} Ready ${seconds(ready)} after the first create; peak RSS ${rss.peak.toFixed(0)} MiB, ${cpu.toFixed(1)} CPU seconds`);
    return {
      result: { created, ready, calls: converged, kubernetesWrites: writes, cpuSeconds: cpu, rssMiB: rss, heapMiB },
      table: [
        `| all bindings created (client side, 32 in parallel) | ${seconds(created)} |`,
        `| **all bindings Ready** (after the first create) | **${seconds(ready)}** |`,
        `| **Cloudflare calls to converge** | **${sum(converged)}** |`,
        ...callRows(converged),
        `| Kubernetes writes by the controller | ${writes} (${(writes / bindings).toFixed(2)} per binding) |`,
        `| **controller peak RSS** (target < ${RSS_TARGET_MIB} MiB) | **${rss.peak.toFixed(0)} MiB** (${rss.end.toFixed(0)} MiB at the end; V8 heap ${heapMiB ? `limited to ${heapMiB} MiB${heapMiB === chartHeapMiB() ? ", as the chart's memory limit sets it" : ""}` : "unlimited"}) |`,
        `| controller CPU, first create to all Ready | ${cpu.toFixed(1)} s |`,
      ],
      failed: rss.peak >= RSS_TARGET_MIB ? [`peak RSS ${rss.peak.toFixed(0)} MiB is over the ${RSS_TARGET_MIB} MiB target`] : [],
    };
  } finally {
    await controller.stop();
  }
}
