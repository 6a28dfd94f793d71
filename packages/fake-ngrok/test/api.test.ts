// The fake api.ngrok.com: request checks (route, version, key, schema), reserved domains
// and addresses, endpoints and tunnel sessions from the shared account. Every answer is
// also checked by the fake against the document (responseViolations must stay empty).
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import { Account, type AgentSession, type Endpoint } from "../src/account.ts";
import { NgrokApi, NgrokOpenApi } from "../src/api/index.ts";

const KEY = "2AbCdEfGhIj_3KlMnOpQrStUv";
let account: Account;
let api: NgrokApi;
let base: string;
let allocated = 0;

interface Answer {
  status: number;
  json: Record<string, unknown>;
  text: string;
}

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${KEY}`,
      "Ngrok-Version": "2",
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, text, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Takes the violations a test provoked on purpose, leaving none for the afterEach check. */
function takeViolations(): string[] {
  const taken = api.schemaViolations.map((v) => `${v.operation} ${v.errorCode ?? "-"}`);
  api.schemaViolations.length = 0;
  return taken;
}

function seedSession(id: string, metadata = ""): AgentSession {
  const session: AgentSession = {
    id, authtoken: "tok", metadata, agentVersion: "1.7.0", os: "linux", ip: "127.0.0.1:50123", region: "us", startedAt: "2026-11-23T10:00:00Z",
  };
  account.sessions.set(id, session);
  return session;
}

function seedEndpoint(id: string, sessionId: string, url: string, proto: Endpoint["proto"] = "https"): Endpoint {
  const endpoint: Endpoint = {
    id, tunnelId: `tun_${id}`, sessionId, url, proto, hostport: new URL(url).host, pooling: true, binding: "public",
    metadata: "{\"owner\":\"ktube\"}", forwardsTo: "http://svc.default.svc.cluster.local:80", createdAt: "2026-11-23T10:00:01Z",
  };
  account.endpoints.set(id, endpoint);
  return endpoint;
}

beforeAll(async () => {
  account = new Account();
  account.apiKeys.add(KEY);
  account.authtokens.add("2AgentTok3n_abcdefghijklmnop");
  api = new NgrokApi(account, { takenDomains: ["Taken.Example.com"], allocateTcpAddr: async () => `localhost:${20000 + allocated++}` });
  base = await api.start();
});
afterEach(() => {
  expect(api.responseViolations).toEqual([]);
  expect(api.schemaViolations).toEqual([]);
  account.endpoints.clear();
  account.sessions.clear();
  account.agentControl = undefined;
});
afterAll(() => api.close());

describe("request checks", () => {
  it("requires ngrok-version: 2 (ERR_NGROK_218 when absent, 217 for another version)", async () => {
    const missing = await call("GET", "/reserved_domains", undefined, { "Ngrok-Version": "" });
    expect(missing.status).toBe(400);
    expect(missing.json).toMatchObject({ error_code: "ERR_NGROK_218", status_code: 400, details: { operation_id: expect.stringMatching(/^op_/) } });
    const v3 = await call("GET", "/reserved_domains", undefined, { "Ngrok-Version": "3" });
    expect(v3.json).toMatchObject({ error_code: "ERR_NGROK_217", status_code: 400 });
    expect(takeViolations()).toEqual(["ReservedDomainsList ERR_NGROK_218", "ReservedDomainsList ERR_NGROK_217"]);
  });

  it("requires an API key of the account (401 with ERR_NGROK_200/201/202/203/207)", async () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ Authorization: "" }, "ERR_NGROK_200"],
      [{ Authorization: "Token abc" }, "ERR_NGROK_201"],
      [{ Authorization: "Bearer not-a-key" }, "ERR_NGROK_202"],
      [{ Authorization: "Bearer 2Unknown_Key" }, "ERR_NGROK_203"],
      [{ Authorization: "Bearer 2AgentTok3n_abcdefghijklmnop" }, "ERR_NGROK_207"],
    ];
    for (const [headers, code] of cases) {
      const answer = await call("GET", "/reserved_domains", undefined, headers);
      expect([answer.status, answer.json.error_code, answer.json.status_code]).toEqual([401, code, 401]);
    }
    // The request log names keys by fingerprint only.
    expect(JSON.stringify(api.requests)).not.toContain(KEY);
  });

  it("answers a path the document lacks with 404 in ngrok's envelope and records it", async () => {
    const answer = await call("GET", "/reserved_domainz");
    expect(answer.status).toBe(404);
    expect(answer.json).toEqual({ status_code: 404, msg: "Resource not found", details: { operation_id: expect.stringMatching(/^op_/) } });
    expect(takeViolations()).toEqual(["GET /reserved_domainz -"]);
  });

  it("refuses a body field the document does not have (ERR_NGROK_214), a wrong type (215), unknown query parameters (231)", async () => {
    const extra = await call("POST", "/reserved_domains", { domain: "x.example.com", name: "x" });
    expect(extra.status).toBe(400);
    expect(extra.json).toMatchObject({ error_code: "ERR_NGROK_214", msg: expect.stringContaining("The request parameter name is unknown") });
    const nested = await call("POST", "/reserved_domains", { domain: "x.example.com", certificate_management_policy: { authority: "letsencrypt", extra: 1 } });
    expect(nested.json).toMatchObject({ error_code: "ERR_NGROK_214", msg: expect.stringContaining("certificate_management_policy.extra") });
    const wrongType = await call("POST", "/reserved_addrs", { metadata: 42 });
    expect(wrongType.json).toMatchObject({ error_code: "ERR_NGROK_215", msg: expect.stringContaining("metadata") });
    const query = await call("GET", "/reserved_domains?page=2");
    expect(query.json).toMatchObject({ error_code: "ERR_NGROK_231" });
    const notJson = await call("POST", "/reserved_addrs", "{nope");
    expect(notJson.json).toMatchObject({ error_code: "ERR_NGROK_213" });
    const bodyOnGet = await call("DELETE", "/reserved_addrs/ra_x", {});
    expect(bodyOnGet.json).toMatchObject({ error_code: "ERR_NGROK_211" });
    expect(takeViolations()).toEqual([
      "ReservedDomainsCreate ERR_NGROK_214",
      "ReservedDomainsCreate ERR_NGROK_214",
      "ReservedAddrsCreate ERR_NGROK_215",
      "ReservedDomainsList ERR_NGROK_231",
      "ReservedAddrsCreate ERR_NGROK_213",
      "ReservedAddrsDelete ERR_NGROK_211",
    ]);
    expect(account.reservedDomains.size + account.reservedAddrs.size).toBe(0); // nothing refused took effect
  });

  it("refuses operations the document has but the fake does not implement (501), never succeeding silently", async () => {
    const answer = await call("POST", "/credentials", { description: "scoped", acl: ["bind:*.example.com"] });
    expect(answer.status).toBe(501);
    const cert = await call("POST", "/reserved_domains", { domain: "c.example.com", certificate_id: "cert_123" });
    expect(cert.status).toBe(501);
    expect(api.unimplemented.map((u) => u.what)).toEqual(["CredentialsCreate", expect.stringContaining("certificate_id")]);
    expect(account.reservedDomain("c.example.com")).toBeUndefined();
    api.unimplemented.length = 0;
  });
});

describe("reserved domains", () => {
  it("creates, gets, lists, updates and deletes, with rd_ ids, uri and created_at", async () => {
    const created = await call("POST", "/reserved_domains", { domain: "App.Example.com", description: "ktube", metadata: "{\"tunnel\":\"a\"}" });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    expect(created.json).toMatchObject({
      id: expect.stringMatching(/^rd_[A-Za-z0-9]{27}$/),
      uri: `${base}/reserved_domains/${id}`,
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      domain: "app.example.com",
      description: "ktube",
      metadata: "{\"tunnel\":\"a\"}",
      cname_target: expect.stringMatching(/\.ngrok-cname\.com$/),
      certificate_management_policy: { authority: "letsencrypt", private_key_type: "ecdsa" },
    });
    expect(account.reservedDomain("app.example.com")?.id).toBe(id);

    expect((await call("GET", `/reserved_domains/${id}`)).json).toEqual(created.json);
    const updated = await call("PATCH", `/reserved_domains/${id}`, { id, metadata: "{\"tunnel\":\"b\"}" });
    expect(updated.json).toMatchObject({ id, metadata: "{\"tunnel\":\"b\"}", description: "ktube" });
    const list = await call("GET", "/reserved_domains");
    expect(list.json).toEqual({ reserved_domains: [updated.json], uri: `${base}/reserved_domains`, next_page_uri: null });

    const deleted = await call("DELETE", `/reserved_domains/${id}`);
    expect([deleted.status, deleted.text]).toEqual([204, ""]);
    expect((await call("GET", `/reserved_domains/${id}`)).status).toBe(404);
    expect((await call("DELETE", `/reserved_domains/${id}`)).status).toBe(404);
  });

  it("gives names under ngrok's own domains no CNAME target and no managed certificate", async () => {
    for (const domain of ["ktube-a.ngrok.app", "ktube-b.ngrok-free.app", "ktube-c.ngrok.dev", "ktube-d.ngrok.io"]) {
      const created = await call("POST", "/reserved_domains", { domain });
      expect(created.json).toMatchObject({ domain, cname_target: null, certificate_management_policy: null, certificate_management_status: null });
      await call("DELETE", `/reserved_domains/${created.json.id as string}`);
    }
  });

  it("answers ERR_NGROK_413 for a name the account holds (so a controller adopts it), 414 for another account's", async () => {
    const first = await call("POST", "/reserved_domains", { domain: "adopt.example.com" });
    const again = await call("POST", "/reserved_domains", { domain: "ADOPT.example.com" });
    expect(again.status).toBe(400);
    expect(again.json).toMatchObject({ error_code: "ERR_NGROK_413", msg: "This domain is already reserved for your account. Failed to reserve adopt.example.com." });
    // Adoption: the existing reservation is found by listing.
    const list = await call("GET", "/reserved_domains");
    expect((list.json.reserved_domains as Array<{ id: string; domain: string }>).find((d) => d.domain === "adopt.example.com")?.id).toBe(first.json.id);
    const taken = await call("POST", "/reserved_domains", { domain: "taken.example.com" });
    expect(taken.json).toMatchObject({ error_code: "ERR_NGROK_414", status_code: 400 });
    api.takenDomains.add("later.example.com");
    expect((await call("POST", "/reserved_domains", { domain: "later.example.com" })).json.error_code).toBe("ERR_NGROK_414");
    await call("DELETE", `/reserved_domains/${first.json.id as string}`);
  });

  it("refuses metadata over 4096 bytes (ERR_NGROK_421)", async () => {
    const answer = await call("POST", "/reserved_domains", { domain: "big.example.com", metadata: "é".repeat(2049) });
    expect(answer.json).toMatchObject({ error_code: "ERR_NGROK_421", msg: expect.stringContaining("4098") });
    expect(account.reservedDomain("big.example.com")).toBeUndefined();
  });

  it("refuses to delete a domain an online endpoint uses (ERR_NGROK_446), and deletes it once the endpoint is gone", async () => {
    const created = await call("POST", "/reserved_domains", { domain: "busy.example.com" });
    seedSession("ts_busy");
    seedEndpoint("ep_busy", "ts_busy", "https://busy.example.com");
    const refused = await call("DELETE", `/reserved_domains/${created.json.id as string}`);
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({ error_code: "ERR_NGROK_446", msg: expect.stringContaining("busy.example.com") });
    expect(account.reservedDomains.has(created.json.id as string)).toBe(true);
    account.endpoints.delete("ep_busy");
    expect((await call("DELETE", `/reserved_domains/${created.json.id as string}`)).status).toBe(204);
  });
});

describe("reserved addresses", () => {
  it("creates with an address from the allocator, gets, lists, updates and deletes, with ra_ ids", async () => {
    const created = await call("POST", "/reserved_addrs", { description: "ssh", metadata: "m1" });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    expect(created.json).toEqual({
      id: expect.stringMatching(/^ra_/), uri: `${base}/reserved_addrs/${id}`, created_at: expect.any(String),
      description: "ssh", metadata: "m1", addr: expect.stringMatching(/^localhost:200\d\d$/), region: "us",
    });
    expect(account.reservedAddr(created.json.addr as string)?.id).toBe(id);
    expect((await call("GET", `/reserved_addrs/${id}`)).json).toEqual(created.json);
    expect((await call("PATCH", `/reserved_addrs/${id}`, { metadata: "m2" })).json).toMatchObject({ metadata: "m2", addr: created.json.addr });
    expect((await call("GET", "/reserved_addrs")).json).toMatchObject({ reserved_addrs: [{ id, metadata: "m2" }], next_page_uri: null });
    expect((await call("DELETE", `/reserved_addrs/${id}`)).status).toBe(204);
    expect(account.reservedAddrs.size).toBe(0);
    expect((await call("PATCH", `/reserved_addrs/${id}`, { metadata: "m3" })).status).toBe(404);
  });

  it("allocates a free loopback port by default", async () => {
    const plain = new NgrokApi(account);
    const plainBase = await plain.start();
    try {
      const res = await fetch(`${plainBase}/reserved_addrs`, { method: "POST", headers: { Authorization: `Bearer ${KEY}`, "Ngrok-Version": "2", "Content-Type": "application/json" }, body: "{}" });
      const addr = ((await res.json()) as { addr: string }).addr;
      expect(addr).toMatch(/^localhost:\d+$/);
      expect(Number(addr.split(":")[1])).toBeGreaterThan(0);
      expect(plain.responseViolations).toEqual([]);
    } finally {
      account.reservedAddrs.clear();
      await plain.close();
    }
  });
});

describe("endpoints and tunnel sessions", () => {
  it("list and get what the account holds, filtered by ids and urls", async () => {
    const domain = await call("POST", "/reserved_domains", { domain: "web.example.com" });
    seedSession("ts_one", "{\"pod\":\"a\"}");
    seedSession("ts_two");
    seedEndpoint("ep_web", "ts_one", "https://web.example.com");
    seedEndpoint("ep_tcp", "ts_two", "tcp://localhost:20999", "tcp");

    const endpoints = await call("GET", "/endpoints");
    expect((endpoints.json.endpoints as Array<{ id: string }>).map((e) => e.id)).toEqual(["ep_tcp", "ep_web"]); // newest first
    expect(endpoints.json.next_page_uri).toBeNull();
    const web = await call("GET", "/endpoints/ep_web");
    expect(web.json).toMatchObject({
      id: "ep_web", url: "https://web.example.com", public_url: "https://web.example.com", proto: "https", hostport: "web.example.com:443",
      type: "ephemeral", pooling_enabled: true, bindings: ["public"], upstream_url: "http://svc.default.svc.cluster.local:80",
      domain: { id: domain.json.id, uri: `${base}/reserved_domains/${domain.json.id as string}` },
      tunnel_session: { id: "ts_one", uri: `${base}/tunnel_sessions/ts_one` },
      uri: `${base}/endpoints/ep_web`,
    });
    expect((await call("GET", "/endpoints?ids=ep_web")).json.endpoints).toEqual([web.json]);
    expect((await call("GET", "/endpoints?urls=tcp%3A%2F%2Flocalhost%3A20999&urls=https%3A%2F%2Fnone.example.com")).json).toMatchObject({ endpoints: [{ id: "ep_tcp" }] });
    expect((await call("GET", "/endpoints/ep_none")).status).toBe(404);
    // A TCP endpoint on a reserved address refers to it, however loopback is spelled.
    const addr = await call("POST", "/reserved_addrs", {});
    seedEndpoint("ep_rtcp", "ts_two", `tcp://${(addr.json.addr as string).replace("localhost", "127.0.0.1")}`, "tcp");
    expect((await call("GET", "/endpoints/ep_rtcp")).json).toMatchObject({ proto: "tcp", tcp_addr: { id: addr.json.id }, type: "ephemeral" });
    account.endpoints.delete("ep_rtcp");
    await call("DELETE", `/reserved_addrs/${addr.json.id as string}`);

    const sessions = await call("GET", "/tunnel_sessions");
    expect(sessions.json).toEqual({
      tunnel_sessions: [
        { id: "ts_two", agent_version: "1.7.0", ip: "127.0.0.1", os: "linux", region: "us", started_at: "2026-11-23T10:00:00Z", transport: "ngrok/2", uri: `${base}/tunnel_sessions/ts_two` },
        expect.objectContaining({ id: "ts_one", metadata: "{\"pod\":\"a\"}" }),
      ],
      uri: `${base}/tunnel_sessions`,
      next_page_uri: null,
    });
    expect((await call("GET", "/tunnel_sessions/ts_one")).json).toMatchObject({ id: "ts_one" });
    expect(JSON.stringify(sessions.json)).not.toContain("tok"); // the authtoken is never served
    account.endpoints.clear();
    await call("DELETE", `/reserved_domains/${domain.json.id as string}`);
  });

  it("stops a session through the agent side's hook; 404 for a session it does not know", async () => {
    seedSession("ts_stop");
    const stopped: string[] = [];
    account.agentControl = {
      stopSession: (id) => {
        stopped.push(id);
        account.sessions.delete(id);
        return true;
      },
    };
    const answer = await call("POST", "/tunnel_sessions/ts_stop/stop", {});
    expect([answer.status, answer.text]).toEqual([204, ""]);
    expect(stopped).toEqual(["ts_stop"]);
    expect((await call("POST", "/tunnel_sessions/ts_stop/stop", {})).status).toBe(404);
    expect((await call("POST", "/tunnel_sessions/ts_unknown/stop", {})).status).toBe(404);
    expect(stopped).toEqual(["ts_stop"]);
  });

  it("without an agent side, stopping removes the session and its endpoints from the account", async () => {
    seedSession("ts_alone");
    seedEndpoint("ep_alone", "ts_alone", "https://alone.ngrok.app");
    expect((await call("POST", "/tunnel_sessions/ts_alone/stop")).status).toBe(204);
    expect([account.sessions.size, account.endpoints.size]).toEqual([0, 0]);
  });
});

describe("the response check", () => {
  it("is strict: an unknown field or an undocumented null is a violation, documented nulls are not", () => {
    const spec = NgrokOpenApi.load();
    const op = spec.operation("ReservedDomainsGet");
    const good = { id: "rd_1", uri: "u", created_at: "t", domain: "a.ngrok.app", region: "", cname_target: null, certificate: null };
    expect(spec.checkResponse(op, 200, good)).toEqual([]);
    expect(spec.checkResponse(op, 200, { ...good, is_dev: false })).toEqual([expect.stringContaining("additional properties")]);
    expect(spec.checkResponse(op, 200, { ...good, domain: null })).not.toEqual([]);
    expect(spec.checkResponse(op, 201, good)).toEqual(["status 201, the document says 200"]);
  });
});
