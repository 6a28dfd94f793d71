// The fake, driven through the official Cloudflare SDK the controller uses.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import Cloudflare from "cloudflare";
import { FakeCloudflare } from "../src/index.ts";

const TOKEN = "test-token";
let fake: FakeCloudflare;
let cf: Cloudflare;
let account: string;

beforeAll(async () => {
  fake = new FakeCloudflare();
  account = fake.addAccount();
  fake.addToken(TOKEN, [account]);
  cf = new Cloudflare({ apiToken: TOKEN, baseURL: await fake.start(), maxRetries: 0 });
});
afterEach(() => {
  fake.configure({ faultRate: 0, latencyMs: 0, rateLimit: { limit: 1200, windowMs: 300_000 } });
  expect(fake.schemaViolations).toEqual([]);
});
afterAll(() => fake.stop());

const apiError = async (p: Promise<unknown>) => {
  const error = (await p.then(() => undefined, (e: unknown) => e)) as InstanceType<typeof Cloudflare.APIError> | undefined;
  expect(error).toBeInstanceOf(Cloudflare.APIError);
  return { status: error!.status, code: (error!.errors as Array<{ code: number }>)[0]?.code };
};

describe("tunnels", () => {
  it("pages through a long list the way the SDK does (an empty page past the end)", async () => {
    for (let i = 0; i < 45; i++) await cf.zeroTrust.tunnels.cloudflared.create({ account_id: account, name: `page-${i}`, config_src: "cloudflare" });
    const names: string[] = [];
    for await (const t of cf.zeroTrust.tunnels.cloudflared.list({ account_id: account, is_deleted: false, per_page: 20 })) names.push(t.name!);
    expect(names.filter((n) => n.startsWith("page-"))).toHaveLength(45);
    expect(fake.callsByOperation()["cloudflare-tunnel-list-cloudflare-tunnels"]).toBe(4); // 20 + 20 + 5 + empty
  });

  it("refuses a second tunnel with the same name (1013) and a deletion with live connections (1022)", async () => {
    const t = await cf.zeroTrust.tunnels.cloudflared.create({ account_id: account, name: "dup", config_src: "cloudflare" });
    expect(await apiError(cf.zeroTrust.tunnels.cloudflared.create({ account_id: account, name: "dup" }))).toEqual({ status: 409, code: 1013 });
    fake.setConnections(t.id!, 2);
    expect(await apiError(cf.zeroTrust.tunnels.cloudflared.delete(t.id!, { account_id: account }))).toEqual({ status: 400, code: 1022 });
    await cf.zeroTrust.tunnels.cloudflared.connections.delete(t.id!, { account_id: account });
    const deleted = await cf.zeroTrust.tunnels.cloudflared.delete(t.id!, { account_id: account });
    expect(deleted.deleted_at).toBeTruthy();
    // The name is free again once the tunnel is deleted.
    await cf.zeroTrust.tunnels.cloudflared.create({ account_id: account, name: "dup", config_src: "cloudflare" });
  });

  it("stores remote configuration, accepting the hostname-less catch-all only as the last rule", async () => {
    const t = await cf.zeroTrust.tunnels.cloudflared.create({ account_id: account, name: "config", config_src: "cloudflare" });
    await cf.zeroTrust.tunnels.cloudflared.configurations.update(t.id!, {
      account_id: account,
      // The SDK's types inherit the schema's gap (hostname required on the catch-all).
      config: { ingress: [{ hostname: "a.example.com", service: "http://web.shop.svc.cluster.local:80" }, { service: "http_status:404" } as never] },
    });
    const got = await cf.zeroTrust.tunnels.cloudflared.configurations.get(t.id!, { account_id: account });
    expect(got.version).toBe(1);
    expect(got.config?.ingress?.at(-1)).toEqual({ service: "http_status:404" });
    await expect(
      cf.zeroTrust.tunnels.cloudflared.configurations.update(t.id!, {
        account_id: account,
        config: { ingress: [{ service: "http_status:404" }, { hostname: "a.example.com", service: "http://x:80" }] as never },
      }),
    ).rejects.toThrow(/OpenAPI schema/);
    expect(fake.schemaViolations).toHaveLength(1);
    fake.schemaViolations.length = 0;
  });

  it("hands out the connector token", async () => {
    const t = await cf.zeroTrust.tunnels.cloudflared.create({ account_id: account, name: "token", config_src: "cloudflare" });
    const token = await cf.zeroTrust.tunnels.cloudflared.token.get(t.id!, { account_id: account });
    expect(JSON.parse(Buffer.from(String(token), "base64").toString())).toMatchObject({ a: account, t: t.id });
  });
});

