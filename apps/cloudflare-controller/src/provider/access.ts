// Cloudflare Access in front of a route: a self-hosted application for its hostname
// (and path) with an allow policy for the listed emails and email domains, logging in
// with one-time PIN. Applications are ours when their name carries our owner marker.
import type { CloudflareApi } from "./api.ts";

export interface AccessSpec {
  /** hostname, plus the path when it is not "/". */
  domain: string;
  /** namespace/name/route, for the application's name. */
  route: string;
  emails: string[];
  emailDomains: string[];
}

interface AppLike {
  id: string;
  name: string;
  domain: string;
  allowed_idps?: string[];
  policies?: Array<{ id: string; include?: unknown[] }>;
}

const APPS_PER_PAGE = 1000;

export const appName = (ownerId: string, route: string): string => `[ktube:${ownerId}] ${route}`;
const isOurs = (app: AppLike, ownerId: string): boolean => app.name.startsWith(`[ktube:${ownerId}] `);

export function includeRules(spec: Pick<AccessSpec, "emails" | "emailDomains">): unknown[] {
  return [
    ...[...spec.emails].sort().map((email) => ({ email: { email } })),
    ...[...spec.emailDomains].sort().map((domain) => ({ email_domain: { domain } })),
  ];
}

/** Access applications of one account, listed at most every `ttlMs` and kept current with our writes. */
export class AccessApps {
  private cached?: { apps: Map<string, AppLike>; at: number };
  private listing?: Promise<Map<string, AppLike>>;
  private oneTimePin?: string;
  private readonly ttlMs: number;

  constructor(ttlMs = 60_000) {
    this.ttlMs = ttlMs;
  }

  /** The account's applications by domain; concurrent callers share one listing. */
  async apps(api: CloudflareApi): Promise<Map<string, AppLike>> {
    if (this.cached && Date.now() - this.cached.at < this.ttlMs) return this.cached.apps;
    this.listing ??= api
      .all("access.applications.list", (sdk) => sdk.zeroTrust.access.applications.list({ account_id: api.accountId, per_page: APPS_PER_PAGE } as never), APPS_PER_PAGE)
      .then((list) => {
        const apps = new Map<string, AppLike>();
        for (const app of list as unknown as AppLike[]) apps.set(app.domain, app);
        this.cached = { apps, at: Date.now() };
        return apps;
      })
      .finally(() => (this.listing = undefined));
    return this.listing;
  }

  /** The account's one-time PIN login method, created if it has none. */
  async oneTimePinIdp(api: CloudflareApi): Promise<string> {
    if (this.oneTimePin) return this.oneTimePin;
    const idps = (await api.all(
      "access.identity_providers.list",
      (sdk) => sdk.zeroTrust.identityProviders.list({ account_id: api.accountId } as never),
    )) as unknown as Array<{ id: string; type: string }>;
    const existing = idps.find((i) => i.type === "onetimepin");
    this.oneTimePin =
      existing?.id ??
      ((await api.call("access.identity_providers.create", (sdk) =>
        sdk.zeroTrust.identityProviders.create({ account_id: api.accountId, name: "One-time PIN", type: "onetimepin", config: {} } as never),
      )) as { id: string }).id;
    return this.oneTimePin;
  }

  forget(): void {
    this.cached = undefined;
  }
}

export type AccessOutcome = { kind: "unchanged" } | { kind: "written" } | { kind: "notOwned"; message: string };

export async function ensureAccessApp(api: CloudflareApi, cache: AccessApps, ownerId: string, spec: AccessSpec): Promise<AccessOutcome> {
  const apps = await cache.apps(api);
  const existing = apps.get(spec.domain);
  const name = appName(ownerId, spec.route);
  if (existing && !isOurs(existing, ownerId)) {
    return { kind: "notOwned", message: `an Access application "${existing.name}" already protects ${spec.domain} and was not made by KTube; it is left alone` };
  }
  const idp = await cache.oneTimePinIdp(api);
  const include = includeRules(spec);
  const appBody = {
    account_id: api.accountId,
    type: "self_hosted",
    name,
    domain: spec.domain,
    allowed_idps: [idp],
    auto_redirect_to_identity: true,
    app_launcher_visible: false,
    session_duration: "24h",
  };
  let app = existing;
  let changed = false;
  if (!app) {
    app = (await api.call("access.applications.create", (sdk) => sdk.zeroTrust.access.applications.create(appBody as never))) as unknown as AppLike;
    app.policies = [];
    changed = true;
  } else if (app.name !== name || JSON.stringify(app.allowed_idps ?? []) !== JSON.stringify([idp])) {
    const id = app.id;
    app = { ...(await api.call("access.applications.update", (sdk) => sdk.zeroTrust.access.applications.update(id, appBody as never))) as unknown as AppLike, policies: app.policies ?? [] };
    changed = true;
  }
  const policyBody = { account_id: api.accountId, name: "ktube", decision: "allow", include, precedence: 1 };
  const policy = app.policies?.[0];
  const appId = app.id;
  if (!policy) {
    const created = await api.call("access.applications.policies.create", (sdk) => sdk.zeroTrust.access.applications.policies.create(appId, policyBody as never));
    app.policies = [{ id: (created as { id: string }).id, include }];
    changed = true;
  } else if (JSON.stringify(policy.include ?? []) !== JSON.stringify(include)) {
    await api.call("access.applications.policies.update", (sdk) => sdk.zeroTrust.access.applications.policies.update(policy.id, { app_id: appId, ...policyBody } as never));
    app.policies = [{ id: policy.id, include }];
    changed = true;
  }
  apps.set(spec.domain, app);
  return changed ? { kind: "written" } : { kind: "unchanged" };
}

/** Deletes the Access application for `domain` if it is ours. */
export async function deleteAccessApp(api: CloudflareApi, cache: AccessApps, ownerId: string, domain: string): Promise<boolean> {
  const apps = await cache.apps(api);
  const app = apps.get(domain);
  if (!app || !isOurs(app, ownerId)) return false;
  await api.call("access.applications.delete", (sdk) => sdk.zeroTrust.access.applications.delete(app.id, { account_id: api.accountId }));
  apps.delete(domain);
  return true;
}

/** Domains of the Access applications this owner made for one binding. */
export async function ownedAccessDomains(api: CloudflareApi, cache: AccessApps, ownerId: string, binding: string): Promise<string[]> {
  const prefix = `${appName(ownerId, binding)}/`;
  return [...(await cache.apps(api)).values()].filter((a) => a.name.startsWith(prefix)).map((a) => a.domain);
}
