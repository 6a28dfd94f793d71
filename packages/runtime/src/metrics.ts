// Prometheus metrics under controller-runtime's names, on a registry per manager.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { QueueMetrics } from "./workqueue.ts";

/** What a queue reports about the work it has handed out and not yet seen done. */
export interface InFlightWork {
  unfinishedWorkSeconds(now?: number): number;
  longestRunningProcessorSeconds(now?: number): number;
}

const RECONCILE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60];
const QUEUE_BUCKETS = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 100, 1000];

export type ReconcileResult = "success" | "error" | "requeue" | "requeue_after";

export class RuntimeMetrics {
  readonly registry: Registry;
  readonly reconcileTotal: Counter<"controller" | "result">;
  readonly reconcileErrors: Counter<"controller">;
  readonly terminalReconcileErrors: Counter<"controller">;
  readonly reconcileTime: Histogram<"controller">;
  readonly maxConcurrentReconciles: Gauge<"controller">;
  readonly activeWorkers: Gauge<"controller">;
  readonly queueDepth: Gauge<"name" | "controller">;
  readonly queueAdds: Counter<"name" | "controller">;
  readonly queueRetries: Counter<"name" | "controller">;
  readonly queueDuration: Histogram<"name" | "controller">;
  readonly workDuration: Histogram<"name" | "controller">;
  readonly unfinishedWork: Gauge<"name" | "controller">;
  readonly longestRunningProcessor: Gauge<"name" | "controller">;
  readonly leaderStatus: Gauge<"name">;
  readonly restClientRequests: Counter<"code" | "method" | "host">;
  readonly providerRequests: Counter<"provider" | "operation" | "code">;
  /** Queues whose in-flight work the two gauges above report, by controller. */
  private readonly inFlightWork = new Map<string, InFlightWork>();

  constructor(registry: Registry = new Registry(), options: { processMetrics?: boolean } = {}) {
    this.registry = registry;
    const registers = [registry];
    this.reconcileTotal = new Counter({ name: "controller_runtime_reconcile_total", help: "Total number of reconciliations per controller", labelNames: ["controller", "result"], registers });
    this.reconcileErrors = new Counter({ name: "controller_runtime_reconcile_errors_total", help: "Total number of reconciliation errors per controller", labelNames: ["controller"], registers });
    this.terminalReconcileErrors = new Counter({ name: "controller_runtime_terminal_reconcile_errors_total", help: "Total number of terminal reconciliation errors per controller", labelNames: ["controller"], registers });
    this.reconcileTime = new Histogram({ name: "controller_runtime_reconcile_time_seconds", help: "Length of time per reconciliation per controller", labelNames: ["controller"], buckets: RECONCILE_BUCKETS, registers });
    this.maxConcurrentReconciles = new Gauge({ name: "controller_runtime_max_concurrent_reconciles", help: "Maximum number of concurrent reconciles per controller", labelNames: ["controller"], registers });
    this.activeWorkers = new Gauge({ name: "controller_runtime_active_workers", help: "Number of currently used workers per controller", labelNames: ["controller"], registers });
    this.queueDepth = new Gauge({ name: "workqueue_depth", help: "Current depth of workqueue", labelNames: ["name", "controller"], registers });
    this.queueAdds = new Counter({ name: "workqueue_adds_total", help: "Total number of adds handled by workqueue", labelNames: ["name", "controller"], registers });
    this.queueRetries = new Counter({ name: "workqueue_retries_total", help: "Total number of retries handled by workqueue", labelNames: ["name", "controller"], registers });
    this.queueDuration = new Histogram({ name: "workqueue_queue_duration_seconds", help: "How long in seconds an item stays in workqueue before being requested", labelNames: ["name", "controller"], buckets: QUEUE_BUCKETS, registers });
    this.workDuration = new Histogram({ name: "workqueue_work_duration_seconds", help: "How long in seconds processing an item from workqueue takes", labelNames: ["name", "controller"], buckets: QUEUE_BUCKETS, registers });
    // Sampled when read (every scrape and every get() runs collect), so the values are
    // current while a reconcile is stuck, which is what these gauges are for.
    const sampleInFlight = (gauge: Gauge<"name" | "controller">, read: (work: InFlightWork, now: number) => number): void => {
      const now = Date.now();
      for (const [controller, work] of this.inFlightWork) gauge.set({ name: controller, controller }, read(work, now));
    };
    this.unfinishedWork = new Gauge({
      name: "workqueue_unfinished_work_seconds",
      help: "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases.",
      labelNames: ["name", "controller"],
      registers,
      collect() {
        sampleInFlight(this, (work, now) => work.unfinishedWorkSeconds(now));
      },
    });
    this.longestRunningProcessor = new Gauge({
      name: "workqueue_longest_running_processor_seconds",
      help: "How many seconds has the longest running processor for workqueue been running.",
      labelNames: ["name", "controller"],
      registers,
      collect() {
        sampleInFlight(this, (work, now) => work.longestRunningProcessorSeconds(now));
      },
    });
    this.leaderStatus = new Gauge({ name: "leader_election_master_status", help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master", labelNames: ["name"], registers });
    this.restClientRequests = new Counter({ name: "rest_client_requests_total", help: "Number of HTTP requests to the Kubernetes API, partitioned by status code, method, and host", labelNames: ["code", "method", "host"], registers });
    this.providerRequests = new Counter({ name: "ktube_provider_requests_total", help: "Requests to a tunnel provider's API, by provider, operation and response code", labelNames: ["provider", "operation", "code"], registers });
    if (options.processMetrics) collectDefaultMetrics({ register: registry });
  }

  queueMetrics(controller: string): QueueMetrics {
    const labels = { name: controller, controller };
    return {
      add: () => this.queueAdds.inc(labels),
      depth: (n) => this.queueDepth.set(labels, n),
      retry: () => this.queueRetries.inc(labels),
      queued: (s) => this.queueDuration.observe(labels, s),
      worked: (s) => this.workDuration.observe(labels, s),
    };
  }

  /** Reports `work` as the in-flight work of `controller`'s queue. */
  trackInFlightWork(controller: string, work: InFlightWork): void {
    this.inFlightWork.set(controller, work);
    this.unfinishedWork.set({ name: controller, controller }, 0);
    this.longestRunningProcessor.set({ name: controller, controller }, 0);
  }

  /** Sum of a counter's samples whose labels match `labels`. */
  async count(name: string, labels: Record<string, string> = {}): Promise<number> {
    const metric = this.registry.getSingleMetric(name);
    if (!metric) return 0;
    const { values } = await metric.get();
    return values
      .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
      .reduce((sum, v) => sum + v.value, 0);
  }
}
