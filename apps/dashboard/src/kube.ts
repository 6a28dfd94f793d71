// Talking to the API server as the signed-in user. The dashboard has no identity of its own:
// it knows only the API server's address and CA. One undici Agent (TLS pool) is shared by all
// users; who is calling is only the `Authorization: Bearer` header of each request.
import { Agent, fetch } from "undici";

/** Where the API server is and how to trust it: no credentials. */
export interface ApiServer {
  url: string;
  dispatcher: Agent;
}

export function apiServer(url: string, caPem: string | undefined): ApiServer {
  return { url: url.replace(/\/+$/, ""), dispatcher: new Agent({ connect: caPem ? { ca: caPem } : {} }) };
}

/** An error answer of the API server, with its Status reason and message (shown to the user as-is, escaped). */
export class KubeApiError extends Error {
  override name = "KubeApiError";
  readonly status: number;
  readonly reason: string;
  readonly causes: { field?: string; message?: string }[];

  constructor(status: number, reason: string, message: string, causes: { field?: string; message?: string }[] = []) {
    super(message);
    this.status = status;
    this.reason = reason;
    this.causes = causes;
  }
}

export const isForbidden = (e: unknown): boolean => e instanceof KubeApiError && e.status === 403;
export const isUnauthorized = (e: unknown): boolean => e instanceof KubeApiError && e.status === 401;
export const isNotFound = (e: unknown): boolean => e instanceof KubeApiError && e.status === 404;

type Query = Record<string, string | number | boolean | undefined>;

export interface WatchEvent<T = KubeObject> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    creationTimestamp?: string;
    deletionTimestamp?: string;
  };
}

export interface KubeList<T> {
  items: T[];
  metadata: { resourceVersion?: string; continue?: string };
}

/** The API server as one user (identified by `token`) sees it. */
export class UserClient {
  readonly server: ApiServer;
  private readonly token: string;

  constructor(server: ApiServer, token: string) {
    this.server = server;
    this.token = token;
  }

  private url(path: string, query: Query = {}): URL {
    const url = new URL(this.server.url + path);
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url;
  }

  private headers(withBody: boolean): Record<string, string> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    if (withBody) headers["Content-Type"] = "application/json";
    return headers;
  }

  async request<T>(method: string, path: string, options: { query?: Query; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const response = await fetch(this.url(path, options.query), {
        method,
        headers: this.headers(options.body !== undefined),
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        dispatcher: this.server.dispatcher,
        signal: options.signal ?? AbortSignal.timeout(30_000),
      });
      const text = await response.text();
      // 429: the API server is busy (or its watch cache still initialising, right after a CRD
      // is installed): wait as long as it asks, a few times, then report it.
      if (response.status === 429 && attempt < 3) {
        const seconds = Number(response.headers.get("retry-after") ?? "1");
        await new Promise((resolve) => setTimeout(resolve, Math.min(5, Number.isFinite(seconds) ? seconds : 1) * 1000));
        continue;
      }
      if (!response.ok) throw toApiError(response.status, text);
      return (text ? JSON.parse(text) : undefined) as T;
    }
  }

  /** Every page of a list, with the resourceVersion to watch from. */
  async list<T>(path: string, query: Query = {}): Promise<KubeList<T>> {
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.request<KubeList<T>>("GET", path, { query: { ...query, limit: 500, continue: continueToken } });
      items.push(...page.items);
      resourceVersion = page.metadata.resourceVersion;
      continueToken = page.metadata.continue || undefined;
    } while (continueToken);
    return { items, metadata: { resourceVersion } };
  }

  /**
   * One watch request: yields events until the server ends it (timeoutSeconds) or `signal`
   * aborts. A non-200 answer throws a KubeApiError; a 410 inside the stream arrives as an
   * ERROR event, for the caller to relist.
   */
  async *watch<T>(path: string, query: Query, signal: AbortSignal): AsyncGenerator<WatchEvent<T>> {
    const response = await fetch(this.url(path, { ...query, watch: 1, allowWatchBookmarks: true }), {
      headers: this.headers(false),
      dispatcher: this.server.dispatcher,
      signal,
    });
    if (!response.ok || !response.body) throw toApiError(response.status, await response.text());
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) yield JSON.parse(line) as WatchEvent<T>;
      }
    }
  }
}

interface StatusBody {
  kind?: string;
  reason?: string;
  message?: string;
  details?: { causes?: { field?: string; message?: string }[] };
}

function toApiError(status: number, text: string): KubeApiError {
  let body: StatusBody = {};
  try {
    body = JSON.parse(text) as StatusBody;
  } catch {
    // Not a Status object (a proxy's page): keep the text as the message.
  }
  return new KubeApiError(status, body.reason ?? String(status), body.message ?? (text.slice(0, 500) || `HTTP ${status}`), body.details?.causes ?? []);
}
