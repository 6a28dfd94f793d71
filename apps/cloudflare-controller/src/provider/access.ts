// Cloudflare Access in front of a route: a self-hosted application for its hostname
// (and path) with one allow policy for the listed emails and email domains, logging in
// with one-time PIN. Applications are ours when their name carries our owner marker,
// and KTube owns their policy set outright: after an ensure the application has exactly
// the one desired policy, so a grant removed from the spec is gone at Cloudflare too.
// Nothing here runs unless a caller asks: DNS and tunnels never touch Access, so a token
// without Access rights works for every binding that does not use it.
import { ProviderRateLimited } from "@ktube/provider-kit";
import type { CloudflareApi } from "./api.ts";
import {
  accessAppPages,
  createAccessApp,
  createAccessPolicy,
  createOneTimePinIdp,
  deleteAccessApp as deleteAccessAppCall,
  deleteAccessPolicy,
  identityProviderPages,
  updateAccessApp,
  updateAccessPolicy,
  type AccessApp,
  type AccessAppBody,
  type AccessPolicy,
  type AccessPolicyBody,
  type AccessRule,
} from "./cloudflare-sdk.ts";
import { CloudflareError } from "./errors.ts";
import { bindingFingerprint } from "./ownership.ts";

export type { AccessApp, AccessPolicy } from "./cloudflare-sdk.ts";

export interface AccessSpec {
  /** hostname, plus the path when it is not "/". */
  domain: string;
  /** `namespace/name` of the binding; only its fingerprint appears in the application's name. */
  binding: string;
  /** The route's name within the binding. */
  route: string;
  emails: string[];
  emailDomains: string[];
}

/** The schema's maximum for the application and identity-provider lists. */
const PER_PAGE = 1000;

/**
 * `[ktube:<ownerId>] <binding fingerprint>/<route>`. The name shows on Access's login
 * page, so it carries no namespace or object name.
 */
export const accessAppName = (ownerId: string, binding: string, route: string): string =>
  `${ownerMarker(ownerId)}${bindingFingerprint(binding)}/${route}`;

const ownerMarker = (ownerId: string): string => `[ktube:${ownerId}] `;
const isOurs = (app: AccessApp, ownerId: string): boolean => app.name.startsWith(ownerMarker(ownerId));

/** Name prefixes of one binding's applications: the current one, and the clear-text one earlier versions wrote. */
const bindingPrefixes = (ownerId: string, binding: string): string[] => [
  `${ownerMarker(ownerId)}${bindingFingerprint(binding)}/`,
  `${ownerMarker(ownerId)}${binding}/`,
];

export function includeRules(spec: Pick<AccessSpec, "emails" | "emailDomains">): AccessRule[] {
  return [
    ...[...spec.emails].sort().map((email): AccessRule => ({ email: { email } })),
    ...[...spec.emailDomains].sort().map((domain): AccessRule => ({ email_domain: { domain } })),
  ];
}

/** The one policy KTube wants on an application. */
export const desiredPolicy = (spec: Pick<AccessSpec, "emails" | "emailDomains">): AccessPolicyBody => ({
  name: "ktube",
  decision: "allow",
  include: includeRules(spec),
  exclude: [],
  require: [],
  precedence: 1,
});

const sameRules = (a: readonly unknown[], b: readonly unknown[]): boolean => {
  const canonical = (rules: readonly unknown[]) => JSON.stringify(rules.map((r) => JSON.stringify(r)).sort());
  return canonical(a) === canonical(b);
};

/** Does `policy` grant exactly what `desired` grants? */
const grantsExactly = (policy: AccessPolicy, desired: AccessPolicyBody): boolean =>
  policy.decision === desired.decision &&
  sameRules(policy.include, desired.include) &&
  sameRules(policy.exclude, desired.exclude) &&
  sameRules(policy.require, desired.require);

/**
 * The Access applications of one session (account and token), by domain, listed to
 * the last page at most every `ttlMs` and kept current with our writes; and the
 * account's one-time PIN login method. Any failed write or listing drops both
 * (`forget`), so the next attempt reads Cloudflare again instead of trusting a
 * listing the failure may have made wrong.
 */
export class AccessApps {
  private cached?: { apps: Map<string, AccessApp[]>; at: number };
  private listing?: Promise<Map<string, AccessApp[]>>;
  private writes: Array<{ at: number; domain: string; apps: AccessApp[] }> = [];
  private oneTimePin?: { id: string; at: number };
  private findingOneTimePin?: Promise<string>;
  private readonly ttlMs: number;

  constructor(ttlMs = 60_000) {
    this.ttlMs = ttlMs;
  }

