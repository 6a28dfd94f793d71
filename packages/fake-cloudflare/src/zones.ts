// Zones and token verification.
import { CfError, cfId, type Zone } from "./model.ts";
import type { Handler, Store } from "./store.ts";

export interface ZoneOptions {
  /** Default "active" for a zone set up by a test; a zone made through the API starts "pending", as a live one does. */
  status?: Zone["status"];
  id?: string;
}

export function createZone(store: Store, name: string, accountId: string, options: ZoneOptions = {}): Zone {
  const accountName = store.accounts.get(accountId);
  if (accountName === undefined) throw new Error(`no account ${accountId}: add it with addAccount() first`);
  const zone: Zone = { id: options.id ?? cfId(), name, account: { id: accountId, name: accountName }, status: options.status ?? "active", type: "full" };
  store.zones.set(zone.id, zone);
  return zone;
}

export const zoneHandlers: Record<string, Handler> = {
  "user.tokens.verify": (r) => ({ result: { id: r.token.id, status: "active" } }),
  "accounts.tokens.verify": (r) => ({ result: { id: r.token.id, status: "active" } }),
  "zones.list": (r) => {
    const q = r.query;
    return r.page(
      [...r.store.zones.values()].filter(
        (z) =>
          r.token.accounts.has(z.account.id) &&
          (!q.get("name") || z.name === q.get("name")) &&
          (!q.get("account.id") || z.account.id === q.get("account.id")) &&
          (!q.get("status") || z.status === q.get("status")),
      ),
    );
  },
  "zones.create": (r) => {
    const account = String((r.body.account as { id?: unknown } | undefined)?.id ?? "");
    if (!r.token.accounts.has(account)) throw new CfError(403, 10000, "Authentication error");
    const name = String(r.body.name);
    // Cloudflare's answer to a zone added twice (code 1061, HTTP 400).
    if ([...r.store.zones.values()].some((z) => z.name === name && z.account.id === account)) throw new CfError(400, 1061, `${name} already exists`);
    return { result: createZone(r.store, name, account, { status: "pending" }) };
  },
};
