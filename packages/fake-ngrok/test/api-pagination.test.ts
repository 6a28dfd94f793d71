// ngrok's list pagination: limit (default and max 100) + before_id, newest first,
// next_page_uri (a full URL) null at the end.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import { Account } from "../src/account.ts";
import { NgrokApi } from "../src/api/index.ts";

const KEY = "2Pager_Key";
let account: Account;
let api: NgrokApi;
let base: string;

async function get(url: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url.startsWith("http") ? url : `${base}${url}`, { headers: { Authorization: `Bearer ${KEY}`, "Ngrok-Version": "2" } });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

type Listed = { reserved_domains: Array<{ id: string; domain: string }>; next_page_uri: string | null; uri: string };

beforeAll(async () => {
  // 250 reservations made through the API (250 of 120/min: the window is widened for this file).
  account = new Account({ limits: { apiRequestsPerMinute: 10_000 } });
  account.apiKeys.add(KEY);
  api = new NgrokApi(account);
  base = await api.start();
  for (let i = 0; i < 250; i++) {
    const res = await fetch(`${base}/reserved_domains`, {
      method: "POST",
      headers: { Authorization: `Bearer ${KEY}`, "Ngrok-Version": "2", "Content-Type": "application/json" },
      body: JSON.stringify({ domain: `d${String(i).padStart(3, "0")}.example.com` }),
    });
    expect(res.status).toBe(201);
  }
});
afterEach(() => {
  expect(api.responseViolations).toEqual([]);
  expect(api.schemaViolations).toEqual([]);
});
afterAll(() => api.close());

describe("pagination", () => {
  it("serves 100 per page by default, newest first, following next_page_uri to the end", async () => {
    const seen: string[] = [];
    const pages: number[] = [];
    let next: string | null = "/reserved_domains";
    while (next) {
      const page = (await get(next)).json as Listed;
      expect(page.uri).toBe(`${base}/reserved_domains`);
      pages.push(page.reserved_domains.length);
      seen.push(...page.reserved_domains.map((d) => d.domain));
      next = page.next_page_uri;
      if (next) expect(next).toBe(`${base}/reserved_domains?before_id=${page.reserved_domains.at(-1)!.id}`);
    }
    expect(pages).toEqual([100, 100, 50]);
    expect(seen).toEqual(Array.from({ length: 250 }, (_, i) => `d${String(249 - i).padStart(3, "0")}.example.com`));
  });

  it("keeps limit in next_page_uri, caps it at 100, and gives null when a page ends exactly at the last item", async () => {
    const first = (await get("/reserved_domains?limit=30")).json as Listed;
    expect(first.reserved_domains).toHaveLength(30);
    expect(first.next_page_uri).toBe(`${base}/reserved_domains?limit=30&before_id=${first.reserved_domains[29]!.id}`);
    expect(((await get("/reserved_domains?limit=500")).json as Listed).reserved_domains).toHaveLength(100);
    const oldest50 = (await get(`/reserved_domains?limit=50&before_id=${[...account.reservedDomains.keys()][50]!}`)).json as Listed;
    expect(oldest50.reserved_domains.map((d) => d.domain).slice(0, 2)).toEqual(["d049.example.com", "d048.example.com"]);
    expect(oldest50.reserved_domains).toHaveLength(50);
    expect(oldest50.next_page_uri).toBeNull();
  });

  it("pages on after the before_id item was deleted", async () => {
    const first = (await get("/reserved_domains?limit=10")).json as Listed;
    const last = first.reserved_domains[9]!;
    account.reservedDomains.delete(last.id);
    const second = (await get(first.next_page_uri!)).json as Listed;
    expect(second.reserved_domains[0]!.domain).toBe("d239.example.com");
  });

  it("refuses a limit that is not a positive integer and a before_id it never issued (ERR_NGROK_215)", async () => {
    for (const query of ["limit=0", "limit=ten", "before_id=rd_never"]) {
      const answer = await get(`/reserved_domains?${query}`);
      expect([answer.status, answer.json.error_code]).toEqual([400, "ERR_NGROK_215"]);
    }
    expect(api.schemaViolations.map((v) => v.errorCode)).toEqual(["ERR_NGROK_215", "ERR_NGROK_215", "ERR_NGROK_215"]);
    api.schemaViolations.length = 0;
  });
});
