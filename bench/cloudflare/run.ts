// Cloudflare benchmarks against the test control plane and the fake Cloudflare API
// (50 ms per call). Each scenario prints JSON and a table; --write puts the table in
// bench/README.md and the JSON in bench/cloudflare/results-<scenario>.json. A failed
// check exits 1.
//
//   npm run bench:cloudflare -w @ktube/bench -- [--scenario converge|scale|churn|chaos|steady] [--write]
//     [--bindings N --tunnels N --zones N --latency 50 --workers 16 --steady <seconds> --heap <MiB>]
//
//   converge  (converge.ts) 1,000 bindings / 10 tunnels / 10 zones created at once: time to all
//             Ready, Cloudflare calls, Kubernetes writes; then a full resync + 60 s must write nothing
//   scale     (scale.ts) 10,000 bindings / 100 tunnels / 20 zones, the controller as its own
//             process: time, calls, peak RSS, CPU seconds
//   churn     (churn.ts) after converge, 10% of the bindings change hostname: calls and time
//             until Cloudflare's DNS is exactly what the bindings say
//   chaos     (chaos.ts) converge with the controller process SIGKILLed every 5 s:
//             duplicates, leftovers, extra calls
//   steady    (steady.ts) after converge, a full resync and 10 quiet minutes: writes (must
//             be 0), reads per minute
import { chaos } from "./chaos.ts";
import { churn } from "./churn.ts";
import { converge } from "./converge.ts";
import { parseOptions, type BenchOptions, type Scenario } from "./options.ts";
import { report, type ScenarioResult } from "./report.ts";
import { scale } from "./scale.ts";
import { log, startEnv, type BenchEnv } from "./setup.ts";
import { steady } from "./steady.ts";

const scenarios: Record<Scenario, (env: BenchEnv, options: BenchOptions) => Promise<ScenarioResult>> = { converge, scale, churn, chaos, steady };

const options = parseOptions();
const env = await startEnv({ latencyMs: options.latencyMs, zones: options.zones });
let outcome: ScenarioResult;
try {
  outcome = await scenarios[options.scenario](env, options);
} finally {
  await env.stop();
}
report(options, outcome);
if (outcome.failed.length > 0) {
  log(`FAILED: ${outcome.failed.join("; ")}`);
  process.exitCode = 1;
}