describe("DNS", () => {
  it("creates records and answers 81053 / 81057 for clashing ones; batches are all or nothing", async () => {
    const zone = fake.addZone("example.com", account);
    const zones = await cf.zones.list({ name: "example.com" });
    expect(zones.result.map((z) => z.id)).toEqual([zone.id]);
    const cname = { zone_id: zone.id, type: "CNAME" as const, name: "app.example.com", content: "t.cfargotunnel.com", proxied: true, ttl: 1 as const };
    await cf.dns.records.create(cname);
    expect(await apiError(cf.dns.records.create(cname))).toEqual({ status: 400, code: 81057 });
    expect(await apiError(cf.dns.records.create({ ...cname, content: "other.cfargotunnel.com" }))).toEqual({ status: 400, code: 81053 });
    await cf.dns.records.create({ zone_id: zone.id, type: "TXT", name: "app.example.com", content: '"owner"', ttl: 1 });
    const listed = await cf.dns.records.list({ zone_id: zone.id, name: { exact: "app.example.com" } });
    expect(listed.result.map((r) => r.type).sort()).toEqual(["CNAME", "TXT"]);

    const before = fake.records.size;
    await expect(
      cf.dns.records.batch({ zone_id: zone.id, posts: [{ type: "A", name: "b.example.com", content: "192.0.2.1", ttl: 1 }, cname] }),
    ).rejects.toThrow();
    expect(fake.records.size).toBe(before);
  });

  it("creates zones through the API (pending, as a new live zone is) and refuses one added twice with 1061", async () => {
    const zone = await cf.zones.create({ account: { id: account }, name: "api-made.example", type: "full" });
    expect(zone).toMatchObject({ name: "api-made.example", status: "pending", account: { id: account } });
    expect(await apiError(cf.zones.create({ account: { id: account }, name: "api-made.example" }))).toEqual({ status: 400, code: 1061 });
    // Records can be made on a pending zone; Access applications cannot (see access.test.ts).
    await cf.dns.records.create({ zone_id: zone.id, type: "A", name: "www.api-made.example", content: "192.0.2.1", ttl: 1 });
  });

  it("rejects a request the schema does not allow, and records it", async () => {
    const zone = fake.addZone("schema.example", account);
    const res = await fetch(`${fake.baseUrl}/zones/${zone.id}/dns_records`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ type: "CNAME", name: "x.schema.example", content: "y" }), // no ttl
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: Array<{ code: number }> }).errors[0]?.code).toBe(9999);
    expect(fake.schemaViolations[0]?.violations.join()).toContain("ttl");
    fake.schemaViolations.length = 0;
  });
});

describe("Access", () => {
  it("creates a self-hosted application with an allow policy", async () => {
    fake.addZone("access.example", account); // Access takes only domains in an active zone of the account
    const app = await cf.zeroTrust.access.applications.create({ account_id: account, type: "self_hosted", domain: "admin.access.example", name: "admin" });
    await cf.zeroTrust.access.applications.policies.create(app.id!, {
      account_id: account,
      name: "ktube",
      decision: "allow",
      include: [{ email: { email: "alice@example.com" } }, { email_domain: { domain: "example.com" } }],
    });
    const policies = [];
    for await (const p of cf.zeroTrust.access.applications.policies.list(app.id!, { account_id: account })) policies.push(p);
    expect(policies).toHaveLength(1);
    await cf.zeroTrust.access.applications.delete(app.id!, { account_id: account });
    expect(fake.apps.size).toBe(0);
  });
});

describe("faults", () => {
  it("rejects an unknown token with 10000", async () => {
    const bad = new Cloudflare({ apiToken: "nope", baseURL: fake.baseUrl, maxRetries: 0 });
    expect(await apiError(bad.user.tokens.verify())).toEqual({ status: 403, code: 10000 });
    expect((await cf.user.tokens.verify()).status).toBe("active");
  });

  it("rate-limits per token: 429 with code 971 and Retry-After, every call blocked until the block ends", async () => {
    fake.configure({ rateLimit: { limit: 3, windowMs: 1500 } });
    for (let i = 0; i < 3; i++) await cf.user.tokens.verify();
    const res = await fetch(`${fake.baseUrl}/user/tokens/verify`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(((await res.json()) as { errors: Array<{ code: number }> }).errors[0]?.code).toBe(971);
    expect(await apiError(cf.zones.list())).toEqual({ status: 429, code: 971 });
    await new Promise((r) => setTimeout(r, 1600));
    expect((await cf.user.tokens.verify()).status).toBe("active");
  });

  it("injects 5xx faults, half of them after the change was made", async () => {
    fake.configure({ faultRate: 1 });
    const before = fake.liveTunnels().length;
    const outcomes = [];
    for (let i = 0; i < 4; i++) outcomes.push((await apiError(cf.zeroTrust.tunnels.cloudflared.create({ account_id: account, name: `fault-${i}` }))).status);
    expect(outcomes.every((s) => (s ?? 0) >= 500)).toBe(true);
    expect(fake.liveTunnels().length - before).toBe(2); // the "after" faults made their tunnel
  });

  it("adds the configured latency", async () => {
    fake.configure({ latencyMs: 100 });
    const started = Date.now();
    await cf.user.tokens.verify();
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
  });
});
