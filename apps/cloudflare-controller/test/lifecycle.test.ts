// The cloudflare controller end to end: provider, tunnel, bindings, DNS, Access, deletion.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import { ApiError, PatchType, type KubeObject } from "@ktube/runtime";
import { eventually, kubectl } from "@ktube/testenv";
import Cloudflare from "cloudflare";
import { bindingFingerprint } from "../src/provider/ownership.ts";
import {
  binding,
  cloudflareProvider,
  condition,
  TOKEN,
  connectTunnel,
  createHarness,
  provider,
  service,
  status,
  tunnel,
  waitForCondition,
  type Harness,
} from "./harness.ts";

let h: Harness;
let ns: string;
let providerName: string;

beforeAll(async () => {
  h = await createHarness();
  h.fake.addZone("example.com", h.account);
  h.fake.addZone("shop.example.org", h.account);
  ns = await h.namespace("cf-life");
  providerName = `cf-${h.id}`;
  await h.client.create(TunnelProviderResource, cloudflareProvider(h, providerName) as KubeObject);
  await h.startController();
});
afterAll(() => h.close());

const records = () => [...h.fake.records.values()].map((r) => `${r.type} ${r.name} ${r.content}`).sort();

describe("TunnelProvider", () => {
  it("is Ready once Cloudflare accepts the token", async () => {
    const s = await waitForCondition(h, "TunnelProvider", undefined, providerName, "Ready", { status: "True", reason: "CredentialsVerified" });
    expect(s.observedGeneration).toBe(1);
  });

  it("says which Secret is missing, and recovers when it appears", async () => {
    const name = `cf-missing-${h.id}`;
    await h.client.create(TunnelProviderResource, cloudflareProvider(h, name, "not-there-yet") as KubeObject);
    const s = await waitForCondition(h, "TunnelProvider", undefined, name, "Ready", { status: "False", reason: "SecretNotFound" });
    expect(condition(s, "Ready")?.message).toBe(`Secret ${h.controllerNs}/not-there-yet not found`);
    await h.client.create(Core.Secret, { metadata: { name: "not-there-yet", namespace: h.controllerNs }, stringData: { token: "cf-test-token" } } as KubeObject);
    await waitForCondition(h, "TunnelProvider", undefined, name, "Ready", { status: "True", reason: "CredentialsVerified" });
  });

  it("reports a token Cloudflare rejects, without putting the token anywhere", async () => {
    const name = `cf-bad-${h.id}`;
    await h.client.create(Core.Secret, { metadata: { name: "bad-token", namespace: h.controllerNs }, stringData: { token: "s3cr3t-bad-token" } } as KubeObject);
    await h.client.create(TunnelProviderResource, cloudflareProvider(h, name, "bad-token") as KubeObject);
    const s = await waitForCondition(h, "TunnelProvider", undefined, name, "Ready", { status: "False", reason: "TokenRejected" });
    expect(JSON.stringify(s)).not.toContain("s3cr3t-bad-token");
    const events = await kubectl(["get", "events", "-A", "-o", "json"]);
    expect(events.stdout).toContain("TokenRejected");
    expect(events.stdout).not.toContain("s3cr3t-bad-token");
  });

  it("serves only the providers its --provider-selector matches, and leaves other types alone", async () => {
    const other = `cf-other-shard-${h.id}`;
    await h.client.create(TunnelProviderResource, { ...cloudflareProvider(h, other), metadata: { name: other, labels: { "ktube.dev/test-harness": "another-shard" } } } as KubeObject);
    const edge = `edge-${h.id}`;
    await h.client.create(TunnelProviderResource, provider(h, edge, { type: "edge", edge: { sshSecretRef: { name: "vps-ssh" }, envoy: { version: "1.36.2", sha256: "a".repeat(64), url: "https://example.com/envoy" } } }) as KubeObject);
    // Barrier: a provider it does serve, created after both, handled first in line after them.
    const barrier = `cf-barrier-${h.id}`;
    await h.client.create(TunnelProviderResource, cloudflareProvider(h, barrier) as KubeObject);
    await waitForCondition(h, "TunnelProvider", undefined, barrier, "Ready", { status: "True" });
    await eventually(() => expect(h.manager!.idle).toBe(true));
    expect(await status(h, "TunnelProvider", undefined, other)).toEqual({});
    expect(await status(h, "TunnelProvider", undefined, edge)).toEqual({});
    for (const name of [other, edge, barrier]) await h.client.delete(TunnelProviderResource, undefined, name);
  });
});

