// The per-account rate limit (120 per rolling 60 s, on an injected clock: nothing here
// waits a minute), injected faults and latency, and the request log.
import { afterEach, beforeEach, describe, expect, it } from "@jest/globals";
import { Account } from "../src/account.ts";
import { NgrokApi, type NgrokApiOptions } from "../src/api/index.ts";

const KEY = "2Limit_Key";
let account: Account;
let api: NgrokApi;
let base: string;
let clock: number;

async function call(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${KEY}`, "Ngrok-Version": "2", ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    ...(signal ? { signal } : {}),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function startApi(options: NgrokApiOptions = {}): Promise<void> {
  account = new Account();
  account.apiKeys.add(KEY);
  clock = 1_000_000;
  api = new NgrokApi(account, { now: () => clock, ...options });
  base = await api.start();
}

beforeEach(() => startApi());
afterEach(async () => {
  expect(api.responseViolations).toEqual([]);
  expect(api.schemaViolations).toEqual([]);
  await api.close();
});

describe("the rate limit", () => {
  it("serves 120 requests in 60 s, then 429 / ERR_NGROK_226 (no Retry-After), and admits again as the window slides", async () => {
    for (let i = 0; i < 60; i++) expect((await call("GET", "/reserved_domains")).status).toBe(200);
    clock += 30_000;
    for (let i = 0; i < 60; i++) expect((await call("GET", "/tunnel_sessions")).status).toBe(200);
    const refused = await call("GET", "/reserved_domains");
    expect(refused.status).toBe(429);
    expect(refused.json).toMatchObject({ error_code: "ERR_NGROK_226", status_code: 429, msg: "Your account is rate limited to 120 API requests per minute." });
    expect(refused.headers.get("retry-after")).toBeNull();
    // Any operation, creates included: refused before it takes effect.
    expect((await call("POST", "/reserved_addrs", {})).status).toBe(429);
    expect(account.reservedAddrs.size).toBe(0);

    clock += 29_999; // the first 60 are still 1 ms inside the window
    expect((await call("GET", "/reserved_domains")).status).toBe(429);
    clock += 1; // now they have slid out: 60 free slots
    for (let i = 0; i < 60; i++) expect((await call("GET", "/reserved_domains")).status).toBe(200);
    expect((await call("GET", "/reserved_domains")).status).toBe(429);
    expect(api.requestsInWindow()).toBe(120);
    expect(api.callsByOperation((r) => r.status === 429)).toEqual({ ReservedDomainsList: 3, ReservedAddrsCreate: 1 });
  });

  it("follows the account's plan, and does not count requests without a valid key", async () => {
    account.limits.apiRequestsPerMinute = 2;
    const stranger = await fetch(`${base}/reserved_domains`, { headers: { Authorization: "Bearer 2Other_Key", "Ngrok-Version": "2" } });
    expect(stranger.status).toBe(401);
    expect((await call("GET", "/reserved_domains")).status).toBe(200);
    expect((await call("GET", "/reserved_domains")).status).toBe(200);
    expect((await call("GET", "/reserved_domains")).json).toMatchObject({ error_code: "ERR_NGROK_226", msg: "Your account is rate limited to 2 API requests per minute." });
  });
});

describe("faults", () => {
  it("fails the next N calls of an operation with a 5xx before they take effect", async () => {
    api.injectFault("ReservedDomainsCreate", { count: 2, status: 502 });
    for (let i = 0; i < 2; i++) {
      const failed = await call("POST", "/reserved_domains", { domain: "f.example.com" });
      expect(failed.status).toBe(502);
      expect(failed.json).toMatchObject({ status_code: 502, details: { operation_id: expect.stringMatching(/^op_/) } });
    }
    expect(account.reservedDomains.size).toBe(0);
    expect((await call("GET", "/reserved_domains")).status).toBe(200); // other operations unaffected
    expect((await call("POST", "/reserved_domains", { domain: "f.example.com" })).status).toBe(201);
    expect(api.pendingFaults()).toEqual([]);
    expect(api.requests.map((r) => [r.operation, r.status, r.fault])).toEqual([
      ["ReservedDomainsCreate", 502, "5xx"],
      ["ReservedDomainsCreate", 502, "5xx"],
      ["ReservedDomainsList", 200, undefined],
      ["ReservedDomainsCreate", 201, undefined],
    ]);
  });

  it("can fail after the change was made, so a retry meets ERR_NGROK_413 and must adopt", async () => {
    api.injectFault("ReservedDomainsCreate", { when: "after" });
    expect((await call("POST", "/reserved_domains", { domain: "committed.example.com" })).status).toBe(503);
    expect(account.reservedDomain("committed.example.com")).toBeDefined();
    expect((await call("POST", "/reserved_domains", { domain: "committed.example.com" })).json.error_code).toBe("ERR_NGROK_413");
  });

  it("can leave a call unanswered until the client gives up", async () => {
    api.injectFault("*", { kind: "timeout" });
    const error = await call("GET", "/reserved_addrs", undefined, AbortSignal.timeout(200)).then(() => undefined, (e: unknown) => e);
    expect((error as Error).name).toBe("TimeoutError");
    expect(api.requests.at(-1)).toMatchObject({ operation: "ReservedAddrsList", status: 0, fault: "timeout" });
    expect((await call("GET", "/reserved_addrs")).status).toBe(200);
  });

  it("adds latency to every answer", async () => {
    api.configure({ latencyMs: 120 });
    const started = performance.now();
    expect((await call("GET", "/reserved_domains")).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(110);
  });
});
