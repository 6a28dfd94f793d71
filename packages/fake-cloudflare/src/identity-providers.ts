// Access identity providers (login methods). The list pages by the schema's own default
// of 200 per page, so a client that assumes another default and stops at the first
// "short" page is caught here (the controller once stopped after page 1 that way).
import { randomUUID } from "node:crypto";
import { accessConflict, accessNotFound } from "./access-errors.ts";
import type { Body, IdentityProvider } from "./model.ts";
import type { Handler, Route, Store } from "./store.ts";

const publicIdp = ({ account: _account, ...idp }: IdentityProvider): Omit<IdentityProvider, "account"> => idp;

function idp(r: Route): IdentityProvider {
  const found = r.store.identityProviders.get(r.params.identity_provider_id!);
  if (!found || found.account !== r.params.account_or_zone_id) throw accessNotFound();
  return found;
}

/**
 * Adds a login method. One-time PIN is a singleton per account: the live API refuses a
 * second with 409 "access.api.error.conflict: a onetimepin connection already exists".
 */
export function createIdentityProvider(store: Store, account: string, b: Body): IdentityProvider {
  const type = String(b.type);
  if (type === "onetimepin" && [...store.identityProviders.values()].some((i) => i.account === account && i.type === "onetimepin")) {
    throw accessConflict("a onetimepin connection already exists");
  }
  const created: IdentityProvider = { id: randomUUID(), name: String(b.name ?? type), type, config: (b.config as Record<string, unknown> | undefined) ?? {}, account };
  store.identityProviders.set(created.id, created);
  return created;
}

export const identityProviderHandlers: Record<string, Handler> = {
  "access.identity_providers.list": (r) =>
    r.page([...r.store.identityProviders.values()].filter((i) => i.account === r.params.account_or_zone_id).map(publicIdp)),
  "access.identity_providers.create": (r) => ({ result: publicIdp(createIdentityProvider(r.store, r.params.account_or_zone_id!, r.body)) }),
  "access.identity_providers.get": (r) => ({ result: publicIdp(idp(r)) }),
  "access.identity_providers.update": (r) => {
    const existing = idp(r);
    if (typeof r.body.name === "string") existing.name = r.body.name;
    if (r.body.config !== undefined) existing.config = r.body.config as Record<string, unknown>;
    return { result: publicIdp(existing) };
  },
  "access.identity_providers.delete": (r) => {
    r.store.identityProviders.delete(idp(r).id);
    return { result: { id: r.params.identity_provider_id } };
  },
};
