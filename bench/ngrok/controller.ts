// The ngrok controller under measurement, in this process (as the app's tests run it), so
// its Kubernetes writes are counted from its own metrics; the connectors it deploys are
// separate processes (agents.ts) whose writes are not in these counts.
import { ngrokPlugin } from "@ktube/ngrok-controller/plugin";
import { registerProviderControllers } from "@ktube/provider-kit";
import { createLogger, Manager } from "@ktube/runtime";
import { NS, sleep, type BenchEnv } from "./setup.ts";

const MANAGED_BY = "ktube-ngrok-controller";

export function inProcessController(env: BenchEnv, workers: number): Manager {
  const manager = new Manager({ kubeConfig: env.kc, name: "ngrok-controller", logger: createLogger({ level: process.env.LOG_LEVEL ?? "warn" }), probeAddress: false, metricsAddress: false });
  registerProviderControllers(
    manager,
    ngrokPlugin({ connectorImage: "ktube/ngrok-controller:bench", serverAddr: env.fake.serverAddr, caPem: env.fake.caPem, api: { baseUrl: env.fake.apiUrl } }),
    { namespace: NS, managedBy: MANAGED_BY, maxConcurrentReconciles: workers, configDelayMs: 1000 },
  );
  return manager;
}

/** Kubernetes requests other than GET, from the manager's rest client metrics. */
export async function kubeWrites(manager: Manager): Promise<number> {
  return (await manager.metrics.count("rest_client_requests_total")) - (await manager.metrics.count("rest_client_requests_total", { method: "GET" }));
}

/** Waits until no controller has work queued or in flight, then 3 s more for delayed keys and the last writes to land. */
export async function settle(manager: Manager): Promise<void> {
  while (!manager.settled) await sleep(200);
  await sleep(3000);
}

export interface KubeWrite {
  at: number;
  method: string;
  path: string;
  code: number;
}

/** Records the controller's Kubernetes writes from now on, to say what wrote (and when). */
export function recordKubeWrites(manager: Manager): KubeWrite[] {
  const writes: KubeWrite[] = [];
  manager.client.onRequest((method, path, code) => {
    if (method !== "GET") writes.push({ at: Date.now(), method, path, code });
  });
  return writes;
}

/** Writes counted by `METHOD resource[/subresource]` (names dropped), e.g. `PATCH tunnelbindings/status`. */
export function writesByKind(writes: readonly KubeWrite[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const w of writes) {
    const parts = w.path.split("?")[0]!.split("/");
    const ns = parts.indexOf("namespaces");
    // .../namespaces/<ns>/<resource>[/<name>[/<sub>]] or a cluster-scoped .../<resource>[/<name>[/<sub>]]
    const rest = ns >= 0 && parts.length > ns + 2 ? parts.slice(ns + 2) : parts.slice(parts[1] === "api" ? 3 : 4);
    const kind = `${w.method} ${rest[0]}${rest[2] ? `/${rest[2]}` : ""}`;
    counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}