  /** The account's applications by domain (a domain may have several); concurrent callers share one listing. */
  async apps(api: CloudflareApi): Promise<ReadonlyMap<string, readonly AccessApp[]>> {
    if (this.cached && Date.now() - this.cached.at < this.ttlMs) return this.cached.apps;
    if (this.listing) return this.listing;
    const started = Date.now();
    const listing = api
      .all("access.applications.list", (sdk) => accessAppPages(sdk, api.accountId, PER_PAGE))
      .then((list) => {
        const apps = new Map<string, AccessApp[]>();
        for (const app of list) apps.set(app.domain, [...(apps.get(app.domain) ?? []), app]);
        // Our writes made while the listing was under way are laid over it: a listing that
        // predates an application we created must not make us create it again.
        this.writes = this.writes.filter((w) => w.at >= started);
        for (const w of this.writes) setApps(apps, w.domain, w.apps);
        if (this.listing === listing) this.cached = { apps, at: Date.now() };
        return apps;
      })
      .finally(() => {
        if (this.listing === listing) this.listing = undefined;
      });
    this.listing = listing;
    return listing;
  }

  /**
   * The account's one-time PIN login method (every page of identity providers looked
   * at), created if it has none; concurrent callers share one lookup, so it is made once.
   */
  async oneTimePinIdp(api: CloudflareApi): Promise<string> {
    if (this.oneTimePin && Date.now() - this.oneTimePin.at < this.ttlMs) return this.oneTimePin.id;
    this.findingOneTimePin ??= (async () => {
      const idps = await api.all("access.identity_providers.list", (sdk) => identityProviderPages(sdk, api.accountId, PER_PAGE));
      const id =
        idps.find((i) => i.type === "onetimepin")?.id ??
        (await api.call("access.identity_providers.create", (sdk) => createOneTimePinIdp(sdk, api.accountId))).id;
      this.oneTimePin = { id, at: Date.now() };
      return id;
    })().finally(() => (this.findingOneTimePin = undefined));
    return this.findingOneTimePin;
  }

  /** Records the applications of `domain` as we left them (in the listing, and in one under way). */
  remember(domain: string, apps: AccessApp[]): void {
    if (this.cached) setApps(this.cached.apps, domain, apps);
    if (this.listing) this.writes.push({ at: Date.now(), domain, apps });
  }

  /** Drops what is known: the next call lists again (a listing under way is not waited for: it may predate the failure). */
  forget(): void {
    this.cached = undefined;
    this.listing = undefined;
    this.oneTimePin = undefined;
  }
}

export type AccessOutcome =
  | { kind: "unchanged" }
  | { kind: "written" }
  /** Another application (not KTube's, or another installation's) already protects the domain; it is left alone. */
  | { kind: "notOwned"; reason: "AccessAppNotOwned"; message: string };

/**
 * Makes the application for `spec.domain` ours, as specified, with exactly one policy:
 * the desired one. Every other policy on it (a duplicate left by a create that
 * committed but answered 5xx, one a person added) is deleted before the kept one is
 * updated, so access only ever narrows on the way; so is a second application of ours
 * for the same domain.
 */
export async function ensureAccessApp(api: CloudflareApi, cache: AccessApps, ownerId: string, spec: AccessSpec): Promise<AccessOutcome> {
  return forgettingOnFailure(cache, async () => {
    const atDomain = (await cache.apps(api)).get(spec.domain) ?? [];
    const others = atDomain.filter((a) => !isOurs(a, ownerId));
    const ours = atDomain.filter((a) => isOurs(a, ownerId));
    if (ours.length === 0 && others.length > 0) {
      return {
        kind: "notOwned",
        reason: "AccessAppNotOwned",
        message: `an Access application "${others[0]!.name}" already protects ${spec.domain} and was not made by this KTube installation; it is left alone`,
      };
    }
    const idp = await cache.oneTimePinIdp(api);
    const body: AccessAppBody = {
      name: accessAppName(ownerId, spec.binding, spec.route),
      domain: spec.domain,
      allowed_idps: [idp],
      auto_redirect_to_identity: true,
      app_launcher_visible: false,
      session_duration: "24h",
    };
    let changed = false;
    const existing = ours.find((a) => a.name === body.name) ?? ours[0];
    for (const extra of ours.filter((a) => a !== existing)) {
      await api.call("access.applications.delete", (sdk) => deleteAccessAppCall(sdk, api.accountId, extra.id));
      changed = true;
    }
    let app: AccessApp;
    if (!existing) {
      app = await api.call("access.applications.create", (sdk) => createAccessApp(sdk, api.accountId, body));
      changed = true;
    } else if (existing.name !== body.name || !sameRules(existing.allowed_idps, body.allowed_idps)) {
      const updated = await api.call("access.applications.update", (sdk) => updateAccessApp(sdk, api.accountId, existing.id, body));
      app = { ...updated, policies: existing.policies };
      changed = true;
    } else {
      app = existing;
    }
    cache.remember(spec.domain, [...others, app]);

    const desired = desiredPolicy(spec);
    const keep = app.policies.find((p) => grantsExactly(p, desired)) ?? app.policies.find((p) => p.name === desired.name) ?? app.policies[0];
    for (const extra of app.policies.filter((p) => p !== keep)) {
      await api.call("access.applications.policies.delete", (sdk) => deleteAccessPolicy(sdk, api.accountId, app.id, extra.id));
      changed = true;
    }
    let kept: AccessPolicy;
    if (!keep) {
      kept = await api.call("access.applications.policies.create", (sdk) => createAccessPolicy(sdk, api.accountId, app.id, desired));
      changed = true;
    } else if (!grantsExactly(keep, desired)) {
      kept = await api.call("access.applications.policies.update", (sdk) => updateAccessPolicy(sdk, api.accountId, app.id, keep.id, desired));
      changed = true;
    } else {
      kept = keep;
    }
    cache.remember(spec.domain, [...others, { ...app, policies: [kept] }]);
    return changed ? { kind: "written" } : { kind: "unchanged" };
  });
}

