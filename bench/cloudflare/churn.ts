// churn: after converging, 10% of the bindings change hostname (same zone). Cloudflare
// calls, and the time until the fake's DNS is exactly what the bindings say (new CNAMEs
// and marks, nothing of the old hostnames) and every binding is Ready with its new URL.
import { TunnelBindingResource } from "@ktube/api";
import { PatchType } from "@ktube/runtime";
import { kubeWrites, settle } from "./controller.ts";
import { convergedInProcess } from "./converge.ts";
import { desiredRecords, diffRecords, recordsMatch } from "./dns.ts";
import type { BenchOptions } from "./options.ts";
import { callRows, seconds, sum, type ScenarioResult } from "./report.ts";
import { callCounter, hostnameOf, log, NS, parallel, sleep, waitBindingsReady, type BenchEnv } from "./setup.ts";

const TIMEOUT_MS = 10 * 60_000;

export async function churn(env: BenchEnv, options: BenchOptions): Promise<ScenarioResult> {
  const { bindings, tunnels } = options;
  const manager = await convergedInProcess(env, options);
  try {
    const renamed = renamedBindings(bindings);
    const hostname = (i: number) => hostnameOf(env, i, renamed.has(i) ? `renamed-${i}` : `b${i}`);
    log(`renaming ${renamed.size} hostnames`);
    const calls = callCounter(env);
    const w0 = await kubeWrites(manager);
    const started = Date.now();
    const patched = [...renamed];
    await parallel(patched.length, 32, async (k) => {
      const i = patched[k]!;
      await env.client.patch(TunnelBindingResource, NS, `b${i}`, [{ op: "replace", path: "/spec/routes/0/hostname", value: hostname(i) }], PatchType.json);
    });
    const want = await desiredRecords(env, bindings, tunnels, hostname);
    await waitDnsMatches(env, want, started);
    const dnsMatches = Date.now() - started;
    await waitUrls(env, patched, hostname, started);
    await waitBindingsReady(env, bindings, started, TIMEOUT_MS);
    const statusMatches = Date.now() - started;
    await settle(manager);
    const made = calls.since();
    const writes = (await kubeWrites(manager)) - w0;
    log(`DNS matched ${seconds(dnsMatches)} after the first patch; every binding Ready with its URL after ${seconds(statusMatches)}`);
    return {
      result: { renamed: renamed.size, dnsMatches, statusMatches, calls: made, kubernetesWrites: writes },
      table: [
        `| hostnames renamed (10% of the bindings, 32 patches in parallel) | ${renamed.size} |`,
        `| **DNS matches the bindings** (after the first patch) | **${seconds(dnsMatches)}** |`,
        `| every binding Ready, the renamed ones showing their new URL | ${seconds(statusMatches)} |`,
        `| **Cloudflare calls** | **${sum(made)}** |`,
        ...callRows(made),
        `| Kubernetes writes by the controller | ${writes} |`,
      ],
      failed: [],
    };
  } finally {
    await manager.stop();
  }
}

/**
 * Every tenth binding, shifted by one more in each run of ten (0, 11, 22, ... 99, 100,
 * 111...), so that every tunnel and every zone gets its share: plain multiples of ten
 * would all sit on one tunnel and one zone when both counts divide ten.
 */
function renamedBindings(bindings: number): Set<number> {
  const count = Math.round(bindings / 10);
  return new Set(Array.from({ length: count }, (_, k) => k * 10 + (k % 10)).filter((i) => i < bindings));
}

/** Polls the fake's store (cheap, no call) until its records are exactly `want`. */
async function waitDnsMatches(env: BenchEnv, want: Set<string>, since: number): Promise<void> {
  for (;;) {
    const diff = diffRecords(env, want);
    if (recordsMatch(diff)) return;
    if (Date.now() - since > TIMEOUT_MS) throw new Error(`DNS did not match the bindings within 10 minutes: ${diff.unwanted.length} unwanted, ${diff.missing.length} missing, e.g. ${[...diff.unwanted, ...diff.missing][0]}`);
    await sleep(250);
  }
}

async function waitUrls(env: BenchEnv, indexes: number[], hostname: (i: number) => string, since: number): Promise<void> {
  for (;;) {
    const items = (await env.client.list<{ metadata: { name: string }; status?: { routes?: Array<{ url?: string }> } }>(TunnelBindingResource, { namespace: NS })).items;
    const urls = new Map(items.map((b) => [b.metadata.name, b.status?.routes?.[0]?.url]));
    if (indexes.every((i) => urls.get(`b${i}`) === `https://${hostname(i)}/`)) return;
    if (Date.now() - since > TIMEOUT_MS) throw new Error("renamed bindings did not show their new URL within 10 minutes");
    await sleep(1000);
  }
}
