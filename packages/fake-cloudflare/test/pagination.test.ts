// Pagination per endpoint, as the OpenAPI document declares it, driven through the SDK.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import type Cloudflare from "cloudflare";
import { type FakeCloudflare, OPERATION_NAMES, OpenApiSchema, operationName, type ResultInfo, UNDOCUMENTED_DEFAULT_PER_PAGE } from "../src/index.ts";
import { rawGet, startFake, takeViolations } from "./support.ts";

let fake: FakeCloudflare;
let cf: Cloudflare;
let account: string;
let zoneId: string;
const RECORDS = 1200;

beforeAll(async () => {
  ({ fake, cf, account } = await startFake());
  zoneId = fake.addZone("big.example", account).id;
  fake.addDnsRecords(
    zoneId,
    Array.from({ length: RECORDS }, (_, i) => ({ type: i % 2 ? "TXT" : "CNAME", name: `r${i}.big.example`, content: i % 2 ? `"owner-${i}"` : "t.cfargotunnel.com" })),
  );
});
afterEach(() => {
  fake.configure({ pageSizeCaps: {} });
  expect(fake.schemaViolations).toEqual([]);
});
afterAll(() => fake.stop());

const dnsListCalls = () => fake.requests.filter((r) => r.name === "dns.records.list").length;

/** Lists a zone by asking for page after page until `result_info.total_pages`. */
async function listFollowingTotalPages(perPage: number): Promise<string[]> {
  const ids: string[] = [];
  for (let page = 1; ; page++) {
    const got = await cf.dns.records.list({ zone_id: zoneId, per_page: perPage, page });
    ids.push(...got.result.map((r) => r.id!));
    // The SDK types result_info as {page, per_page}; Cloudflare sends the totals too.
    if (page >= (got.result_info as ResultInfo).total_pages) return ids;
  }
}

/** The flawed client: stops at the first page shorter than it asked for, to save the trailing empty page. */
async function listStoppingAtShortPage(perPage: number): Promise<string[]> {
  const ids: string[] = [];
  for (let page = 1; ; page++) {
    const got = await cf.dns.records.list({ zone_id: zoneId, per_page: perPage, page });
    ids.push(...got.result.map((r) => r.id!));
    if (got.result.length < perPage) return ids;
  }
}

describe("DNS records (default 100, maximum 5,000,000 per page)", () => {
  it("seeds 1,200 records in one call", () => {
    expect([...fake.records.values()].filter((r) => r.zone_id === zoneId)).toHaveLength(RECORDS);
    expect(() => fake.addDnsRecords(zoneId, [{ type: "A", name: "r0.big.example", content: "192.0.2.1" }])).toThrow(/81053/);
  });

  it("pages by the documented default; the SDK, asking until an empty page, gets every record", async () => {
    const first = await cf.dns.records.list({ zone_id: zoneId });
    expect(first.result_info).toEqual({ page: 1, per_page: 100, count: 100, total_count: RECORDS, total_pages: 12 });
    const before = dnsListCalls();
    const ids = new Set<string>();
    for await (const r of cf.dns.records.list({ zone_id: zoneId })) ids.add(r.id!);
    expect(ids.size).toBe(RECORDS);
    expect(dnsListCalls() - before).toBe(13); // 12 pages and the empty one past the end
  });

  it("serves far more than 1,000 per page when asked, and an empty page past the end", async () => {
    const all = await cf.dns.records.list({ zone_id: zoneId, per_page: 5000 });
    expect(all.result_info).toEqual({ page: 1, per_page: 5000, count: RECORDS, total_count: RECORDS, total_pages: 1 });
    const past = await cf.dns.records.list({ zone_id: zoneId, per_page: 5000, page: 2 });
    expect(past.result).toEqual([]);
    expect(past.result_info).toMatchObject({ page: 2, count: 0, total_count: RECORDS, total_pages: 1 });
  });

  it("answers a per_page above the schema's maximum with 400, as the schema rejects it", async () => {
    const res = await rawGet(fake, `/zones/${zoneId}/dns_records?per_page=5000001`);
    expect(res.status).toBe(400);
    expect(takeViolations(fake).join()).toMatch(/per_page.*must be <= 5000000/);
    expect((await rawGet(fake, `/zones/${zoneId}/dns_records?per_page=0`)).status).toBe(400);
    expect(takeViolations(fake).join()).toMatch(/per_page.*must be >= 1/);
  });

  it("under a server cap, a client that follows total_pages gets everything; one that stops at a short page misses records", async () => {
    // The server may serve fewer than asked although the schema allows the ask (see
    // pagination.ts): every page is then "short" against the ask of 1,000.
    fake.configure({ pageSizeCaps: { "dns.records.list": 500 } });
    const capped = await cf.dns.records.list({ zone_id: zoneId, per_page: 1000, page: 3 });
    expect(capped.result_info).toEqual({ page: 3, per_page: 500, count: 200, total_count: RECORDS, total_pages: 3 });
    const following = await listFollowingTotalPages(1000);
    expect(new Set(following).size).toBe(RECORDS);
    const stopping = await listStoppingAtShortPage(1000);
    expect(stopping).toHaveLength(500);
    expect(RECORDS - stopping.length).toBe(700); // what a cleanup relying on it would leak
  });
});

