// A small REST client for any Kubernetes resource type.
//
// @kubernetes/client-node's generated clients are one class per API group and its
// generic KubernetesObjectApi cannot send JSON patches, list with a continue token
// and resourceVersion together, or patch a subresource. Controllers need all of that
// for any kind, so this client speaks the REST conventions directly, reusing the
// library's KubeConfig for authentication and TLS.
import { HttpMethod, RequestContext, type KubeConfig, type V1ObjectMeta } from "@kubernetes/client-node";
import { fetch, type Dispatcher } from "undici";

/**
 * Where a kind lives in the REST API, and (as a phantom type) what its objects look
 * like, so that cache reads infer their type from the descriptor:
 * `cache.get(TunnelResource, ns, name)` is a `Tunnel`, with no explicit generic.
 */
export interface ResourceType<T = KubeObject> {
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
  /** Phantom: the object type of this kind; never set. */
  readonly __object?: T;
}

/**
 * Object metadata as this client receives it. Timestamps arrive as RFC 3339 strings (the
 * JSON is not revived into Dates, whatever client-node's typings say), and schema-derived
 * types (zod's) declare them as strings: both must be KubeObjects.
 */
export type ObjectMeta = Omit<V1ObjectMeta, "creationTimestamp" | "deletionTimestamp"> & {
  creationTimestamp?: string | Date;
  deletionTimestamp?: string | Date;
};

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

/** An object named by namespace (absent for cluster-scoped kinds) and name. */
export interface ObjectRef {
  namespace?: string;
  name: string;
}

export interface ObjectList<T> {
  items: T[];
  metadata: { resourceVersion?: string; continue?: string };
}

export const PatchType = {
  json: "application/json-patch+json",
  merge: "application/merge-patch+json",
  apply: "application/apply-patch+yaml",
} as const;
export type PatchType = (typeof PatchType)[keyof typeof PatchType];

/** An error answer of the API server, with its Status reason (`NotFound`, `Conflict`...). */
export class ApiError extends Error {
  override name = "ApiError";
  readonly status: number;
  readonly reason: string;
  readonly retryAfterSeconds?: number;

  constructor(status: number, reason: string, message: string, retryAfterSeconds?: number) {
    super(message);
    this.status = status;
    this.reason = reason;
    if (retryAfterSeconds !== undefined) this.retryAfterSeconds = retryAfterSeconds;
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof ApiError && e.status === 404;
export const isConflict = (e: unknown): boolean => e instanceof ApiError && e.status === 409;
export const isAlreadyExists = (e: unknown): boolean => e instanceof ApiError && e.reason === "AlreadyExists";

/** For `.catch(ignoreNotFound)` on deletes: an object already gone is what we wanted. */
export function ignoreNotFound(error: unknown): void {
  if (!isNotFound(error)) throw error;
}

export function resourcePath(type: ResourceType<unknown>, namespace?: string, name?: string, subresource?: string): string {
  const base = type.apiVersion.includes("/") ? `/apis/${type.apiVersion}` : `/api/${type.apiVersion}`;
  const ns = type.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  const tail = name ? `/${encodeURIComponent(name)}${subresource ? `/${subresource}` : ""}` : "";
  return `${base}${ns}/${type.plural}${tail}`;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
  /** Aborts the request (e.g. a leader's renew deadline, or a reconcile's signal). */
  signal?: AbortSignal;
}

/** Observes every request (for metrics such as rest_client_requests_total). */
export type RequestObserver = (method: string, type: string, code: number) => void;

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
}

/**
 * Calls take `ResourceType<unknown>`: they work for any kind whatever its object type;
 * the caller names the object type it expects (`client.get<Lease>(...)`).
 */
export class KubeClient {
  readonly kubeConfig: KubeConfig;
  private readonly observers: RequestObserver[] = [];
  /**
   * client-node hands every request a new undici Agent, that is a connection pool of
   * its own: each request then opened a TLS (HTTP/2) connection to the API server, a
   * handshake each and, with a couple of hundred requests a second, close to 200 MiB of
   * TLS and HTTP/2 state outside V8's heap. The first Agent is kept and every request
   * goes through it; what can change between requests (tokens) is in the headers, taken
   * each time. A client certificate is the one the process started with (in a cluster the
   * ServiceAccount token is a header).
   */
  private dispatcher?: Dispatcher;

  constructor(kubeConfig: KubeConfig) {
    this.kubeConfig = kubeConfig;
  }

