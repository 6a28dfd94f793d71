// Access: applications, reusable policies linked from them, app-scoped ("legacy")
// policies, identity providers, and the answers the live API is known to give.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import type Cloudflare from "cloudflare";
import type { FakeCloudflare } from "../src/index.ts";
import { apiError, rawGet, startFake } from "./support.ts";

let fake: FakeCloudflare;
let cf: Cloudflare;
let account: string;

beforeAll(async () => {
  ({ fake, cf, account } = await startFake());
  fake.addZone("example.com", account);
  fake.addZone("pending.example", account, { status: "pending" });
});
afterEach(() => {
  fake.configure({ duplicateAccessDomains: "allow" });
  expect(fake.schemaViolations).toEqual([]);
});
afterAll(() => fake.stop());

const allowAlice = { name: "alice", decision: "allow" as const, include: [{ email: { email: "alice@example.com" } }] };

async function policiesOfApp(appId: string): Promise<Array<Record<string, unknown>>> {
  const app = await cf.zeroTrust.access.applications.get(appId, { account_id: account });
  return (app as { policies?: Array<Record<string, unknown>> }).policies ?? [];
}

describe("reusable policies", () => {
  it("are created, read, listed, replaced and deleted through the SDK", async () => {
    const created = await cf.zeroTrust.access.policies.create({ account_id: account, ...allowAlice });
    expect(created).toMatchObject({ name: "alice", decision: "allow", reusable: true, app_count: 0 });
    const got = await cf.zeroTrust.access.policies.get(created.id!, { account_id: account });
    expect(got.include).toEqual(allowAlice.include);
    const listed = [];
    for await (const p of cf.zeroTrust.access.policies.list({ account_id: account })) listed.push(p.id);
    expect(listed).toContain(created.id);
    const replaced = await cf.zeroTrust.access.policies.update(created.id!, { account_id: account, name: "bob", decision: "allow", include: [{ email: { email: "bob@example.com" } }] });
    expect(replaced).toMatchObject({ id: created.id, name: "bob", include: [{ email: { email: "bob@example.com" } }] });
    await cf.zeroTrust.access.policies.delete(created.id!, { account_id: account });
    expect(await apiError(cf.zeroTrust.access.policies.get(created.id!, { account_id: account }))).toMatchObject({ status: 404 });
  });

  it("are linked from an application's `policies` ({id, precedence} or a bare id) and shown on its GET and list", async () => {
    const deny = await cf.zeroTrust.access.policies.create({ account_id: account, name: "deny-mallory", decision: "deny", include: [{ email: { email: "mallory@example.com" } }] });
    const allow = await cf.zeroTrust.access.policies.create({ account_id: account, ...allowAlice });
    const app = await cf.zeroTrust.access.applications.create({
      account_id: account, type: "self_hosted", domain: "linked.example.com", name: "linked",
      policies: [{ id: allow.id!, precedence: 2 }, { id: deny.id!, precedence: 1 }],
    });
    expect((app as { policies?: unknown[] }).policies).toMatchObject([
      { id: deny.id, precedence: 1, reusable: true, decision: "deny" },
      { id: allow.id, precedence: 2, reusable: true, decision: "allow" },
    ]);
    expect((await cf.zeroTrust.access.policies.get(allow.id!, { account_id: account })).app_count).toBe(1);
    // One change to the policy, every application that links it enforces it.
    await cf.zeroTrust.access.policies.update(allow.id!, { account_id: account, name: "alice", decision: "allow", include: [{ email_domain: { domain: "example.com" } }] });
    expect((await policiesOfApp(app.id!)).find((p) => p.id === allow.id)?.include).toEqual([{ email_domain: { domain: "example.com" } }]);
    // `policies` replaces the set; bare ids take their precedence from their order.
    await cf.zeroTrust.access.applications.update(app.id!, { account_id: account, type: "self_hosted", domain: "linked.example.com", name: "linked", policies: [allow.id!] });
    expect((await policiesOfApp(app.id!)).map((p) => [p.id, p.precedence])).toEqual([[allow.id, 1]]);
    const listed = (await rawGet(fake, `/accounts/${account}/access/apps`)).json.result as Array<{ id: string; policies: Array<{ id: string }> }>;
    expect(listed.find((a) => a.id === app.id)?.policies.map((p) => p.id)).toEqual([allow.id]);
    expect(fake.appPolicies(app.id!).map((p) => p.id)).toEqual([allow.id]);

    // Cloudflare will not drop a policy applications still use (assumed; see access-policies.ts).
    expect(await apiError(cf.zeroTrust.access.policies.delete(allow.id!, { account_id: account }))).toMatchObject({ status: 409 });
    await cf.zeroTrust.access.applications.delete(app.id!, { account_id: account });
    await cf.zeroTrust.access.policies.delete(allow.id!, { account_id: account });
    await cf.zeroTrust.access.policies.delete(deny.id!, { account_id: account });
  });

  it("refuse an unknown policy id, and reusable mixed with inline policies", async () => {
    const allow = await cf.zeroTrust.access.policies.create({ account_id: account, ...allowAlice });
    const base = { account_id: account, type: "self_hosted" as const, domain: "mixed.example.com", name: "mixed" };
    expect(await apiError(cf.zeroTrust.access.applications.create({ ...base, policies: ["f174e90a-fafe-4643-bbbc-4a0ed4fc8415"] }))).toMatchObject({ status: 400 });
    const mixed = await apiError(cf.zeroTrust.access.applications.create({ ...base, policies: [{ id: allow.id! }, { ...allowAlice, precedence: 2 }] }));
    expect(mixed).toMatchObject({ status: 400, message: expect.stringMatching(/mutually exclusive/) });
    expect([...fake.apps.values()].filter((a) => a.domain === "mixed.example.com")).toEqual([]);
  });
});

