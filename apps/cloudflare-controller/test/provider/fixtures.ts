// The real fake Cloudflare API on loopback, with one account and one token, for the
// provider modules' tests.
import { FakeCloudflare } from "@ktube/fake-cloudflare";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { CloudflareApi } from "../../src/provider/api.ts";
import { CallBudget, type CallBudgetOptions } from "../../src/provider/budget.ts";

export interface FakeAccount {
  fake: FakeCloudflare;
  account: string;
  token: string;
  /** A fresh API client (own budget unless one is given) against the fake. */
  api(options?: { token?: string; account?: string; baseURL?: string; budget?: CallBudget | CallBudgetOptions }): CloudflareApi;
  stop(): Promise<void>;
}

export async function startFake(): Promise<FakeAccount> {
  const fake = new FakeCloudflare();
  const account = fake.addAccount();
  const token = "provider-test-token";
  fake.addToken(token, [account]);
  await fake.start();
  return {
    fake,
    account,
    token,
    api: (options = {}) =>
      new CloudflareApi({
        accountId: options.account ?? account,
        token: options.token ?? token,
        baseURL: options.baseURL ?? fake.baseUrl,
        budget: options.budget instanceof CallBudget ? options.budget : new CallBudget(options.budget),
      }),
    stop: () => fake.stop(),
  };
}

/** Calls the fake answered for one operation id of the published schema. */
export const callsOf = (fake: FakeCloudflare, operation: string): number => fake.requests.filter((r) => r.operation === operation).length;

/** Cloudflare's error answer for a refused request. */
export interface Refusal {
  status: number;
  code: number;
  message: string;
}

/**
 * A loopback proxy in front of the fake that answers the requests `refuse` picks with
 * Cloudflare's error envelope, and passes everything else through: how Cloudflare
 * answers what the fake accepts (a token without some right, a configuration Cloudflare
 * rejects).
 */
export async function startRefusingProxy(target: string, refuse: (method: string, url: string) => Refusal | undefined): Promise<{ baseURL: string; stop(): Promise<void> }> {
  const upstream = new URL(target);
  const server: Server = createServer((req, res) => {
    const refusal = refuse(req.method ?? "GET", req.url ?? "");
    if (refusal) {
      res.writeHead(refusal.status, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ success: false, errors: [{ code: refusal.code, message: refusal.message }], messages: [], result: null }));
      return;
    }
    const forwarded = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    req.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}${upstream.pathname}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A token with Tunnel and DNS rights but none for Access: every Access request gets Cloudflare's 403. */
export const startAccessDenyingProxy = (target: string) =>
  startRefusingProxy(target, (_method, url) => (url.includes("/access/") ? { status: 403, code: 10000, message: "Authentication error" } : undefined));
