// The bench's command line: which scenario, and the shape it runs at. Defaults are the
// issue's: 200 endpoints on one Tunnel (40 of them TCP), 2 agent replicas.
import { parseArgs } from "node:util";

export const SCENARIOS = ["converge"] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface BenchOptions {
  scenario: Scenario;
  /** TunnelBindings, one route each, all on one Tunnel. */
  bindings: number;
  /** How many of them are TCP routes (a reserved address each, through the REST API); the rest HTTP on reserved domains. */
  tcp: number;
  /** Agent replicas of the Tunnel (each its own connector process). */
  replicas: number;
  /** What the fake REST API waits before each answer. */
  latencyMs: number;
  /** --max-concurrent-reconciles of the controller. */
  workers: number;
  /** The quiet period after a forced full resync. */
  steadySeconds: number;
  /** Put the table in bench/README.md and the JSON in bench/ngrok/results-<scenario>.json. */
  write: boolean;
}

export function parseOptions(argv: string[] = process.argv.slice(2)): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: "string", default: "converge" },
      bindings: { type: "string", default: "200" },
      tcp: { type: "string", default: "40" },
      replicas: { type: "string", default: "2" },
      latency: { type: "string", default: "50" },
      workers: { type: "string", default: "16" },
      steady: { type: "string", default: "60" },
      write: { type: "boolean", default: false },
    },
  });
  const scenario = values.scenario as Scenario;
  if (!SCENARIOS.includes(scenario)) throw new Error(`--scenario must be one of ${SCENARIOS.join(", ")}`);
  const bindings = positive("bindings", values.bindings);
  const tcp = positive("tcp", values.tcp, true);
  if (tcp > bindings) throw new Error(`--tcp (${tcp}) cannot exceed --bindings (${bindings})`);
  return {
    scenario,
    bindings,
    tcp,
    replicas: positive("replicas", values.replicas),
    latencyMs: positive("latency", values.latency, true),
    workers: positive("workers", values.workers),
    steadySeconds: positive("steady", values.steady, true),
    write: values.write,
  };
}

function positive(flag: string, text: string, zeroAllowed = false): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || (n === 0 && !zeroAllowed)) throw new Error(`--${flag} must be a ${zeroAllowed ? "non-negative" : "positive"} integer, not ${text}`);
  return n;
}