/**
 * Deletes this installation's Access application(s) for `domain`; one already gone
 * counts as deleted. Returns whether there was one; others' applications stay.
 */
export async function deleteAccessApp(api: CloudflareApi, cache: AccessApps, ownerId: string, domain: string): Promise<boolean> {
  return forgettingOnFailure(cache, async () => {
    const atDomain = (await cache.apps(api)).get(domain) ?? [];
    const ours = atDomain.filter((a) => isOurs(a, ownerId));
    for (const app of ours) {
      try {
        await api.call("access.applications.delete", (sdk) => deleteAccessAppCall(sdk, api.accountId, app.id));
      } catch (error) {
        if (!(error instanceof CloudflareError && error.status === 404)) throw error;
      }
    }
    cache.remember(domain, atDomain.filter((a) => !isOurs(a, ownerId)));
    return ours.length > 0;
  });
}

/** Domains of the Access applications this installation made for one binding (`namespace/name`). */
/**
 * Deletes this installation's applications whose binding `exists` denies (a binding
 * removed without its cleanup: its finalizer stripped by hand, a crash in a window no
 * finalizer covers). Returns the domains it cleared. Only names with our owner marker
 * are looked at; the binding part is a fingerprint or, in older names, a key.
 */
export async function sweepAccessApps(api: CloudflareApi, cache: AccessApps, ownerId: string, exists: (binding: string) => boolean): Promise<string[]> {
  const marker = ownerMarker(ownerId);
  cache.forget(); // from Cloudflare, not from what the bindings' reconciles remember
  return forgettingOnFailure(cache, async () => {
    const orphans: AccessApp[] = [];
    for (const apps of (await cache.apps(api)).values()) {
      for (const app of apps) {
        if (!app.name.startsWith(marker)) continue;
        const binding = app.name.slice(marker.length, app.name.lastIndexOf("/"));
        if (binding && !exists(binding)) orphans.push(app);
      }
    }
    for (const app of orphans) {
      try {
        await api.call("access.applications.delete", (sdk) => deleteAccessAppCall(sdk, api.accountId, app.id));
      } catch (error) {
        if (!(error instanceof CloudflareError && error.status === 404)) throw error;
      }
      const left = ((await cache.apps(api)).get(app.domain) ?? []).filter((a) => a.id !== app.id);
      cache.remember(app.domain, [...left]);
    }
    return orphans.map((a) => a.domain);
  });
}

export async function ownedAccessDomains(api: CloudflareApi, cache: AccessApps, ownerId: string, binding: string): Promise<string[]> {
  const prefixes = bindingPrefixes(ownerId, binding);
  return forgettingOnFailure(cache, async () => {
    const domains = new Set<string>();
    for (const [domain, apps] of await cache.apps(api)) if (apps.some((a) => prefixes.some((p) => a.name.startsWith(p)))) domains.add(domain);
    return [...domains];
  });
}

/** Runs `work`; on any failure but a rate limit (nothing was sent), drops the cache. */
async function forgettingOnFailure<T>(cache: AccessApps, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof ProviderRateLimited)) cache.forget();
    throw error;
  }
}

function setApps(apps: Map<string, AccessApp[]>, domain: string, list: AccessApp[]): void {
  if (list.length > 0) apps.set(domain, list);
  else apps.delete(domain);
}