describe("app-scoped policies", () => {
  it("keep working through the application's own endpoints, and inline in its body", async () => {
    const app = await cf.zeroTrust.access.applications.create({ account_id: account, type: "self_hosted", domain: "legacy.example.com", name: "legacy" });
    const policy = await cf.zeroTrust.access.applications.policies.create(app.id!, { account_id: account, ...allowAlice });
    expect(await cf.zeroTrust.access.applications.policies.get(policy.id!, { app_id: app.id!, account_id: account })).toMatchObject({ id: policy.id, reusable: false });
    await cf.zeroTrust.access.applications.policies.update(policy.id!, { app_id: app.id!, account_id: account, ...allowAlice, name: "renamed" });
    const listed = [];
    for await (const p of cf.zeroTrust.access.applications.policies.list(app.id!, { account_id: account })) listed.push(p.name);
    expect(listed).toEqual(["renamed"]);
    await cf.zeroTrust.access.applications.policies.delete(policy.id!, { app_id: app.id!, account_id: account });
    expect(await policiesOfApp(app.id!)).toEqual([]);

    const inline = await cf.zeroTrust.access.applications.create({
      account_id: account, type: "self_hosted", domain: "inline.example.com", name: "inline", policies: [{ ...allowAlice, precedence: 1 }],
    });
    expect((inline as { policies?: unknown[] }).policies).toMatchObject([{ name: "alice", reusable: false, precedence: 1 }]);
    expect([...fake.apps.get(inline.id!)!.policies.values()].map((p) => p.name)).toEqual(["alice"]);
  });
});

describe("applications", () => {
  it("must sit on an active zone of the account: otherwise 400 with code 12130, as the live API answers", async () => {
    const outside = await apiError(cf.zeroTrust.access.applications.create({ account_id: account, type: "self_hosted", domain: "app.elsewhere.net", name: "x" }));
    expect(outside).toEqual({ status: 400, code: 12130, message: "access.api.error.invalid_request: domain does not belong to zone" });
    expect((await apiError(cf.zeroTrust.access.applications.create({ account_id: account, type: "self_hosted", domain: "app.pending.example", name: "x" }))).code).toBe(12130);
    await cf.zeroTrust.access.applications.create({ account_id: account, type: "self_hosted", domain: "*.example.com/admin", name: "wildcard" });
  });

  it("may share a domain by default (a retried create leaves two behind); `duplicateAccessDomains: reject` refuses with 409", async () => {
    const app = { account_id: account, type: "self_hosted" as const, domain: "twice.example.com", name: "twice" };
    await cf.zeroTrust.access.applications.create(app);
    await cf.zeroTrust.access.applications.create(app);
    expect([...fake.apps.values()].filter((a) => a.domain === "twice.example.com")).toHaveLength(2);
    fake.configure({ duplicateAccessDomains: "reject" });
    expect(await apiError(cf.zeroTrust.access.applications.create(app))).toMatchObject({ status: 409, message: expect.stringMatching(/^access\.api\.error\.conflict/) });
  });
});

describe("identity providers", () => {
  it("allow one one-time PIN login per account: a second is refused with 409, as the live API does", async () => {
    const otp = await cf.zeroTrust.identityProviders.create({ account_id: account, name: "PIN", type: "onetimepin", config: {} });
    expect(await apiError(cf.zeroTrust.identityProviders.create({ account_id: account, name: "PIN", type: "onetimepin", config: {} }))).toMatchObject({
      status: 409,
      message: "access.api.error.conflict: a onetimepin connection already exists",
    });
    expect((await cf.zeroTrust.identityProviders.get(otp.id!, { account_id: account })).type).toBe("onetimepin");
    await cf.zeroTrust.identityProviders.delete(otp.id!, { account_id: account });
    expect(fake.identityProviders.size).toBe(0);
  });
});
