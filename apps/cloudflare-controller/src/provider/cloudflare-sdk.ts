// The SDK calls KTube makes, in KTube's own shapes. This is the one adapter over the
// official `cloudflare` SDK: its generated types are unions over every application and
// record type and lag the published schema in places (the hostname-less catch-all
// ingress rule), so the few casts that bridge them live here and nowhere else. Every
// function takes the SDK client; `CloudflareApi.call`/`all` add budget, metrics and
// error mapping around them.
import type Cloudflare from "cloudflare";
import type { Page } from "./api.ts";
import type { IngressConfig } from "./ingress.ts";

// --- DNS ---------------------------------------------------------------------

/** A DNS record as the zone snapshot keeps it. */
export interface DnsRecord {
  id: string;
  name: string;
  type: string;
  content: string;
  proxied: boolean;
}

/** A record KTube writes: the proxied CNAME to the tunnel or its ownership TXT. */
export interface RecordBody {
  type: "CNAME" | "TXT";
  name: string;
  content: string;
  ttl: 1;
  proxied?: boolean;
  comment?: string;
}

/** One batch call's changes (Cloudflare applies deletes, patches, posts in that order, all or nothing). */
export interface DnsBatch {
  deletes?: Array<{ id: string }>;
  patches?: Array<RecordBody & { id: string }>;
  posts?: RecordBody[];
}

export interface DnsBatchResult {
  deletes: Array<{ id: string }>;
  patches: DnsRecord[];
  posts: DnsRecord[];
}

interface RecordLike {
  id?: string;
  name?: string;
  type?: string;
  content?: unknown;
  proxied?: boolean;
}

const toDnsRecord = (r: RecordLike): DnsRecord => ({
  id: String(r.id ?? ""),
  name: r.name ?? "",
  type: r.type ?? "",
  content: typeof r.content === "string" ? r.content : String(r.content ?? ""),
  proxied: r.proxied ?? false,
});

/** The first page of a zone's records (every type). */
export function dnsRecordPages(sdk: Cloudflare, zoneId: string, perPage: number): PromiseLike<Page<DnsRecord>> {
  return mapPages(sdk.dns.records.list({ zone_id: zoneId, per_page: perPage }), toDnsRecord);
}

export async function batchDnsRecords(sdk: Cloudflare, zoneId: string, batch: DnsBatch): Promise<DnsBatchResult> {
  const result = await sdk.dns.records.batch({ zone_id: zoneId, ...batch });
  return {
    deletes: (result.deletes ?? []).map((r) => ({ id: String(r.id) })),
    patches: (result.patches ?? []).map(toDnsRecord),
    posts: (result.posts ?? []).map(toDnsRecord),
  };
}

// --- zones -------------------------------------------------------------------

export interface ZoneRef {
  id: string;
  name: string;
}

export function zonePages(sdk: Cloudflare, accountId: string, perPage: number): PromiseLike<Page<ZoneRef>> {
  return mapPages(sdk.zones.list({ account: { id: accountId }, per_page: perPage }), (z) => ({ id: z.id, name: z.name }));
}

// --- tunnels -----------------------------------------------------------------

export interface CfTunnel {
  id: string;
  name: string;
  status?: string;
  connections?: unknown[];
  deleted_at?: string | null;
}

type SdkTunnel = Awaited<ReturnType<Cloudflare["zeroTrust"]["tunnels"]["cloudflared"]["get"]>>;

const toTunnel = (t: SdkTunnel): CfTunnel => ({
  id: t.id ?? "",
  name: t.name ?? "",
  ...(t.status !== undefined ? { status: t.status } : {}),
  ...(t.connections !== undefined ? { connections: t.connections } : {}),
  deleted_at: t.deleted_at ?? null,
});

/** Live (not deleted) tunnels of the account, optionally only those named `name`. */
export function tunnelPages(sdk: Cloudflare, accountId: string, perPage: number, name?: string): PromiseLike<Page<CfTunnel>> {
  return mapPages(sdk.zeroTrust.tunnels.cloudflared.list({ account_id: accountId, is_deleted: false, per_page: perPage, ...(name ? { name } : {}) }), toTunnel);
}

