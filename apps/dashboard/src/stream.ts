// Live updates: one Server-Sent Events stream per tab, fed by watches made with the user's
// own token. Each watch resumes from the resourceVersion the page was rendered from, relists
// on 410 Gone, and ends the stream on 401/403 (the browser then shows why). The client is only
// told *what* changed; it re-fetches that part of the page.
import type { ResourceDescriptor } from "@ktube/api";
import { KubeApiError, type UserClient } from "./kube.ts";
import { Bindings, EventsResource, Providers, Tunnels, resourcePath } from "./resources.ts";

/** One watch a page asks for (carried in the stream URL). */
export interface WatchSpec {
  kind: "providers" | "tunnels" | "bindings" | "events";
  namespace?: string;
  fieldSelector?: string;
  resourceVersion?: string;
}

const RESOURCES: Record<WatchSpec["kind"], ResourceDescriptor<unknown>> = {
  providers: Providers.resource,
  tunnels: Tunnels.resource,
  bindings: Bindings.resource,
  events: EventsResource,
};

export function encodeWatches(specs: WatchSpec[]): string {
  const params = new URLSearchParams();
  for (const spec of specs) params.append("w", JSON.stringify(spec));
  return `/stream?${params.toString()}`;
}

/** Parses the `w` parameters; anything malformed is refused (the watches run as the user anyway). */
export function decodeWatches(values: string[]): WatchSpec[] | undefined {
  const specs: WatchSpec[] = [];
  for (const value of values.slice(0, 32)) {
    let raw: unknown;
    try {
      raw = JSON.parse(value);
    } catch {
      return undefined;
    }
    if (typeof raw !== "object" || raw === null) return undefined;
    const r = raw as Record<string, unknown>;
    if (typeof r.kind !== "string" || !(r.kind in RESOURCES)) return undefined;
    const optional = (v: unknown): v is string | undefined => v === undefined || typeof v === "string";
    if (!optional(r.namespace) || !optional(r.fieldSelector) || !optional(r.resourceVersion)) return undefined;
    specs.push({
      kind: r.kind as WatchSpec["kind"],
      ...(r.namespace ? { namespace: r.namespace } : {}),
      ...(r.fieldSelector ? { fieldSelector: r.fieldSelector } : {}),
      ...(r.resourceVersion ? { resourceVersion: r.resourceVersion } : {}),
    });
  }
  return specs.length > 0 ? specs : undefined;
}

export interface StreamSink {
  /** Something changed for `kind`: the client re-fetches. */
  changed(kind: WatchSpec["kind"]): Promise<void>;
  /** The stream must end: the token is no longer accepted (401) or no longer allowed (403). */
  end(status: number, message: string): Promise<void>;
}

export interface WatchTiming {
  /** Server-side watch timeout; the watch restarts from its resourceVersion afterwards. */
  timeoutSeconds: number;
  retryDelayMs: (attempt: number) => number;
}

export const DEFAULT_WATCH_TIMING: WatchTiming = {
  timeoutSeconds: 240,
  retryDelayMs: (attempt) => Math.min(30_000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2),
};

/** Runs one watch until `signal` aborts or the user's rights end it. */
export async function runWatch(client: UserClient, spec: WatchSpec, sink: StreamSink, signal: AbortSignal, timing: WatchTiming = DEFAULT_WATCH_TIMING): Promise<void> {
  const path = resourcePath(RESOURCES[spec.kind], spec.namespace);
  const selector = spec.fieldSelector ? { fieldSelector: spec.fieldSelector } : {};
  let resourceVersion = spec.resourceVersion;
  let failures = 0;
  const relist = async (): Promise<void> => {
    const list = await client.request<{ metadata?: { resourceVersion?: string } }>("GET", path, { query: { ...selector, limit: 1 }, signal });
    resourceVersion = list.metadata?.resourceVersion;
    await sink.changed(spec.kind);
  };
  while (!signal.aborted) {
    try {
      if (!resourceVersion) await relist();
      for await (const event of client.watch<{ metadata?: { resourceVersion?: string }; code?: number; message?: string }>(
        path,
        { ...selector, resourceVersion, timeoutSeconds: timing.timeoutSeconds },
        signal,
      )) {
        failures = 0;
        if (event.type === "ERROR") {
          // 410 Gone arrives inside the stream: the resourceVersion is too old; relist.
          if (event.object.code === 410) resourceVersion = undefined;
          else throw new KubeApiError(event.object.code ?? 500, "WatchError", event.object.message ?? "watch error");
          break;
        }
        resourceVersion = event.object.metadata?.resourceVersion ?? resourceVersion;
        if (event.type !== "BOOKMARK") await sink.changed(spec.kind);
      }
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof KubeApiError && (error.status === 401 || error.status === 403)) {
        await sink.end(error.status, error.message);
        return;
      }
      if (error instanceof KubeApiError && error.status === 410) resourceVersion = undefined;
      await delay(timing.retryDelayMs(failures++), signal);
    }
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