describe("Tunnel and bindings", () => {
  it("creates the Cloudflare tunnel, its token Secret and the cloudflared Deployment", async () => {
    await h.client.create(TunnelResource, tunnel(ns, "home", providerName) as KubeObject);
    const s = await eventually(async () => {
      const st = await status(h, "Tunnel", ns, "home");
      expect(st.tunnelId).toBeTruthy();
      return st;
    });
    const cf = h.fake.tunnels.get(s.tunnelId!)!;
    expect(cf.name).toMatch(new RegExp(`^ktube-${ns}-home-[0-9a-f-]{8}$`));
    expect(cf.config_src).toBe("cloudflare");
    type Container = { image: string; args: string[]; securityContext: Record<string, unknown>; env?: unknown[]; volumeMounts: unknown[] };
    type DeploymentShape = KubeObject & { spec: { replicas: number; template: { spec: { containers: Container[]; volumes: unknown[] } } } };
    const deployment = await eventually(() => h.client.get<DeploymentShape>(Core.Deployment, ns, "home-cloudflared"));
    expect(deployment.spec.replicas).toBe(2);
    const container = deployment.spec.template.spec.containers[0]!;
    expect(container.image).toBe("cloudflare/cloudflared:test");
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    // The connector token is a mounted file, never an environment variable.
    expect(container.env).toBeUndefined();
    expect(container.args.slice(-2)).toEqual(["--token-file", "/etc/cloudflared/token/token"]);
    expect(container.volumeMounts).toEqual([expect.objectContaining({ name: "token", mountPath: "/etc/cloudflared/token", readOnly: true })]);
    expect(deployment.spec.template.spec.volumes).toEqual([{ name: "token", secret: expect.objectContaining({ secretName: "home-cloudflared" }) }]);
    expect(deployment.metadata?.ownerReferences?.[0]).toMatchObject({ kind: "Tunnel", name: "home", controller: true });
    const secret = await h.client.get<KubeObject & { data: Record<string, string> }>(Core.Secret, ns, "home-cloudflared");
    expect(JSON.parse(Buffer.from(Buffer.from(secret.data.token!, "base64").toString(), "base64").toString())).toMatchObject({ t: s.tunnelId });
    expect(secret.metadata?.ownerReferences?.[0]).toMatchObject({ kind: "Tunnel", name: "home", controller: true });
    await eventually(() => h.client.get(Core.PodDisruptionBudget, ns, "home-cloudflared"));
    // Not Ready until connectors are up.
    await waitForCondition(h, "Tunnel", ns, "home", "Ready", { status: "False", reason: "ConnectorsUnavailable" });
    await connectTunnel(h, ns, "home");
    await waitForCondition(h, "Tunnel", ns, "home", "Ready", { status: "True", reason: "TunnelReady" });
  });

  it("looks again within seconds while its available cloudflared replicas register (no event says when they have)", async () => {
    await h.client.create(TunnelResource, tunnel(ns, "late", providerName) as KubeObject);
    const s = await eventually(async () => {
      const st = await status(h, "Tunnel", ns, "late");
      expect(st.tunnelId).toBeTruthy();
      return st;
    });
    await eventually(() => h.client.get(Core.Deployment, ns, "late-cloudflared"));
    await h.client.patch(Core.Deployment, ns, "late-cloudflared", { status: { replicas: 2, availableReplicas: 2, readyReplicas: 2 } }, PatchType.merge, { subresource: "status" });
    await waitForCondition(h, "Tunnel", ns, "late", "ConnectorsReady", { status: "False", reason: "NotConnected" });
    // Only Cloudflare changes: the next look, not an event, finds the connections (the backoff's first poll is 30 s away).
    h.fake.setConnections(s.tunnelId!, 2);
    await waitForCondition(h, "Tunnel", ns, "late", "Ready", { status: "True", reason: "TunnelReady" }, 10_000);
    await h.client.delete(TunnelResource, ns, "late");
    await eventually(() => expect(h.fake.tunnels.get(s.tunnelId!)?.deleted_at).toBeTruthy(), 20_000);
  });

  it("routes a binding: ingress rule, proxied CNAME with ownership TXT, URL in status", async () => {
    await h.client.create(Core.Service, service(ns, "web", [{ name: "http", port: 8080 }]) as KubeObject);
    await h.client.create(TunnelBindingResource, binding(ns, "shop", { name: "home" }, [
      { name: "web", protocol: "HTTP", hostname: "shop.example.com", service: { name: "web", port: "http" } },
      { name: "api", protocol: "HTTPS", hostname: "shop.example.com", path: "/api", service: { name: "web", port: 8080 }, originRequest: { noTLSVerify: true, connectTimeout: "1m30s" } },
    ]) as KubeObject);
    const s = await waitForCondition(h, "TunnelBinding", ns, "shop", "Ready", { status: "True" });
    expect(s.routes).toEqual([
      { name: "web", url: "https://shop.example.com/", ready: true },
      { name: "api", url: "https://shop.example.com/api", ready: true },
    ]);
    const tunnelId = (await status(h, "Tunnel", ns, "home")).tunnelId!;
    await eventually(() =>
      expect(h.fake.configurations.get(tunnelId)?.config).toEqual({
        ingress: [
          { hostname: "shop.example.com", path: "^/api(/.*)?$", service: `https://web.${ns}.svc.cluster.local:8080`, originRequest: { noTLSVerify: true, connectTimeout: 90 } },
          { hostname: "shop.example.com", service: `http://web.${ns}.svc.cluster.local:8080` },
          { service: "http_status:404" },
        ],
      }),
    );
    // The ownership mark is public DNS: it names no namespace or object, only a fingerprint.
    expect(records()).toEqual([`CNAME shop.example.com ${tunnelId}.cfargotunnel.com`, `TXT _ktube.shop.example.com "heritage=ktube,owner=test,provider=${bindingFingerprint(providerName)},binding=${bindingFingerprint(`${ns}/shop`)}"`]);
    expect(JSON.stringify([...h.fake.records.values()])).not.toContain(ns);
    expect([...h.fake.records.values()].find((r) => r.type === "CNAME")?.proxied).toBe(true);
    await waitForCondition(h, "Tunnel", ns, "home", "Ready", { status: "True" });
    expect((await status(h, "Tunnel", ns, "home")).boundRoutes).toBe(2);
    const { stdout } = await kubectl(["-n", ns, "get", "tb", "shop"]);
    expect(stdout).toMatch(/shop\s+home\s+True\s+https:\/\/shop\.example\.com\//);
  });

  it("follows a renamed Service port", async () => {
    await h.client.patch(Core.Service, ns, "web", { spec: { ports: [{ name: "http", port: 9090, targetPort: 9090 }] } }, PatchType.merge);
    const tunnelId = (await status(h, "Tunnel", ns, "home")).tunnelId!;
    await eventually(() => expect(JSON.stringify(h.fake.configurations.get(tunnelId)?.config)).toContain(`http://web.${ns}.svc.cluster.local:9090`));
    // The numbered route now points at a port the Service no longer has.
    const s = await waitForCondition(h, "TunnelBinding", ns, "shop", "ResolvedRefs", { status: "False", reason: "PortNotFound" });
    expect(condition(s, "ResolvedRefs")?.message).toContain("has no port 8080 (ports: http/9090)");
  });

  it("moves DNS to a renamed hostname and removes the old records", async () => {
    await h.client.patch(TunnelBindingResource, ns, "shop", [
      { op: "replace", path: "/spec/routes/0/hostname", value: "store.shop.example.org" },
      { op: "replace", path: "/spec/routes/1/service/port", value: "http" },
    ], PatchType.json);
    await eventually(async () => {
      const s = await status(h, "TunnelBinding", ns, "shop");
      expect(s.routes?.map((r) => r.url)).toEqual(["https://store.shop.example.org/", "https://shop.example.com/api"]);
    });
    await eventually(() => {
      expect(records().filter((r) => r.startsWith("CNAME")).map((r) => r.split(" ")[1])).toEqual(["shop.example.com", "store.shop.example.org"]);
    });
    // shop.example.com is still used by the api route, so its records stay; a binding
    // left with only the new name drops the old one:
    await h.client.patch(TunnelBindingResource, ns, "shop", [{ op: "remove", path: "/spec/routes/1" }], PatchType.json);
    await eventually(() => expect(records().map((r) => r.split(" ")[1])).toEqual(["store.shop.example.org", "_ktube.store.shop.example.org"]));
  });

  it("never touches a DNS record it does not own", async () => {
    const zone = [...h.fake.zones.values()].find((z) => z.name === "example.com")!;
    const theirs = h.fake.addRecord(zone.id, { type: "CNAME", name: "taken.example.com", content: "elsewhere.example.net" });
    await h.client.create(TunnelBindingResource, binding(ns, "taker", { name: "home" }, [{ name: "web", hostname: "taken.example.com", service: { name: "web", port: "http" } }]) as KubeObject);
    const s = await waitForCondition(h, "TunnelBinding", ns, "taker", "Ready", { status: "False", reason: "DNSRecordNotOwned" });
    expect(s.routes?.[0]?.message).toContain("a CNAME record taken.example.com -> elsewhere.example.net exists and was not made by KTube");
    expect(h.fake.records.get(theirs.id)).toMatchObject({ content: "elsewhere.example.net", proxied: false });
    await h.client.delete(TunnelBindingResource, ns, "taker");
    await eventually(() => expect(h.client.get(TunnelBindingResource, ns, "taker")).rejects.toBeInstanceOf(ApiError));
    expect(h.fake.records.get(theirs.id)).toBeDefined();
  });

  it("reports a hostname outside every zone of the account", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "zoneless", { name: "home" }, [{ name: "web", hostname: "app.not-my-zone.example", service: { name: "web", port: "http" } }]) as KubeObject);
    const s = await waitForCondition(h, "TunnelBinding", ns, "zoneless", "ResolvedRefs", { status: "False", reason: "ZoneNotFound" });
    expect(condition(s, "ResolvedRefs")?.message).toBe(`no zone of account ${h.account} contains app.not-my-zone.example`);
    expect(condition(s, "Ready")).toMatchObject({ status: "False", reason: "ZoneNotFound" });
    // No URL for a route that is not served.
    expect(s.routes).toEqual([expect.objectContaining({ name: "web", ready: false })]);
    expect(s.routes?.[0]?.url).toBeUndefined();
    await h.client.delete(TunnelBindingResource, ns, "zoneless");
  });

  it("reports an A record in the way of the CNAME, and writes nothing", async () => {
    const zone = [...h.fake.zones.values()].find((z) => z.name === "example.com")!;
    const theirs = h.fake.addRecord(zone.id, { type: "A", name: "legacy.example.com", content: "192.0.2.10" });
    await h.client.create(TunnelBindingResource, binding(ns, "legacy", { name: "home" }, [{ name: "web", hostname: "legacy.example.com", service: { name: "web", port: "http" } }]) as KubeObject);
    try {
      const s = await waitForCondition(h, "TunnelBinding", ns, "legacy", "Ready", { status: "False", reason: "DNSRecordConflict" });
      // Seen in the zone snapshot before writing, or (when the snapshot predates the A
      // record) refused by Cloudflare as the whole batch: either way nothing is written.
      expect(s.routes?.[0]?.message).toMatch(/an A record legacy\.example\.com -> 192\.0\.2\.10 exists|code 81053/);
      expect(s.routes?.[0]?.url).toBeUndefined();
      expect([...h.fake.records.values()].filter((r) => r.name === "legacy.example.com" || r.name === "_ktube.legacy.example.com")).toEqual([
        expect.objectContaining({ id: theirs.id, type: "A", content: "192.0.2.10" }),
      ]);
      await h.client.delete(TunnelBindingResource, ns, "legacy");
      await eventually(() => expect(h.client.get(TunnelBindingResource, ns, "legacy")).rejects.toBeInstanceOf(ApiError));
      expect(h.fake.records.get(theirs.id)).toBeDefined();
    } finally {
      const cf = new Cloudflare({ apiToken: TOKEN, baseURL: h.fake.baseUrl, maxRetries: 0 });
      await cf.dns.records.delete(theirs.id, { zone_id: zone.id });
    }
  });

  it("gives a contested hostname to the older binding and names the winner", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "late", { name: "home" }, [{ name: "web", hostname: "store.shop.example.org", service: { name: "web", port: "http" } }]) as KubeObject);
    const s = await waitForCondition(h, "TunnelBinding", ns, "late", "Accepted", { status: "False", reason: "Conflict" });
    expect(condition(s, "Accepted")?.message).toContain(`TunnelBinding ${ns}/shop`);
    expect(s.routes?.[0]?.url).toBeUndefined();
    const events = await kubectl(["-n", ns, "get", "events", "--field-selector", "reason=Conflict", "-o", "name"]);
    expect(events.stdout.trim()).not.toBe("");
    await h.client.delete(TunnelBindingResource, ns, "late");
  });

  it("hands a contested hostname, DNS included, to the loser within seconds of the winner's deletion", async () => {
    const route = { name: "web", hostname: "contested.example.com", service: { name: "web", port: "http" } };
    // Created within one second, the older is decided by name: "a-winner" before "b-loser".
    await h.client.create(TunnelBindingResource, binding(ns, "a-winner", { name: "home" }, [route]) as KubeObject);
    await waitForCondition(h, "TunnelBinding", ns, "a-winner", "Ready", { status: "True" });
    await h.client.create(TunnelBindingResource, binding(ns, "b-loser", { name: "home" }, [route]) as KubeObject);
    await waitForCondition(h, "TunnelBinding", ns, "b-loser", "Accepted", { status: "False", reason: "Conflict" });
    const owner = (key: string) => `TXT _ktube.contested.example.com "heritage=ktube,owner=test,provider=${bindingFingerprint(providerName)},binding=${bindingFingerprint(key)}"`;
    expect(records()).toContain(owner(`${ns}/a-winner`));

    const deletedAt = Date.now();
    await h.client.delete(TunnelBindingResource, ns, "a-winner");
    const s = await waitForCondition(h, "TunnelBinding", ns, "b-loser", "Ready", { status: "True" }, 15_000);
    expect(Date.now() - deletedAt).toBeLessThan(15_000);
    expect(s.routes).toEqual([{ name: "web", ready: true, url: "https://contested.example.com/" }]);
    expect(records()).toContain(owner(`${ns}/b-loser`));
    expect(records()).not.toContain(owner(`${ns}/a-winner`));
    await h.client.delete(TunnelBindingResource, ns, "b-loser");
    await eventually(() => expect(records().some((r) => r.includes("contested.example.com"))).toBe(false));
  });

  it("refuses a path on a hostname another namespace holds", async () => {
    const tenant = await h.namespace("cf-tenant");
    await h.client.create(Core.Service, service(tenant, "phish", [{ name: "http", port: 80 }]) as KubeObject);
    await h.client.patch(TunnelResource, ns, "home", { spec: { allowedBindings: { namespaces: { from: "All" } } } }, PatchType.merge);
    try {
      await h.client.create(TunnelBindingResource, binding(tenant, "hijack", { name: "home", namespace: ns }, [
        { name: "login", hostname: "store.shop.example.org", path: "/login", service: { name: "phish", port: "http" } },
      ]) as KubeObject);
      const s = await waitForCondition(h, "TunnelBinding", tenant, "hijack", "Accepted", { status: "False", reason: "Conflict" });
      expect(condition(s, "Accepted")?.message).toContain(`TunnelBinding ${ns}/shop`);
      const tunnelId = (await status(h, "Tunnel", ns, "home")).tunnelId!;
      expect(JSON.stringify(h.fake.configurations.get(tunnelId)?.config)).not.toContain("phish");
    } finally {
      await h.client.delete(TunnelBindingResource, tenant, "hijack").catch(() => undefined);
      await h.client.patch(TunnelResource, ns, "home", { spec: { allowedBindings: { namespaces: { from: "Same" } } } }, PatchType.merge);
    }
  });

  it("puts Cloudflare Access in front of a route", async () => {
    await h.client.create(TunnelBindingResource, binding(ns, "admin", { name: "home" }, [
      { name: "admin", hostname: "admin.example.com", service: { name: "web", port: "http" }, access: { emails: ["alice@example.com"], emailDomains: ["example.com"] } },
    ]) as KubeObject);
    await waitForCondition(h, "TunnelBinding", ns, "admin", "Ready", { status: "True" });
    const apps = [...h.fake.apps.values()];
    expect(apps.map((a) => [a.domain, a.type, a.name])).toEqual([["admin.example.com", "self_hosted", `[ktube:test] ${bindingFingerprint(`${ns}/admin`)}/admin`]]);
    expect([...apps[0]!.policies.values()].map((p) => p.include)).toEqual([[{ email: { email: "alice@example.com" } }, { email_domain: { domain: "example.com" } }]]);
    expect([...h.fake.identityProviders.values()].map((i) => i.type)).toEqual(["onetimepin"]);

    // An email dropped from the spec loses access (duplicates a failed create leaves behind: faults.test.ts).
    const app = apps[0]!;
    await h.client.patch(TunnelBindingResource, ns, "admin", [{ op: "replace", path: "/spec/routes/0/access", value: { emails: ["bob@example.com"] } }], PatchType.json);
    await eventually(() => {
      const policies = [...h.fake.apps.get(app.id)!.policies.values()];
      expect(policies.map((p) => p.include)).toEqual([[{ email: { email: "bob@example.com" } }]]);
    });
    // Dropping `access` removes the application.
    await h.client.patch(TunnelBindingResource, ns, "admin", [{ op: "remove", path: "/spec/routes/0/access" }], PatchType.json);
    await eventually(() => expect(h.fake.apps.size).toBe(0));
  });

  it("sweeps, on a resync, its Access applications whose binding no longer exists, and nobody else's", async () => {
    await h.client.patch(TunnelBindingResource, ns, "admin", [{ op: "add", path: "/spec/routes/0/access", value: { emails: ["alice@example.com"] } }], PatchType.json);
    await eventually(() => expect(h.fake.apps.size).toBe(1));
    const cf = new Cloudflare({ apiToken: TOKEN, baseURL: h.fake.baseUrl, maxRetries: 0 });
    const create = (name: string, domain: string) => cf.zeroTrust.access.applications.create({ account_id: h.account, name, domain, type: "self_hosted" });
    // Left by a binding deleted without its cleanup (its finalizer removed by hand).
    const orphan = await create(`[ktube:test] ${bindingFingerprint(`${ns}/deleted-by-hand`)}/web`, "orphan.example.com");
    const theirs = await create(`[ktube:staging] ${bindingFingerprint(`${ns}/deleted-by-hand`)}/web`, "staging.example.com");
    h.manager!.resync();
    await eventually(() => expect(h.fake.apps.has(orphan.id!)).toBe(false));
    expect(h.fake.apps.has(theirs.id!)).toBe(true);
    expect([...h.fake.apps.values()].map((a) => a.domain).sort()).toEqual(["admin.example.com", "staging.example.com"]);
    await cf.zeroTrust.access.applications.delete(theirs.id!, { account_id: h.account });
    await h.client.patch(TunnelBindingResource, ns, "admin", [{ op: "remove", path: "/spec/routes/0/access" }], PatchType.json);
    await eventually(() => expect(h.fake.apps.size).toBe(0));
  });
});