export async function createTunnel(sdk: Cloudflare, accountId: string, name: string): Promise<CfTunnel> {
  return toTunnel(await sdk.zeroTrust.tunnels.cloudflared.create({ account_id: accountId, name, config_src: "cloudflare" }));
}

export async function getTunnel(sdk: Cloudflare, accountId: string, id: string): Promise<CfTunnel> {
  return toTunnel(await sdk.zeroTrust.tunnels.cloudflared.get(id, { account_id: accountId }));
}

export async function tunnelToken(sdk: Cloudflare, accountId: string, id: string): Promise<string> {
  return String(await sdk.zeroTrust.tunnels.cloudflared.token.get(id, { account_id: accountId }));
}

export async function deleteTunnelConnections(sdk: Cloudflare, accountId: string, id: string): Promise<void> {
  await sdk.zeroTrust.tunnels.cloudflared.connections.delete(id, { account_id: accountId });
}

export async function deleteTunnel(sdk: Cloudflare, accountId: string, id: string): Promise<void> {
  await sdk.zeroTrust.tunnels.cloudflared.delete(id, { account_id: accountId });
}

export async function getTunnelConfig(sdk: Cloudflare, accountId: string, id: string): Promise<IngressConfig | undefined> {
  const result = await sdk.zeroTrust.tunnels.cloudflared.configurations.get(id, { account_id: accountId });
  // The SDK types every rule with a hostname; the catch-all has none.
  return (result.config as IngressConfig | null | undefined) ?? undefined;
}

export async function putTunnelConfig(sdk: Cloudflare, accountId: string, id: string, config: IngressConfig): Promise<void> {
  // The SDK requires a hostname on every rule, the schema and cloudflared do not (the catch-all).
  await sdk.zeroTrust.tunnels.cloudflared.configurations.update(id, { account_id: accountId, config: config as never });
}

// --- API tokens --------------------------------------------------------------

/** A user-owned token first; an account-owned token answers only on the account's endpoint. */
export async function verifyUserToken(sdk: Cloudflare): Promise<{ status: string }> {
  const result = await sdk.user.tokens.verify();
  return { status: String(result.status) };
}

export async function verifyAccountToken(sdk: Cloudflare, accountId: string): Promise<{ status: string }> {
  const result = await sdk.accounts.tokens.verify({ account_id: accountId });
  return { status: String(result.status) };
}

// --- Access ------------------------------------------------------------------

/** One include rule of an Access policy. */
export type AccessRule = { email: { email: string } } | { email_domain: { domain: string } };

export interface AccessPolicy {
  id: string;
  name: string;
  decision: string;
  include: unknown[];
  exclude: unknown[];
  require: unknown[];
  precedence?: number;
}

export interface AccessApp {
  id: string;
  name: string;
  domain: string;
  allowed_idps: string[];
  policies: AccessPolicy[];
}

/** A self-hosted Access application (what KTube makes). */
export interface AccessAppBody {
  name: string;
  domain: string;
  allowed_idps: string[];
  auto_redirect_to_identity: boolean;
  app_launcher_visible: boolean;
  session_duration: string;
}

export interface AccessPolicyBody {
  name: string;
  decision: "allow";
  include: AccessRule[];
  exclude: AccessRule[];
  require: AccessRule[];
  precedence: number;
}

interface AppLike {
  id?: string;
  name?: string;
  domain?: string;
  allowed_idps?: string[];
  policies?: PolicyLike[];
}

interface PolicyLike {
  id?: string;
  name?: string;
  decision?: string;
  include?: unknown[];
  exclude?: unknown[];
  require?: unknown[];
  precedence?: number;
}

