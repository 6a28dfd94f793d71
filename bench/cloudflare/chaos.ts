// chaos: converge with the controller as its own process, SIGKILLed every 5 s and started
// again at once while the bindings are created and converge. Afterwards nothing may be
// duplicated or left over: as many Cloudflare tunnels as Tunnels, no DNS record the
// bindings do not want and none missing, no Access application (none is asked for),
// every binding Ready. The bench fails (exit 1) otherwise. The calls are compared with
// the recorded converge run: the extra ones are what the kills cost.
import { TunnelBindingResource } from "@ktube/api";
import { ControllerProcess } from "./controller.ts";
import { desiredRecords, diffRecords, recordsMatch } from "./dns.ts";
import type { BenchOptions } from "./options.ts";
import { callRows, recordedCalls, seconds, sum, type ScenarioResult } from "./report.ts";
import { callCounter, createBindings, createTunnels, hostnameOf, isReady, log, NS, sleep, waitBindingsReady, type BenchEnv, type StatusObject } from "./setup.ts";

const KILL_EVERY_MS = 5000;
/** Killing stops here even if the bindings are not all Ready yet; one last process then converges alone. */
const KILL_FOR_AT_MOST_MS = 5 * 60_000;

export async function chaos(env: BenchEnv, options: BenchOptions): Promise<ScenarioResult> {
  const { bindings, tunnels, workers, heapMiB } = options;
  let controller = await ControllerProcess.start(env, workers, heapMiB);
  let lastStart = Date.now();
  let stopKilling = false;
  let kills = 0;
  // A kill is always followed by a start, so one process is running whenever this is idle.
  const killEvery5s = async (started: number): Promise<void> => {
    while (!stopKilling && Date.now() - started < KILL_FOR_AT_MOST_MS) {
      await sleep(KILL_EVERY_MS);
      if (stopKilling) break;
      await controller.kill();
      kills++;
      controller = await ControllerProcess.start(env, workers, heapMiB);
      lastStart = Date.now();
    }
  };

  let killer: Promise<void> = Promise.resolve();
  try {
    await createTunnels(env, tunnels);
    log(`${tunnels} tunnels ready; creating ${bindings} bindings, SIGKILLing the controller every ${KILL_EVERY_MS / 1000} s`);
    const calls = callCounter(env);
    const started = Date.now();
    killer = killEvery5s(started);
    await createBindings(env, 0, bindings, tunnels);
    await waitBindingsReady(env, bindings, started);
    const ready = Date.now() - started;
    stopKilling = true;
    await killer;
    log(`all ${bindings} Ready ${seconds(ready)} after the first create, ${kills} SIGKILLs; letting the last process finish`);

    const want = await desiredRecords(env, bindings, tunnels, (i) => hostnameOf(env, i));
    await waitLastProcessDone(env, want, () => lastStart);
    const converged = Date.now() - started;
    await controller.stop();
    const made = calls.since();
    return checkAftermath(env, options, { want, kills, ready, converged, made });
  } finally {
    stopKilling = true;
    await killer;
    await controller.stop();
  }
}

/**
 * The last process may still be finishing work the last kill cut short (a plan, a
 * config). Done means: up at least 10 s (its start-up reads made), no Cloudflare call
 * for 5 s, and the records as the bindings want them; at most 2 minutes, after which the
 * checks report what is wrong.
 */
async function waitLastProcessDone(env: BenchEnv, want: Set<string>, lastStart: () => number): Promise<void> {
  const deadline = Date.now() + 2 * 60_000;
  while (Date.now() < deadline) {
    const upLongEnough = Date.now() - lastStart() >= 10_000;
    const lastCallAt = env.fake.requests.at(-1)?.at ?? 0;
    const quiet = performance.now() - lastCallAt >= 5000; // the fake's log uses this clock
    if (upLongEnough && quiet && recordsMatch(diffRecords(env, want))) return;
    await sleep(500);
  }
  log("the last process did not settle within 2 minutes; checking what there is");
}

interface Aftermath {
  want: Set<string>;
  kills: number;
  ready: number;
  converged: number;
  made: Record<string, number>;
}

/** What the kills left behind, and what they cost compared with converge. */
async function checkAftermath(env: BenchEnv, options: BenchOptions, { want, kills, ready, converged, made }: Aftermath): Promise<ScenarioResult> {
  const { tunnels, bindings } = options;
  const names = env.fake.liveTunnels().map((t) => t.name);
  const duplicateNames = names.length - new Set(names).size;
  const dns = diffRecords(env, want);
  const apps = env.fake.apps.size;
  const readyAtEnd = (await env.client.list<StatusObject>(TunnelBindingResource, { namespace: NS })).items.filter(isReady).length;
  const converge = recordedCalls("converge", options);
  const extra = converge ? sum(made) - sum(converge) : undefined;
  const failed = [
    ...(names.length !== tunnels || duplicateNames > 0 ? [`${names.length} Cloudflare tunnels (${duplicateNames} duplicate names) for ${tunnels} Tunnels`] : []),
    ...(dns.unwanted.length > 0 ? [`${dns.unwanted.length} DNS records the bindings do not want, e.g. ${dns.unwanted[0]}`] : []),
    ...(dns.missing.length > 0 ? [`${dns.missing.length} wanted DNS records missing, e.g. ${dns.missing[0]}`] : []),
    ...(apps > 0 ? [`${apps} Access applications`] : []),
    ...(readyAtEnd < bindings ? [`only ${readyAtEnd}/${bindings} bindings Ready at the end`] : []),
  ];
  const extraText = extra === undefined ? "converge not recorded at this shape" : `${extra} more than converge's ${sum(converge!)}`;
  return {
    result: { kills, ready, converged, calls: made, extraCalls: extra, tunnels: names.length, duplicateTunnelNames: duplicateNames, unwantedRecords: dns.unwanted.length, missingRecords: dns.missing.length, accessApps: apps, readyAtEnd },
    table: [
      `| SIGKILLs (one every ${KILL_EVERY_MS / 1000} s until all Ready) | ${kills} |`,
      `| **all bindings Ready** (after the first create) | **${seconds(ready)}** |`,
      `| the last process done (no call for 5 s, DNS as wanted) | ${seconds(converged)} |`,
      `| **Cloudflare calls** (${extraText}) | **${sum(made)}** |`,
      ...callRows(made),
      `| Cloudflare tunnels afterwards (Tunnels: ${tunnels}) | **${names.length}** |`,
      `| DNS records no binding wants / wanted records missing | **${dns.unwanted.length} / ${dns.missing.length}** |`,
      `| Access applications (none asked for) | **${apps}** |`,
      `| bindings Ready at the end | ${readyAtEnd} / ${bindings} |`,
    ],
    failed,
  };
}
