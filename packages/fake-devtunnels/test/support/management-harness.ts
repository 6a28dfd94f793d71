// A fake management API on a fresh service, and the real SDK client pointed at it.
import { ManagementApiVersions, TunnelManagementHttpClient } from "@microsoft/dev-tunnels-management";
import { DevTunnelsService, type ServiceOptions } from "../../src/service.ts";
import { ManagementApi, type ManagementApiOptions } from "../../src/management/index.ts";

export const USER_AGENT = { name: "ktube-devtunnels-controller", version: "0.0.1" };

export interface ManagementHarness {
  service: DevTunnelsService;
  api: ManagementApi;
  /** `http://localhost:PORT` */
  baseUrl: string;
  /** A management token of the default identity (`sp-owner`). */
  token: string;
  /** The real SDK client, authenticating with `Bearer <token>` (default: the owner's). */
  client(token?: string | null): TunnelManagementHttpClient;
  /** A raw request (for what the SDK would never send). */
  raw(method: string, path: string, init?: { body?: unknown; rawBody?: string; headers?: Record<string, string>; token?: string | null }): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }>;
  /** The clock the service and API run on (ms); tests move it. */
  clock: { now: number };
  close(): Promise<void>;
}

export async function startManagement(
  options: { service?: ServiceOptions; api?: Partial<ManagementApiOptions> } = {},
): Promise<ManagementHarness> {
  const clock = { now: Date.parse("2026-11-23T10:00:00Z") };
  const service = new DevTunnelsService({ now: () => clock.now, ...options.service });
  const token = service.addUserToken("sp-owner");
  const api = new ManagementApi(service, {
    relayUri: (id) => `ws://localhost:1/api/v1/Host/Connect/${id}`,
    ...options.api,
  });
  const baseUrl = await api.start();
  const clients: TunnelManagementHttpClient[] = [];
  return {
    service,
    api,
    baseUrl,
    token,
    clock,
    client(t: string | null = token) {
      const c = new TunnelManagementHttpClient(
        USER_AGENT,
        ManagementApiVersions.Version20230927preview,
        () => Promise.resolve(t === null ? null : `Bearer ${t}`),
        `${baseUrl}/`,
      );
      clients.push(c);
      return c;
    },
    async raw(method, path, init = {}) {
      const t = init.token === undefined ? token : init.token;
      const body = init.rawBody ?? (init.body === undefined ? undefined : JSON.stringify(init.body));
      const res = await fetch(`${baseUrl}${path}`, {
        method,
        headers: {
          ...(t === null ? {} : { Authorization: `Bearer ${t}` }),
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
          ...init.headers,
        },
        ...(body === undefined ? {} : { body }),
      });
      const text = await res.text();
      return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
    },
    async close() {
      await Promise.all(clients.map((c) => c.dispose()));
      await api.close();
    },
  };
}

/** The HTTP status of an SDK error (an AxiosError with `response`). */
export function statusOf(error: unknown): number | undefined {
  return (error as { response?: { status?: number } } | undefined)?.response?.status;
}

/** Runs `fn`, expecting it to throw; returns the error. */
export async function failure(fn: () => Promise<unknown>): Promise<Error & { response?: { status: number; data: unknown; headers: Record<string, string> } }> {
  try {
    await fn();
  } catch (error) {
    return error as Error & { response?: { status: number; data: unknown; headers: Record<string, string> } };
  }
  throw new Error("expected the call to fail");
}