const toPolicy = (p: PolicyLike): AccessPolicy => ({
  id: p.id ?? "",
  name: p.name ?? "",
  decision: p.decision ?? "",
  include: p.include ?? [],
  exclude: p.exclude ?? [],
  require: p.require ?? [],
  ...(p.precedence !== undefined ? { precedence: p.precedence } : {}),
});

/** Applications come as a union of every application type; KTube reads the fields all self-hosted ones have. */
const toAccessApp = (app: object): AccessApp => {
  const a = app as AppLike;
  return { id: a.id ?? "", name: a.name ?? "", domain: a.domain ?? "", allowed_idps: a.allowed_idps ?? [], policies: (a.policies ?? []).map(toPolicy) };
};

export function accessAppPages(sdk: Cloudflare, accountId: string, perPage: number): PromiseLike<Page<AccessApp>> {
  return mapPages(sdk.zeroTrust.access.applications.list({ account_id: accountId, per_page: perPage }), toAccessApp);
}

export async function createAccessApp(sdk: Cloudflare, accountId: string, body: AccessAppBody): Promise<AccessApp> {
  return toAccessApp(await sdk.zeroTrust.access.applications.create({ account_id: accountId, type: "self_hosted", ...body }));
}

export async function updateAccessApp(sdk: Cloudflare, accountId: string, appId: string, body: AccessAppBody): Promise<AccessApp> {
  return toAccessApp(await sdk.zeroTrust.access.applications.update(appId, { account_id: accountId, type: "self_hosted", ...body }));
}

export async function deleteAccessApp(sdk: Cloudflare, accountId: string, appId: string): Promise<void> {
  await sdk.zeroTrust.access.applications.delete(appId, { account_id: accountId });
}

export async function createAccessPolicy(sdk: Cloudflare, accountId: string, appId: string, body: AccessPolicyBody): Promise<AccessPolicy> {
  return toPolicy(await sdk.zeroTrust.access.applications.policies.create(appId, { account_id: accountId, ...body }));
}

export async function updateAccessPolicy(sdk: Cloudflare, accountId: string, appId: string, policyId: string, body: AccessPolicyBody): Promise<AccessPolicy> {
  return toPolicy(await sdk.zeroTrust.access.applications.policies.update(policyId, { app_id: appId, account_id: accountId, ...body }));
}

export async function deleteAccessPolicy(sdk: Cloudflare, accountId: string, appId: string, policyId: string): Promise<void> {
  await sdk.zeroTrust.access.applications.policies.delete(policyId, { app_id: appId, account_id: accountId });
}

export interface IdentityProvider {
  id: string;
  type: string;
}

export function identityProviderPages(sdk: Cloudflare, accountId: string, perPage: number): PromiseLike<Page<IdentityProvider>> {
  return mapPages(sdk.zeroTrust.identityProviders.list({ account_id: accountId, per_page: perPage }), (i: { id?: string; type?: string }) => ({
    id: i.id ?? "",
    type: i.type ?? "",
  }));
}

export async function createOneTimePinIdp(sdk: Cloudflare, accountId: string): Promise<IdentityProvider> {
  const created = await sdk.zeroTrust.identityProviders.create({ account_id: accountId, name: "One-time PIN", type: "onetimepin", config: {} });
  return { id: created.id ?? "", type: created.type };
}

// --- pages -------------------------------------------------------------------

/**
 * A page whose items are mapped to KTube's shape, keeping Cloudflare's `result_info`
 * (page counts) and the way to the next page.
 */
async function mapPages<Raw, T>(first: PromiseLike<Page<Raw>>, map: (raw: Raw) => T): Promise<Page<T>> {
  return mappedPage(await first, map);
}

function mappedPage<Raw, T>(page: Page<Raw>, map: (raw: Raw) => T): Page<T> {
  const items = page.getPaginatedItems().map(map);
  return {
    getPaginatedItems: () => items,
    hasNextPage: () => page.hasNextPage(),
    getNextPage: async () => mappedPage(await page.getNextPage(), map),
    ...(page.result_info ? { result_info: page.result_info } : {}),
  };
}
