// ngrok benchmark against the test control plane and the fake ngrok cloud (REST API
// answering after 50 ms, limited to 120 calls per rolling minute), the controller in this
// process and the Tunnel's agents as real connector processes. It prints JSON and a table;
// --write puts the table in bench/README.md and the JSON in
// bench/ngrok/results-<scenario>.json. A failed check exits 1.
//
//   npm run bench:ngrok -w @ktube/bench -- [--write]
//     [--bindings 200 --tcp 40 --replicas 2 --latency 50 --workers 16 --steady <seconds>]
//
//   converge  (converge.ts) the bindings on one Tunnel created at once: time to all Ready,
//             REST calls (busiest minute, 429s), agent Binds, Kubernetes writes, connector
//             memory; then a full resync + 60 s must write nothing; then traffic spot checks
import { converge } from "./converge.ts";
import { parseOptions, type BenchOptions, type Scenario } from "./options.ts";
import { report, type ScenarioResult } from "./report.ts";
import { log, startEnv, type BenchEnv } from "./setup.ts";

const scenarios: Record<Scenario, (env: BenchEnv, options: BenchOptions) => Promise<ScenarioResult>> = { converge };

const options = parseOptions();
const env = await startEnv(options);
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
