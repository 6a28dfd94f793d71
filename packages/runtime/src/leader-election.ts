// Leader election on a coordination.k8s.io/v1 Lease, with client-go's timing model.
//
// @kubernetes/client-node has no leader election, so this follows client-go's
// leaderelection package: a candidate takes the lease when the holder has not
// renewed it for leaseDuration (measured on the candidate's own clock from when it
// last saw the record change), the leader renews every retryPeriod, and a leader
// that cannot renew within renewDeadline stops leading.
//
// Every attempt (GET, then PUT) is bounded by an AbortSignal that fires at
// lastRenew + renewDeadline, lastRenew being the START of the last successful attempt
// (the renewTime it wrote). A partitioned leader therefore gives up by renewTime +
// renewDeadline, before any candidate may take over at renewTime + leaseDuration.
import type { Logger } from "pino";
import { ApiError, type KubeClient, type KubeObject, resourcePath, type ResourceType } from "./client.ts";
import { describe } from "./informer.ts";

export const LeaseType: ResourceType = { apiVersion: "coordination.k8s.io/v1", kind: "Lease", plural: "leases", namespaced: true };

interface Lease extends KubeObject {
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  logger?: Logger;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
}

const microTime = (ms: number): string => new Date(ms).toISOString().replace("Z", "000Z");

/** What one attempt found: the lease is ours now, someone else holds it, or the attempt failed. */
type Attempt = "acquired" | "held-by-other" | "failed";

export class LeaderElector {
  private readonly client: KubeClient;
  private readonly options: Required<Omit<LeaderElectionOptions, "logger">> & { logger?: Logger };
  private leading = false;
  private stopped = false;
  private observed?: { record: string; at: number };
  /** Start of the last successful attempt: the renewTime written to the lease. */
  private lastRenew = 0;
  /** Aborts an attempt in flight when stop() is called. */
  private readonly stopping = new AbortController();
  private timer?: NodeJS.Timeout;
  private loop?: Promise<void>;
  private wake?: () => void;

  constructor(client: KubeClient, options: LeaderElectionOptions) {
    this.client = client;
    this.options = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...options };
  }

  private get path(): string {
    return resourcePath(LeaseType, this.options.namespace, this.options.name);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.loop = this.run();
  }

  /** Stops campaigning; a leader releases the lease so a successor need not wait it out. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    this.wake?.();
    await this.loop;
    if (this.leading) {
      this.setLeading(false);
      await this.release();
    }
  }

  private async run(): Promise<void> {
    const { renewDeadlineMs, retryPeriodMs } = this.options;
    while (!this.stopped) {
      const start = Date.now();
      // A leader's attempt may last only until its renew deadline; a candidate's, as
      // long as a renewal could (what it writes must still be fresh when it leads).
      const budget = this.leading ? renewDeadlineMs - (start - this.lastRenew) : renewDeadlineMs;
      if (budget <= 0) return this.lose("could not renew the lease within the renew deadline");
      const signal = AbortSignal.any([AbortSignal.timeout(budget), this.stopping.signal]);
      const outcome = await this.tryAcquireOrRenew(start, signal).catch((error: unknown): Attempt => {
        if (!this.stopped) this.options.logger?.warn({ err: describe(error) }, "lease update failed");
        return "failed";
      });
      if (this.stopped) return;
      if (outcome === "acquired") {
        this.lastRenew = start;
        if (!this.leading) this.setLeading(true);
      } else if (this.leading && outcome === "held-by-other") {
        return this.lose("another instance holds the lease");
      } else if (this.leading && Date.now() - this.lastRenew >= renewDeadlineMs) {
        return this.lose("could not renew the lease within the renew deadline");
      }
      await this.pause(retryPeriodMs);
    }
  }

  /**
   * Like client-go, a lost lease ends this elector: the manager halts its controllers
   * and the process is expected to exit and start afresh.
   */
  private lose(why: string): void {
    this.options.logger?.error({ lease: this.options.name }, `${why}; stopping leading`);
    this.stopped = true;
    this.setLeading(false);
  }

  private setLeading(leading: boolean): void {
    this.leading = leading;
    this.options.logger?.info({ lease: this.options.name, identity: this.options.identity }, leading ? "became leader" : "stopped leading");
    if (leading) this.options.onStartedLeading();
    else this.options.onStoppedLeading();
  }

  private async tryAcquireOrRenew(now: number, signal: AbortSignal): Promise<Attempt> {
    const { namespace, name, identity } = this.options;
    const spec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.round(this.options.leaseDurationMs / 1000),
      renewTime: microTime(now),
    };
    let lease: Lease;
    try {
      lease = await this.client.request<Lease>("GET", this.path, { signal });
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
      await this.client.request("POST", resourcePath(LeaseType, namespace), {
        body: { apiVersion: LeaseType.apiVersion, kind: LeaseType.kind, metadata: { name, namespace }, spec: { ...spec, acquireTime: microTime(now), leaseTransitions: 0 } },
        signal,
      });
      return "acquired";
    }
    const record = JSON.stringify(lease.spec ?? {});
    if (this.observed?.record !== record) this.observed = { record, at: now };
    const holder = lease.spec?.holderIdentity;
    const duration = (lease.spec?.leaseDurationSeconds ?? 15) * 1000;
    if (holder && holder !== identity && this.observed.at + duration > now) return "held-by-other";
    const takingOver = holder !== identity;
    const next: Lease = {
      ...lease,
      spec: {
        ...lease.spec,
        ...spec,
        acquireTime: takingOver ? microTime(now) : lease.spec?.acquireTime,
        leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + (takingOver && holder ? 1 : 0),
      },
    };
    // PUT with the read resourceVersion: two candidates racing cannot both win.
    await this.client.request("PUT", this.path, { body: next, signal });
    this.observed = { record: JSON.stringify(next.spec), at: now };
    return "acquired";
  }

  private async release(): Promise<void> {
    const { identity } = this.options;
    try {
      const lease = await this.client.request<Lease>("GET", this.path);
      if (lease.spec?.holderIdentity !== identity) return;
      await this.client.request("PUT", this.path, {
        body: { ...lease, spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: microTime(Date.now()) } },
      });
    } catch (error) {
      this.options.logger?.warn({ err: describe(error) }, "could not release the lease");
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(this.timer);
        resolve();
      };
    });
  }
}