describe("the other lists, each by its own documented rules", () => {
  it("zones: 20 by default, 5 to 50 per page", async () => {
    for (let i = 0; i < 24; i++) fake.addZone(`z${i}.example`, account);
    const first = await cf.zones.list();
    expect(first.result_info).toMatchObject({ page: 1, per_page: 20, count: 20, total_count: 25, total_pages: 2 });
    expect((await cf.zones.list({ per_page: 50 })).result).toHaveLength(25);
    expect((await rawGet(fake, "/zones?per_page=51")).status).toBe(400);
    expect((await rawGet(fake, "/zones?per_page=4")).status).toBe(400);
    expect(takeViolations(fake)).toHaveLength(2);
  });

  it("tunnels: no documented default (the fake uses 20), at most 1000 per page", async () => {
    for (let i = 0; i < 25; i++) await cf.zeroTrust.tunnels.cloudflared.create({ account_id: account, name: `t${i}`, config_src: "cloudflare" });
    const first = await cf.zeroTrust.tunnels.cloudflared.list({ account_id: account });
    expect(first.result_info).toMatchObject({ per_page: UNDOCUMENTED_DEFAULT_PER_PAGE, count: 20, total_count: 25, total_pages: 2 });
    expect((await cf.zeroTrust.tunnels.cloudflared.list({ account_id: account, per_page: 1000 })).result).toHaveLength(25);
    expect((await rawGet(fake, `/accounts/${account}/cfd_tunnel?per_page=1001`)).status).toBe(400);
    expect(takeViolations(fake).join()).toMatch(/must be <= 1000/);
  });

  it("identity providers: 200 by default, so a client assuming 100 does not stop early", async () => {
    for (let i = 0; i < 250; i++) fake.addIdentityProvider(account, { type: "github", name: `gh-${i}`, config: { client_id: "x", client_secret: "y" } });
    fake.addIdentityProvider(account, { type: "onetimepin" }); // the 251st: on page 2 only
    const first = await cf.zeroTrust.identityProviders.list({ account_id: account });
    expect(first.result_info).toMatchObject({ page: 1, per_page: 200, count: 200, total_count: 251, total_pages: 2 });
    const types: string[] = [];
    for await (const idp of cf.zeroTrust.identityProviders.list({ account_id: account })) types.push(idp.type!);
    expect(types).toHaveLength(251);
    expect(types).toContain("onetimepin");
  });

  it("Access applications: 1000 by default; Access reusable policies: 100", async () => {
    const app = await cf.zeroTrust.access.applications.create({ account_id: account, type: "self_hosted", domain: "a.z1.example", name: "a" });
    expect((await rawGet(fake, `/accounts/${account}/access/apps`)).json.result_info).toMatchObject({ per_page: 1000, count: 1 });
    expect((await rawGet(fake, `/accounts/${account}/access/policies`)).json.result_info).toMatchObject({ per_page: 100, count: 0 });
    expect((await rawGet(fake, `/accounts/${account}/access/apps/${app.id}/policies`)).json.result_info).toMatchObject({ per_page: 200 });
  });
});

describe("operation names", () => {
  it("names every operation of the schema after the SDK method that calls it", () => {
    const names = new OpenApiSchema().operations().map((op) => operationName(op.method, op.template));
    expect(names.filter((n) => !OPERATION_NAMES.includes(n))).toEqual([]);
    expect(new Set(names).size).toBe(names.length);
  });
});
