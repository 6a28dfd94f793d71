// Leader election on a coordination.k8s.io/v1 Lease, with client-go's timing model.
//
// @kubernetes/client-node has no leader election, so this follows client-go's
// leaderelection package: a candidate takes the lease when the holder has not
// renewed it for leaseDuration (measured on the candidate's own clock from when it
// last saw the record change), the leader renews every retryPeriod, and a leader
// that cannot renew within renewDeadline stops leading.
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

export class LeaderElector {
  private readonly client: KubeClient;
  private readonly options: Required<Omit<LeaderElectionOptions, "logger">> & { logger?: Logger };
  private leading = false;
  private stopped = false;
  private observed?: { record: string; at: number };
  private lastRenew = 0;
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
    this.wake?.();
    await this.loop;
    if (this.leading) {
      this.setLeading(false);
      await this.release();
    }
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const ok = await this.tryAcquireOrRenew().catch((error: unknown) => {
        this.options.logger?.warn({ err: describe(error) }, "lease update failed");
        return false;
      });
      const now = Date.now();
      if (ok) {
        this.lastRenew = now;
        if (!this.leading) this.setLeading(true);
      } else if (this.leading && now - this.lastRenew > this.options.renewDeadlineMs) {
        this.options.logger?.error("could not renew the lease within the renew deadline; stopping leading");
        // Like client-go, a lost lease ends this elector: the manager stops its
        // controllers and the process is expected to exit and start afresh.
        this.stopped = true;
        this.setLeading(false);
        return;
      }
      await this.pause(this.options.retryPeriodMs);
    }
  }

  private setLeading(leading: boolean): void {
    this.leading = leading;
    this.options.logger?.info({ lease: this.options.name, identity: this.options.identity }, leading ? "became leader" : "stopped leading");
    if (leading) this.options.onStartedLeading();
    else this.options.onStoppedLeading();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.options;
    const now = Date.now();
    const spec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.round(this.options.leaseDurationMs / 1000),
      renewTime: microTime(now),
    };
    let lease: Lease;
    try {
      lease = await this.client.request<Lease>("GET", this.path, { timeoutMs: this.options.retryPeriodMs * 2 });
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
      await this.client.create<Lease>(LeaseType, {
        metadata: { name, namespace },
        spec: { ...spec, acquireTime: microTime(now), leaseTransitions: 0 },
      });
      return true;
    }
    const record = JSON.stringify(lease.spec ?? {});
    if (this.observed?.record !== record) this.observed = { record, at: now };
    const holder = lease.spec?.holderIdentity;
    const duration = (lease.spec?.leaseDurationSeconds ?? 15) * 1000;
    if (holder && holder !== identity && this.observed.at + duration > now) return false;
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
    await this.client.request("PUT", this.path, { body: next, timeoutMs: this.options.retryPeriodMs * 2 });
    this.observed = { record: JSON.stringify(next.spec), at: now };
    return true;
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
