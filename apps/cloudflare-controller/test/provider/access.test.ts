// Access applications: KTube owns the policy set outright, a failure drops what was
// cached, and a token without Access rights is told apart from a bad token.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import { ProviderError } from "@ktube/provider-kit";
import { AccessApps, accessAppName, deleteAccessApp, ensureAccessApp, ownedAccessDomains, type AccessSpec } from "../../src/provider/access.ts";
import { CloudflareError } from "../../src/provider/errors.ts";
import { ZoneRecords } from "../../src/provider/dns.ts";
import { sendZoneChanges } from "../../src/provider/dns-batch.ts";
import { planZoneRecords } from "../../src/provider/zone-plan.ts";
import { findOrCreateTunnel } from "../../src/provider/tunnels.ts";
import { startAccessDenyingProxy, startFake, type FakeAccount } from "./fixtures.ts";

let cf: FakeAccount;

beforeAll(async () => {
  cf = await startFake();
  // Cloudflare accepts a self-hosted application only on a zone of the account (12130 otherwise).
  cf.fake.addZone("example.com", cf.account);
  cf.fake.configure({ rateLimit: { limit: 100_000, windowMs: 5 * 60_000 } });
});
afterEach(() => cf.fake.configure({ faultRate: 0 }));
afterAll(async () => {
  expect(cf.fake.schemaViolations).toEqual([]);
  await cf.stop();
});

let domains = 0;
const spec = (emails: string[], emailDomains: string[] = []): AccessSpec => ({
  domain: `app${++domains}.example.com`,
  binding: "shop/web",
  route: "web",
  emails,
  emailDomains,
});
const fakeApp = (domain: string) => [...cf.fake.apps.values()].find((a) => a.domain === domain);
const policiesOf = (domain: string) => [...(fakeApp(domain)?.policies.values() ?? [])];
const appListings = () => cf.fake.requests.filter((r) => r.method === "GET" && r.path.endsWith("/access/apps")).length;
/** Every email any policy of the app lets in. */
const admitted = (domain: string) =>
  policiesOf(domain)
    .flatMap((p) => p.include as Array<{ email?: { email: string } }>)
    .map((rule) => rule.email?.email)
    .filter(Boolean)
    .sort();

describe("ensureAccessApp", () => {
  it("makes one application with one policy, named without namespace or binding, and changes nothing the second time", async () => {
    const api = cf.api();
    const cache = new AccessApps();
    const s = spec(["alice@example.com"], ["example.org"]);
    expect(await ensureAccessApp(api, cache, "prod", s)).toEqual({ kind: "written" });
    const app = fakeApp(s.domain)!;
    expect(app.name).toBe(accessAppName("prod", "shop/web", "web"));
    expect(app.name).not.toMatch(/shop/);
    expect(policiesOf(s.domain)).toHaveLength(1);
    expect(policiesOf(s.domain)[0]?.include).toEqual([{ email: { email: "alice@example.com" } }, { email_domain: { domain: "example.org" } }]);
    const requests = cf.fake.requests.length;
    expect(await ensureAccessApp(api, cache, "prod", s)).toEqual({ kind: "unchanged" });
    expect(cf.fake.requests.length).toBe(requests);
    expect(await ownedAccessDomains(api, cache, "prod", "shop/web")).toContain(s.domain);
    expect(await ownedAccessDomains(api, cache, "prod", "shop/other")).not.toContain(s.domain);
  });

  it("deletes a duplicate policy (a create that committed but failed) and a policy a person added; a removed email loses access", async () => {
    const api = cf.api();
    const s = spec(["alice@example.com", "bob@example.com"]);
    await ensureAccessApp(api, new AccessApps(), "prod", s);
    const appId = fakeApp(s.domain)!.id;
    const inject = (name: string, emails: string[]) =>
      api.sdk.zeroTrust.access.applications.policies.create(appId, {
        account_id: cf.account,
        name,
        decision: "allow",
        include: emails.map((email) => ({ email: { email } })),
        precedence: 2,
      });
    await inject("ktube", ["alice@example.com", "bob@example.com"]);
    await inject("added by hand", ["mallory@example.net"]);
    expect(policiesOf(s.domain)).toHaveLength(3);

    // A later reconcile (the listing is re-read) with alice removed from the spec.
    expect(await ensureAccessApp(api, new AccessApps(), "prod", { ...s, emails: ["bob@example.com"] })).toEqual({ kind: "written" });
    expect(policiesOf(s.domain)).toHaveLength(1);
    expect(admitted(s.domain)).toEqual(["bob@example.com"]);
  });

  it("forgets the cached listing after a failure, so the next attempt reads Cloudflare again", async () => {
    const api = cf.api();
    const cache = new AccessApps();
    const s = spec(["carol@example.com"]);
    await ensureAccessApp(api, cache, "prod", s);
    cf.fake.configure({ faultRate: 1 });
    await expect(ensureAccessApp(api, cache, "prod", { ...s, emails: ["dave@example.com"] })).rejects.toMatchObject({ reason: "CloudflareUnavailable" });
    cf.fake.configure({ faultRate: 0 });
    const listings = appListings();
    expect(await ensureAccessApp(api, cache, "prod", { ...s, emails: ["dave@example.com"] })).toEqual({ kind: "written" });
    expect(appListings()).toBe(listings + 1);
    expect(policiesOf(s.domain)).toHaveLength(1);
    expect(admitted(s.domain)).toEqual(["dave@example.com"]);
  });

  it("leaves an application it did not make alone", async () => {
    const api = cf.api();
    const s = spec(["erin@example.com"]);
    await api.sdk.zeroTrust.access.applications.create({ account_id: cf.account, type: "self_hosted", name: "made by a person", domain: s.domain });
    expect(await ensureAccessApp(api, new AccessApps(), "prod", s)).toMatchObject({ kind: "notOwned", reason: "AccessAppNotOwned" });
    expect(await deleteAccessApp(api, new AccessApps(), "prod", s.domain)).toBe(false);
    expect(fakeApp(s.domain)).toBeDefined();
  });

  it("deletes its own application", async () => {
    const api = cf.api();
    const cache = new AccessApps();
    const s = spec(["frank@example.com"]);
    await ensureAccessApp(api, cache, "prod", s);
    expect(await deleteAccessApp(api, cache, "prod", s.domain)).toBe(true);
    expect(fakeApp(s.domain)).toBeUndefined();
    expect(await ownedAccessDomains(api, cache, "prod", "shop/web")).not.toContain(s.domain);
  });
});