describe("cross-namespace bindings", () => {
  it("are refused by default and allowed by the tunnel's namespace selector", async () => {
    const other = await h.namespace("cf-other", { team: "web" });
    await h.client.create(Core.Service, service(other, "web", [{ name: "http", port: 80 }]) as KubeObject);
    await h.client.create(TunnelBindingResource, binding(other, "guest", { name: "home", namespace: ns }, [{ name: "web", hostname: "guest.example.com", service: { name: "web", port: "http" } }]) as KubeObject);
    const s = await waitForCondition(h, "TunnelBinding", other, "guest", "Accepted", { status: "False", reason: "NotAllowedByTunnel" });
    expect(condition(s, "Accepted")?.message).toContain("admits bindings from its own namespace only");
    expect(records().some((r) => r.includes("guest.example.com"))).toBe(false);

    await h.client.patch(TunnelResource, ns, "home", { spec: { allowedBindings: { namespaces: { from: "Selector", selector: { matchLabels: { team: "web" } } } } } }, PatchType.merge);
    await waitForCondition(h, "TunnelBinding", other, "guest", "Ready", { status: "True" });
    expect(records().some((r) => r.startsWith("CNAME guest.example.com"))).toBe(true);
  });
});

describe("a Tunnel deleted under its bindings", () => {
  it("releases the bindings' DNS records and reports the missing tunnel", async () => {
    await h.client.create(TunnelResource, tunnel(ns, "temp", providerName) as KubeObject);
    await connectTunnel(h, ns, "temp");
    await h.client.create(TunnelBindingResource, binding(ns, "orphan", { name: "temp" }, [{ name: "web", hostname: "orphan.example.com", service: { name: "web", port: "http" } }]) as KubeObject);
    await waitForCondition(h, "TunnelBinding", ns, "orphan", "Ready", { status: "True" });
    expect(records().some((r) => r.startsWith("CNAME orphan.example.com"))).toBe(true);
    await h.client.delete(TunnelResource, ns, "temp");
    const s = await waitForCondition(h, "TunnelBinding", ns, "orphan", "Accepted", { status: "False", reason: "TunnelNotFound" });
    expect(condition(s, "Accepted")?.message).toBe(`Tunnel ${ns}/temp not found`);
    await eventually(() => expect(records().some((r) => r.includes("orphan.example.com"))).toBe(false));
    const live = await h.client.get<KubeObject>(TunnelBindingResource, ns, "orphan");
    expect(live.metadata?.finalizers ?? []).toEqual([]);
  });
});

