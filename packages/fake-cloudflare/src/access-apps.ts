// Access applications and their app-scoped ("legacy") policy endpoints. An application's
// `policies` field may link reusable policies instead (access-policies.ts); GET and list
// show both kinds, ordered by precedence.
import { randomUUID } from "node:crypto";
import { accessConflict, accessNotFound, domainNotInZone } from "./access-errors.ts";
import { effectivePolicies, owningAccount, planAppPolicies, type AppPolicyPlan } from "./access-policies.ts";
import { type AccessPolicy, type Body, now, type StoredAccessApp } from "./model.ts";
import type { Handler, Route, Store } from "./store.ts";

const scopeId = (r: Route): string => r.params.account_or_zone_id!;

function app(r: Route): StoredAccessApp {
  const found = r.store.apps.get(r.params.app_id!);
  if (!found || found.account !== scopeId(r)) throw accessNotFound();
  return found;
}

export function publicApp(store: Store, stored: StoredAccessApp): Record<string, unknown> {
  const { account: _account, policies: _policies, policyLinks: _links, ...rest } = stored;
  return { ...rest, policies: effectivePolicies(store, stored) };
}

/**
 * A self-hosted application must sit on an active zone of its account (or on the zone,
 * for a zone-scoped application): the live API refuses others with 12130.
 */
function checkDomainInZone(r: Route, b: Body): void {
  if (b.type !== "self_hosted" || typeof b.domain !== "string") return;
  const host = b.domain.split("/")[0]!.toLowerCase();
  const candidates =
    r.params.accounts_or_zones === "zones"
      ? [r.store.zones.get(scopeId(r))].filter((z) => z !== undefined)
      : [...r.store.zones.values()].filter((z) => z.account.id === scopeId(r));
  const inZone = candidates.some((z) => z.status === "active" && (host === z.name || host.endsWith(`.${z.name}`)));
  if (!inZone) throw domainNotInZone();
}

/**
 * Whether the live API lets two applications share a domain is not documented, and no
 * report of a refusal was found, so by default the fake allows it: a client that
 * creates an application twice (a create that committed but timed out, then a retry)
 * leaves two behind, and a test can see it. `duplicateAccessDomains: "reject"` makes
 * the fake refuse instead (409, an assumed answer).
 */
function checkDuplicateDomain(r: Route, b: Body, self?: string): void {
  if (r.settings.duplicateAccessDomains !== "reject" || typeof b.domain !== "string") return;
  const taken = [...r.store.apps.values()].some((a) => a.account === scopeId(r) && a.domain === b.domain && a.id !== self);
  if (taken) throw accessConflict("an application with this domain already exists");
}

function applyPlan(stored: StoredAccessApp, plan: AppPolicyPlan | undefined): void {
  if (!plan) return;
  stored.policyLinks = plan.links;
  stored.policies = plan.own;
}

function policiesPlan(r: Route, stored: StoredAccessApp | undefined): AppPolicyPlan | undefined {
  const items = r.body.policies;
  return Array.isArray(items) ? planAppPolicies(r.store, owningAccount(r.store, r.params), stored, items) : undefined;
}

function ownPolicy(r: Route): AccessPolicy {
  const policy = app(r).policies.get(r.params.policy_id!);
  if (!policy) throw accessNotFound();
  return policy;
}

export const accessAppHandlers: Record<string, Handler> = {
  "access.applications.list": (r) => r.page([...r.store.apps.values()].filter((a) => a.account === scopeId(r)).map((a) => publicApp(r.store, a))),
  "access.applications.create": (r) => {
    const { policies: _policies, ...fields } = r.body;
    checkDomainInZone(r, fields);
    checkDuplicateDomain(r, fields);
    const plan = policiesPlan(r, undefined);
    const id = randomUUID();
    const created: StoredAccessApp = {
      ...fields, id, uid: id, type: String(fields.type), name: String(fields.name ?? fields.domain), domain: String(fields.domain ?? ""),
      created_at: now(), updated_at: now(), account: scopeId(r), policies: new Map(), policyLinks: new Map(),
    };
    applyPlan(created, plan);
    r.store.apps.set(id, created);
    return { result: publicApp(r.store, created) };
  },
  "access.applications.get": (r) => ({ result: publicApp(r.store, app(r)) }),
  "access.applications.update": (r) => {
    const existing = app(r);
    const { policies: _policies, ...fields } = r.body;
    checkDomainInZone(r, { type: existing.type, ...fields });
    checkDuplicateDomain(r, fields, existing.id);
    const plan = policiesPlan(r, existing);
    Object.assign(existing, fields, { updated_at: now() });
    applyPlan(existing, plan);
    return { result: publicApp(r.store, existing) };
  },
  "access.applications.delete": (r) => {
    // Its own policies go with it; reusable ones stay, one application fewer linking them.
    r.store.apps.delete(app(r).id);
    return { result: { id: r.params.app_id } };
  },

  "access.applications.policies.list": (r) => r.page(effectivePolicies(r.store, app(r))),
  "access.applications.policies.create": (r) => {
    const target = app(r);
    const id = randomUUID();
    const precedence = typeof r.body.precedence === "number" ? r.body.precedence : Math.max(0, ...effectivePolicies(r.store, target).map((p) => Number(p.precedence))) + 1;
    const policy: AccessPolicy = {
      ...r.body, id, uid: id, name: String(r.body.name), decision: String(r.body.decision),
      include: (r.body.include as unknown[] | undefined) ?? [], precedence, created_at: now(),
    };
    target.policies.set(id, policy);
    return { result: policy };
  },
  "access.applications.policies.get": (r) => {
    const found = effectivePolicies(r.store, app(r)).find((p) => p.id === r.params.policy_id);
    if (!found) throw accessNotFound();
    return { result: found };
  },
  "access.applications.policies.update": (r) => {
    const policy = ownPolicy(r);
    Object.assign(policy, r.body, { updated_at: now() });
    return { result: policy };
  },
  "access.applications.policies.delete": (r) => {
    const target = app(r);
    // A linked reusable policy is taken off this application; the policy itself stays.
    if (!target.policies.delete(r.params.policy_id!) && !target.policyLinks.delete(r.params.policy_id!)) throw accessNotFound();
    return { result: { id: r.params.policy_id } };
  },
};