describe("identity providers", () => {
  it("finds the one-time PIN login method past the first page instead of making a second", async () => {
    const account = cf.fake.addAccount();
    cf.fake.addToken("idp-token", [account]);
    const api = cf.api({ token: "idp-token", account });
    for (let i = 0; i < 1_001; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, 1_001 - i) }, (_, j) =>
          api.sdk.zeroTrust.identityProviders.create({ account_id: account, name: `github ${i + j}`, type: "github", config: {} }),
        ),
      );
    }
    const otp = await api.sdk.zeroTrust.identityProviders.create({ account_id: account, name: "One-time PIN", type: "onetimepin", config: {} });
    expect(await new AccessApps().oneTimePinIdp(api)).toBe(otp.id);
    expect([...cf.fake.identityProviders.values()].filter((i) => i.type === "onetimepin" && i.account === account)).toHaveLength(1);
  });
});

describe("a token without Access rights", () => {
  it("gets AccessNotPermitted from Access, and DNS and tunnels work with it", async () => {
    const proxy = await startAccessDenyingProxy(cf.fake.baseUrl);
    try {
      const api = cf.api({ baseURL: proxy.baseURL });
      const cache = new AccessApps();
      const error = await ensureAccessApp(api, cache, "prod", spec(["gina@example.com"])).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CloudflareError);
      expect(error).toBeInstanceOf(ProviderError);
      expect((error as CloudflareError).reason).toBe("AccessNotPermitted");
      await expect(ownedAccessDomains(api, cache, "prod", "shop/web")).rejects.toMatchObject({ reason: "AccessNotPermitted" });

      const zone = cf.fake.addZone("no-access.example.com", cf.account);
      const tunnel = await findOrCreateTunnel(api, "no-access");
      const snapshot = await new ZoneRecords().snapshot(api, { id: zone.id, name: zone.name });
      const plan = planZoneRecords([{ hostname: `web.${zone.name}`, tunnelId: tunnel.id, binding: "shop/web" }], snapshot, { ownerId: "prod", provider: "cf", claimsUnscoped: () => false });
      expect(await sendZoneChanges(api, zone.id, plan.changes, { applied: () => undefined })).toEqual(new Map());
      expect([...cf.fake.records.values()].filter((r) => r.name === `web.${zone.name}`)).toHaveLength(1);
    } finally {
      await proxy.stop();
    }
  });
});