  onRequest(observer: RequestObserver): void {
    this.observers.push(observer);
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const server = this.kubeConfig.getCurrentCluster()?.server;
    if (!server) throw new Error("the kubeconfig has no current cluster");
    const url = new URL(server + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const ctx = new RequestContext(url.toString(), method as HttpMethod);
    await this.kubeConfig.applySecurityAuthentication(ctx);
    this.dispatcher ??= ctx.getDispatcher() as Dispatcher | undefined;
    const headers: Record<string, string> = { ...ctx.getHeaders(), Accept: "application/json" };
    if (options.body !== undefined) headers["Content-Type"] = options.contentType ?? "application/json";
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        dispatcher: this.dispatcher,
        signal: withTimeout(options.signal, options.timeoutMs ?? 30_000),
      });
    } catch (error) {
      this.observe(method, path, 0);
      throw error;
    }
    this.observe(method, path, response.status);
    const text = await response.text();
    if (!response.ok) throw toApiError(response.status, text, response.headers.get("retry-after"));
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async get<T extends KubeObject>(type: ResourceType<unknown>, namespace: string | undefined, name: string, options: { signal?: AbortSignal } = {}): Promise<T> {
    return this.request<T>("GET", resourcePath(type, namespace, name), { signal: options.signal });
  }

  /** One page of a list; `continueToken` asks for the next one. */
  async listPage<T extends KubeObject>(type: ResourceType<unknown>, options: ListOptions & { continueToken?: string } = {}): Promise<ObjectList<T>> {
    return this.request<ObjectList<T>>("GET", resourcePath(type, options.namespace), {
      query: {
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
        limit: options.limit,
        continue: options.continueToken,
      },
    });
  }

  /** Every page of a list, with the resourceVersion of the snapshot. */
  async list<T extends KubeObject>(type: ResourceType<unknown>, options: ListOptions = {}): Promise<ObjectList<T>> {
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.listPage<T>(type, { limit: 500, ...options, continueToken });
      items.push(...page.items);
      resourceVersion = page.metadata.resourceVersion;
      continueToken = page.metadata.continue || undefined;
    } while (continueToken);
    return { items, metadata: { resourceVersion } };
  }

  async create<T extends KubeObject>(type: ResourceType<unknown>, object: T, fieldManager?: string): Promise<T> {
    return this.request<T>("POST", resourcePath(type, object.metadata?.namespace), {
      body: { apiVersion: type.apiVersion, kind: type.kind, ...object },
      query: { fieldManager },
    });
  }

  async patch<T extends KubeObject>(
    type: ResourceType<unknown>,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    patchType: PatchType,
    options: { subresource?: "status"; fieldManager?: string; force?: boolean; signal?: AbortSignal } = {},
  ): Promise<T> {
    return this.request<T>("PATCH", resourcePath(type, namespace, name, options.subresource), {
      body: patch,
      contentType: patchType,
      query: { fieldManager: options.fieldManager, force: options.force },
      signal: options.signal,
    });
  }

  /** Server-side apply of a whole object under `fieldManager`. */
  async apply<T extends KubeObject>(type: ResourceType<unknown>, object: T, fieldManager: string, subresource?: "status"): Promise<T> {
    const body = { apiVersion: type.apiVersion, kind: type.kind, ...object };
    return this.patch<T>(type, object.metadata?.namespace, object.metadata!.name!, body, PatchType.apply, {
      fieldManager,
      force: true,
      ...(subresource ? { subresource } : {}),
    });
  }

  async delete(
    type: ResourceType<unknown>,
    namespace: string | undefined,
    name: string,
    options: { uid?: string; propagationPolicy?: "Background" | "Foreground" | "Orphan"; signal?: AbortSignal } = {},
  ): Promise<void> {
    await this.request("DELETE", resourcePath(type, namespace, name), {
      signal: options.signal,
      body: {
        kind: "DeleteOptions",
        apiVersion: "v1",
        ...(options.uid ? { preconditions: { uid: options.uid } } : {}),
        ...(options.propagationPolicy ? { propagationPolicy: options.propagationPolicy } : {}),
      },
    });
  }

  private observe(method: string, path: string, code: number): void {
    for (const observer of this.observers) observer(method, path, code);
  }
}

function withTimeout(signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  return signal ? AbortSignal.any([signal, timeout]) : timeout;
}

function toApiError(status: number, body: string, retryAfter: string | null): ApiError {
  let reason = "Unknown";
  let message = body.slice(0, 1000) || `HTTP ${status}`;
  try {
    const parsed = JSON.parse(body) as { reason?: string; message?: string };
    reason = parsed.reason ?? reason;
    message = parsed.message ?? message;
  } catch {
    // not a Status object; keep the text
  }
  const seconds = retryAfter ? Number(retryAfter) : undefined;
  return new ApiError(status, reason, message, Number.isFinite(seconds) ? seconds : undefined);
}

/** `namespace/name`, or `name` for cluster-scoped objects: the workqueue's key. */
export function objectKey(object: KubeObject): string {
  const ns = object.metadata?.namespace;
  return ns ? `${ns}/${object.metadata?.name}` : `${object.metadata?.name}`;
}

export function parseKey(key: string): ObjectRef {
  const slash = key.indexOf("/");
  return slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
