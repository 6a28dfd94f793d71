// Failures become typed provider errors with the right condition reason, and listings
// are read to their last page.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import { ProviderError } from "@ktube/provider-kit";
import { RuntimeMetrics } from "@ktube/runtime";
import { createServer } from "node:net";
import { CloudflareApi, type Page } from "../../src/provider/api.ts";
import { CallBudget } from "../../src/provider/budget.ts";
import { CloudflareError, cloudflareError } from "../../src/provider/errors.ts";
import type { IngressConfig } from "../../src/provider/ingress.ts";
import { findOrCreateTunnel, getIngressConfig, listTunnels, putIngressConfig } from "../../src/provider/tunnels.ts";
import { ZoneDirectory } from "../../src/provider/zones.ts";
import { startAccessDenyingProxy, startFake, type FakeAccount } from "./fixtures.ts";

let cf: FakeAccount;

beforeAll(async () => {
  cf = await startFake();
});
afterEach(() => cf.fake.configure({ faultRate: 0 }));
afterAll(() => cf.stop());

const failure = async (p: Promise<unknown>): Promise<CloudflareError> => {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CloudflareError);
  expect(error).toBeInstanceOf(ProviderError);
  return error as CloudflareError;
};

describe("error reasons", () => {
  it("a rejected token is AuthenticationFailed", async () => {
    const error = await failure(new ZoneDirectory().zones(cf.api({ token: "not-a-token" })));
    expect([error.reason, error.status, error.code, error.name]).toEqual(["AuthenticationFailed", 403, 10000, "CloudflareError"]);
  });

  it("a 403 on an Access endpoint is AccessNotPermitted, while tunnels still work with the same token", async () => {
    const proxy = await startAccessDenyingProxy(cf.fake.baseUrl);
    try {
      const api = cf.api({ baseURL: proxy.baseURL });
      const error = await failure(api.call("access.applications.list", (sdk) => sdk.zeroTrust.access.applications.list({ account_id: cf.account })));
      expect([error.reason, error.status]).toEqual(["AccessNotPermitted", 403]);
      await expect(listTunnels(api)).resolves.toBeInstanceOf(Array);
    } finally {
      await proxy.stop();
    }
  });

  it("a 5xx is CloudflareUnavailable, not terminal", async () => {
    cf.fake.configure({ faultRate: 1 });
    const error = await failure(listTunnels(cf.api()));
    expect(error.reason).toBe("CloudflareUnavailable");
    expect(error.terminal).toBe(false);
    expect(error.status).toBeGreaterThanOrEqual(500);
  });

  it("no answer at all is CloudflareUnreachable", async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const error = await failure(listTunnels(cf.api({ baseURL: `http://127.0.0.1:${closedPort}/client/v4` })));
    expect(error.reason).toBe("CloudflareUnreachable");
    expect(error.status).toBeUndefined();
  });

  it("a 4xx on the tunnel configuration PUT is ConfigRejected and terminal; a missing tunnel is not", async () => {
    const api = cf.api();
    const tunnel = await findOrCreateTunnel(api, "config-rejected");
    const violations = cf.fake.schemaViolations.length;
    // A rule without a service: the published schema refuses it.
    const malformed = JSON.parse('{"ingress": [{"hostname": "a.example.com"}, {"service": "http_status:404"}]}') as IngressConfig;
    const error = await failure(putIngressConfig(api, tunnel.id, malformed));
    expect([error.reason, error.terminal, error.status]).toEqual(["ConfigRejected", true, 400]);
    expect(cf.fake.schemaViolations.length).toBe(violations + 1);
    expect(await getIngressConfig(api, tunnel.id)).toBeUndefined();

    const missing = await failure(putIngressConfig(api, "00000000-0000-4000-8000-000000000000", { ingress: [{ service: "http_status:404" }] }));
    expect([missing.reason, missing.terminal, missing.status]).toEqual(["CloudflareAPIError", false, 404]);
  });

  it("maps Cloudflare's name clash codes to DNSRecordConflict and other 4xx to CloudflareAPIError", () => {
    for (const code of [81053, 81054, 81055]) {
      expect(cloudflareError({ operation: "dns.records.batch", status: 400, code, message: "m" }).reason).toBe("DNSRecordConflict");
    }
    expect(cloudflareError({ operation: "dns.records.batch", status: 400, code: 81057, message: "m" }).reason).toBe("CloudflareAPIError");
    expect(cloudflareError({ operation: "access.applications.create", status: 401, message: "m" }).reason).toBe("AccessNotPermitted");
    expect(cloudflareError({ operation: "tunnels.configurations.update", status: 403, message: "m" }).reason).toBe("AuthenticationFailed");
    expect(cloudflareError({ operation: "tunnels.configurations.update", status: 422, message: "m" }).reason).toBe("ConfigRejected");
  });

  it("counts requests by operation and code", async () => {
    const metrics = new RuntimeMetrics();
    const api = new CloudflareApi({ accountId: cf.account, token: cf.token, baseURL: cf.fake.baseUrl, budget: new CallBudget(), metrics });
    await listTunnels(api);
    await expect(new ZoneDirectory().zones(new CloudflareApi({ accountId: cf.account, token: "bad", baseURL: cf.fake.baseUrl, budget: new CallBudget(), metrics }))).rejects.toThrow();
    const values = (await metrics.providerRequests.get()).values.map((v) => [v.labels.operation, v.labels.code, v.value]);
    expect(values).toEqual(expect.arrayContaining([["tunnels.list", "200", 1], ["zones.list", "403", 1]]));
  });
});

/** Hand-made pages: a server that caps per_page at `cap`, with or without page counts. */
function pages(items: string[], cap: number, counts: boolean, calls: { n: number }, number = 1): Page<string> {
  const slice = items.slice((number - 1) * cap, number * cap);
  return {
    getPaginatedItems: () => slice,
    // The SDK's rule: any non-empty page may have a next one.
    hasNextPage: () => slice.length > 0,
    getNextPage: async () => {
      calls.n++;
      return pages(items, cap, counts, calls, number + 1);
    },
    ...(counts ? { result_info: { page: number, total_pages: Math.ceil(items.length / cap), total_count: items.length } } : {}),
  };
}

describe("all()", () => {
  const items = Array.from({ length: 7 }, (_, i) => `item-${i}`);

  it("follows total_pages past pages shorter than asked for, and asks for no page past the last", async () => {
    const calls = { n: 1 };
    const got = await cf.api().all("test.list", async () => pages(items, 3, true, calls));
    expect(got).toEqual(items);
    expect(calls.n).toBe(3);
  });

  it("without page counts, pages on until an empty page", async () => {
    const calls = { n: 1 };
    const got = await cf.api().all("test.list", async () => pages(items, 3, false, calls));
    expect(got).toEqual(items);
    expect(calls.n).toBe(4);
  });
});