describe("deletion", () => {
  it("removes Access, DNS and config rules, then the tunnel, leaving Cloudflare as it found it", async () => {
    const tunnelId = (await status(h, "Tunnel", ns, "home")).tunnelId!;
    // Only this file's namespaces: other test files may run against the same API server at once.
    const mine = (await h.client.list<KubeObject>(TunnelBindingResource)).items.filter((b) => h.namespaces.includes(b.metadata!.namespace!));
    for (const b of mine) await h.client.delete(TunnelBindingResource, b.metadata!.namespace, b.metadata!.name!);
    await eventually(async () => expect((await h.client.list(TunnelBindingResource)).items.filter((b) => h.namespaces.includes(b.metadata!.namespace!))).toEqual([]), 20_000);
    await eventually(() => expect(h.fake.configurations.get(tunnelId)?.config).toEqual({ ingress: [{ service: "http_status:404" }] }));
    await h.client.delete(TunnelResource, ns, "home");
    await eventually(async () => expect((await h.client.list(TunnelResource, { namespace: ns })).items).toEqual([]), 20_000);
    expect(h.fake.liveTunnels()).toEqual([]);
    // Only the record a person made is left.
    expect(records()).toEqual(["CNAME taken.example.com elsewhere.example.net"]);
    expect(h.fake.apps.size).toBe(0);
    expect(h.fake.schemaViolations).toEqual([]);
    await expect(h.client.get(Core.Deployment, ns, "home-cloudflared")).rejects.toBeInstanceOf(ApiError);
  });
});
