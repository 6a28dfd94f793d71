// Who may reach a tunnel port through web forwarding: an anonymous client when the tunnel's
// or the port's access control grants Anonymous `connect` (and no Anonymous deny rule takes it
// back), or a client presenting a `connect` access token in `X-Tunnel-Authorization`.
import type { TunnelAccessControlEntry, TunnelPort } from "@microsoft/dev-tunnels-contracts";
import type { DevTunnelsService, StoredTunnel } from "../service.ts";

export type WebAccess =
  | { allowed: true; by: "anonymous" | "token" }
  | { allowed: false; status: 401 | 403; message: string };

const CONNECT = "connect";
const ANONYMOUS = "Anonymous";

/** ACE types the fake cannot evaluate for a web client (it never sees users, IPs or keys). */
const UNEVALUATED_DENY_TYPES = new Set(["IPAddressRanges", "Organizations", "Groups", "Users", "Repositories", "PublicKeys"]);

function entriesOf(stored: StoredTunnel, port: TunnelPort): TunnelAccessControlEntry[] {
  return [...(stored.tunnel.accessControl?.entries ?? []), ...(port.accessControl?.entries ?? [])];
}

/** Whether the ACLs let an anonymous client connect. */
export function anonymousConnectAllowed(stored: StoredTunnel, port: TunnelPort): boolean {
  const entries = entriesOf(stored, port).filter((e) => e.type === ANONYMOUS && !e.isInverse && e.scopes.includes(CONNECT));
  return entries.some((e) => !e.isDeny) && !entries.some((e) => e.isDeny);
}

/** Deny rules the fake ignores (reported as violations by the caller). */
export function unevaluatedDenyRules(stored: StoredTunnel, port: TunnelPort): string[] {
  return entriesOf(stored, port)
    .filter((e) => e.isDeny && UNEVALUATED_DENY_TYPES.has(e.type) && e.scopes.includes(CONNECT))
    .map((e) => `${e.type}${e.isInverse ? " (inverse)" : ""} deny`);
}

/** `X-Tunnel-Authorization: tunnel <token>` → the token. */
export function tunnelTokenOf(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const match = value ? /^tunnel\s+(\S+)\s*$/i.exec(value) : null;
  return match?.[1];
}

export function webAccess(service: DevTunnelsService, stored: StoredTunnel, port: TunnelPort, tunnelAuthorization: string | string[] | undefined): WebAccess {
  const token = tunnelTokenOf(tunnelAuthorization);
  if (token !== undefined) {
    if (service.tokenGrants(stored, token, CONNECT)) return { allowed: true, by: "token" };
    if (stored.tokens.has(token)) return { allowed: false, status: 403, message: "The tunnel access token does not grant connect access." };
    return { allowed: false, status: 401, message: "The tunnel access token is not valid." };
  }
  if (anonymousConnectAllowed(stored, port)) return { allowed: true, by: "anonymous" };
  return { allowed: false, status: 401, message: "Anonymous access to this tunnel port is not allowed. Sign in or send X-Tunnel-Authorization: tunnel <connect token>." };
}
