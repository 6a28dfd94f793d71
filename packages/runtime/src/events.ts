// An Event recorder on events.k8s.io/v1 that turns repeats into a series.
//
// The first occurrence of (object, type, reason, action, note) creates an Event;
// repeats within `seriesWindowMs` only count up locally and are written as one
// `series` patch per `flushIntervalMs`, so a reconcile loop that fails every few
// seconds costs one write per interval instead of one per failure.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { type KubeClient, type KubeObject, PatchType, type ResourceType } from "./client.ts";
import { describe } from "./informer.ts";

export const EventType: ResourceType = { apiVersion: "events.k8s.io/v1", kind: "Event", plural: "events", namespaced: true };

export type EventKind = "Normal" | "Warning";

export interface EventRecorderOptions {
  /** `reportingController`, e.g. ktube.dev/cloudflare-controller. */
  controller: string;
  /** `reportingInstance`, e.g. the pod name. */
  instance: string;
  seriesWindowMs?: number;
  flushIntervalMs?: number;
  logger?: Logger;
}

interface SeriesEntry {
  name: string;
  namespace: string;
  count: number;
  written: number;
  lastSeen: number;
}

const NOTE_LIMIT = 1024;

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly options: Required<Omit<EventRecorderOptions, "logger">> & { logger?: Logger };
  private readonly series = new Map<string, SeriesEntry>();
  private timer?: NodeJS.Timeout;
  /** Writes made, for tests and benchmarks. */
  readonly stats = { created: 0, seriesPatches: 0, failures: 0 };

  constructor(client: KubeClient, options: EventRecorderOptions) {
    this.client = client;
    this.options = { seriesWindowMs: 6 * 60_000, flushIntervalMs: 30_000, ...options };
  }

  /** Records an event about `regarding`. Never throws: events are best effort. */
  async record(regarding: KubeObject, type: EventKind, reason: string, action: string, note: string): Promise<void> {
    const meta = regarding.metadata ?? {};
    const key = [meta.uid, type, reason, action, note].join("\u0000");
    const now = Date.now();
    const existing = this.series.get(key);
    if (existing && now - existing.lastSeen < this.options.seriesWindowMs) {
      existing.count++;
      existing.lastSeen = now;
      this.scheduleFlush();
      return;
    }
    if (this.series.size > 1000) this.sweep(now);
    const namespace = meta.namespace ?? "default";
    const name = `${meta.name}.${randomBytes(8).toString("hex")}`;
    const time = new Date(now).toISOString().replace("Z", "000Z");
    try {
      await this.client.create(EventType, {
        metadata: { name, namespace },
        eventTime: time,
        reportingController: this.options.controller,
        reportingInstance: this.options.instance,
        action,
        reason,
        note: note.length > NOTE_LIMIT ? `${note.slice(0, NOTE_LIMIT - 3)}...` : note,
        type,
        regarding: {
          apiVersion: regarding.apiVersion,
          kind: regarding.kind,
          name: meta.name,
          namespace: meta.namespace,
          uid: meta.uid,
          resourceVersion: meta.resourceVersion,
        },
      } as KubeObject);
      this.stats.created++;
      this.series.set(key, { name, namespace, count: 1, written: 1, lastSeen: now });
    } catch (error) {
      this.stats.failures++;
      this.options.logger?.warn({ err: describe(error), reason }, "could not record event");
    }
  }

  /** Writes pending series counts now. */
  async flush(): Promise<void> {
    this.timer = undefined;
    const now = Date.now();
    for (const [key, entry] of this.series) {
      if (entry.count > entry.written) {
        try {
          await this.client.patch(
            EventType,
            entry.namespace,
            entry.name,
            { series: { count: entry.count, lastObservedTime: new Date(entry.lastSeen).toISOString().replace("Z", "000Z") } },
            PatchType.merge,
          );
          entry.written = entry.count;
          this.stats.seriesPatches++;
        } catch (error) {
          this.stats.failures++;
          this.options.logger?.warn({ err: describe(error) }, "could not update event series");
          this.series.delete(key);
        }
      } else if (now - entry.lastSeen > this.options.seriesWindowMs) {
        this.series.delete(key);
      }
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    await this.flush();
  }

  private sweep(now: number): void {
    for (const [key, entry] of this.series) {
      if (entry.count === entry.written && now - entry.lastSeen > this.options.seriesWindowMs) this.series.delete(key);
    }
  }

  private scheduleFlush(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => void this.flush(), this.options.flushIntervalMs);
    this.timer.unref();
  }
}
