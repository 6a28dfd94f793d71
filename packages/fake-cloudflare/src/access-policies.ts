// Access reusable policies (`/accounts/{id}/access/policies`) and how an application's
// `policies` field refers to policies. Cloudflare steers new setups to reusable policies:
// one policy, linked from any number of applications by id (with the application's own
// precedence), changed in one place. App-scoped ("legacy") policies still work and live
// in access-apps.ts.
import { randomUUID } from "node:crypto";
import { accessConflict, accessNotFound, invalidAccessRequest } from "./access-errors.ts";
import { type AccessPolicy, type Body, now, type ReusablePolicy, type StoredAccessApp, type StoredReusablePolicy } from "./model.ts";
import type { Handler, Route, Store } from "./store.ts";

/** How many applications link a reusable policy (the API's `app_count`). */
const appCount = (store: Store, policyId: string): number => [...store.apps.values()].filter((a) => a.policyLinks.has(policyId)).length;

export function publicReusablePolicy(store: Store, { account: _account, ...policy }: StoredReusablePolicy): ReusablePolicy & { reusable: true; app_count: number } {
  return { ...policy, reusable: true, app_count: appCount(store, policy.id) };
}

/** The account behind an Access path's `{accounts_or_zones}/{account_or_zone_id}`. */
export function owningAccount(store: Store, params: Readonly<Record<string, string>>): string {
  if (params.account_id) return params.account_id;
  const id = params.account_or_zone_id!;
  return params.accounts_or_zones === "zones" ? (store.zones.get(id)?.account.id ?? id) : id;
}

function reusablePolicy({ store, params }: Route): StoredReusablePolicy {
  const found = store.reusablePolicies.get(params.policy_id!);
  if (!found || found.account !== params.account_id) throw accessNotFound();
  return found;
}

type PolicyFields = Pick<ReusablePolicy, "name" | "decision" | "include" | "exclude" | "require"> & Body;

function policyFields(b: Body): PolicyFields {
  return {
    ...b,
    name: String(b.name),
    decision: String(b.decision),
    include: (b.include as unknown[] | undefined) ?? [],
    exclude: (b.exclude as unknown[] | undefined) ?? [],
    require: (b.require as unknown[] | undefined) ?? [],
  };
}

export const reusablePolicyHandlers: Record<string, Handler> = {
  "access.policies.list": (r) =>
    r.page([...r.store.reusablePolicies.values()].filter((p) => p.account === r.params.account_id).map((p) => publicReusablePolicy(r.store, p))),
  "access.policies.create": (r) => {
    const id = randomUUID();
    const policy: StoredReusablePolicy = { ...policyFields(r.body), id, uid: id, created_at: now(), updated_at: now(), account: r.params.account_id! };
    r.store.reusablePolicies.set(id, policy);
    return { result: publicReusablePolicy(r.store, policy) };
  },
  "access.policies.get": (r) => ({ result: publicReusablePolicy(r.store, reusablePolicy(r)) }),
  "access.policies.update": (r) => {
    const existing = reusablePolicy(r);
    // PUT replaces the policy; every application that links it enforces the new rules at once.
    const updated: StoredReusablePolicy = { ...policyFields(r.body), id: existing.id, uid: existing.uid, created_at: existing.created_at, updated_at: now(), account: existing.account };
    r.store.reusablePolicies.set(existing.id, updated);
    return { result: publicReusablePolicy(r.store, updated) };
  },
  "access.policies.delete": (r) => {
    const existing = reusablePolicy(r);
    // Assumed from the dashboard, which will not delete a policy applications still use;
    // not observed through the API. A client must unlink (update the applications) first.
    const count = appCount(r.store, existing.id);
    if (count > 0) throw accessConflict(`policy is used by ${count} application(s)`);
    r.store.reusablePolicies.delete(existing.id);
    return { result: { id: existing.id } };
  },
};

/** An application's policies as the API shows them: linked reusable ones and its own, by precedence. */
export function effectivePolicies(store: Store, app: StoredAccessApp): Array<Record<string, unknown>> {
  const linked = [...app.policyLinks].flatMap(([id, precedence]) => {
    const policy = store.reusablePolicies.get(id);
    return policy ? [{ ...publicReusablePolicy(store, policy), precedence }] : [];
  });
  const own = [...app.policies.values()].map((p) => ({ ...p, reusable: false }));
  return [...linked, ...own].sort((a, b) => a.precedence - b.precedence);
}

/** What an application's `policies` field asks for: links to reusable policies and the app's own policies. */
export interface AppPolicyPlan {
  links: Map<string, number>;
  own: Map<string, AccessPolicy>;
}

const INLINE_POLICY_FIELDS = ["name", "decision", "include", "exclude", "require"];

/**
 * Reads an application body's `policies` (schema: each item a `{id, precedence}` link,
 * a bare policy id, or an app-scoped policy object, created if it does not exist yet;
 * order gives precedence where an item names none). The field replaces the
 * application's policy set: its own policies left out are deleted. Reusable and inline
 * policies are mutually exclusive, as the schema says.
 */
export function planAppPolicies(store: Store, account: string, app: StoredAccessApp | undefined, items: unknown[]): AppPolicyPlan {
  const plan: AppPolicyPlan = { links: new Map(), own: new Map() };
  let inline = false;
  items.forEach((item, index) => {
    const fields = typeof item === "string" ? { id: item } : ((item ?? {}) as Body);
    const precedence = typeof fields.precedence === "number" ? fields.precedence : index + 1;
    const id = typeof fields.id === "string" ? fields.id : undefined;
    const isInline = INLINE_POLICY_FIELDS.some((key) => key in fields);
    const reusable = id ? store.reusablePolicies.get(id) : undefined;
    const existingOwn = id ? app?.policies.get(id) : undefined;
    if (!isInline && reusable && reusable.account === account) {
      plan.links.set(reusable.id, precedence);
    } else if (!isInline && existingOwn) {
      plan.own.set(existingOwn.id, { ...existingOwn, precedence });
    } else if (!isInline) {
      throw invalidAccessRequest(`policy ${id ?? "(no id)"} does not exist`);
    } else {
      inline = true;
      if (existingOwn) {
        plan.own.set(existingOwn.id, { ...existingOwn, ...fields, id: existingOwn.id, uid: existingOwn.uid, precedence } as AccessPolicy);
      } else {
        if (fields.name === undefined || fields.decision === undefined || fields.include === undefined) {
          throw invalidAccessRequest("a new policy needs name, decision and include");
        }
        const newId = id ?? randomUUID();
        plan.own.set(newId, {
          ...fields, id: newId, uid: newId, name: String(fields.name), decision: String(fields.decision),
          include: fields.include as unknown[], precedence, created_at: now(),
        });
      }
    }
  });
  if (plan.links.size > 0 && (inline || plan.own.size > 0)) {
    throw invalidAccessRequest("reusable and inline policies are mutually exclusive");
  }
  return plan;
}
