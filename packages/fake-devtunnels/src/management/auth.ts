// Who is calling: the `Authorization` header as TunnelManagementHttpClient sends it
// (research §2 "Header precedence"): the user token callback's value verbatim
// (`Bearer <Entra token>`; the SDK also names the schemes `aad` and `github`), or
// `tunnel <access token>` from `options.accessToken` / `tunnel.accessTokens`.
import { TunnelAccessScopes } from "@microsoft/dev-tunnels-contracts";
import type { DevTunnelsService, StoredTunnel } from "../service.ts";
import type { Operation } from "./routes.ts";
import { Problems, type ManagementError } from "./problems.ts";

export type Caller =
  | { kind: "anonymous" }
  /** A management (user) token: the identity it stands for. */
  | { kind: "user"; identity: string }
  /** A tunnel access token: the tunnel it was issued for and the scopes it grants. */
  | { kind: "tunnel"; tunnelId: string; token: string; scopes: readonly string[] };

const USER_SCHEMES = ["bearer", "aad", "github"];

/** The caller of a request, or the 401 for credentials the service does not know. */
export function identify(service: DevTunnelsService, authorization: string | undefined): Caller | ManagementError {
  if (!authorization || authorization.trim() === "") return { kind: "anonymous" };
  const match = /^(\S+)\s+(\S+)\s*$/.exec(authorization);
  if (!match) return Problems.unauthorized("The Authorization header could not be parsed.");
  const scheme = match[1]!.toLowerCase();
  const token = match[2]!;
  if (USER_SCHEMES.includes(scheme)) {
    const identity = service.userTokens.get(token);
    return identity === undefined ? Problems.unauthorized("The access token is invalid or expired.") : { kind: "user", identity };
  }
  if (scheme === "tunnel") {
    for (const stored of service.tunnels.values()) {
      const grant = stored.tokens.get(token);
      if (grant && grant.expires > service.now()) return { kind: "tunnel", tunnelId: stored.tunnel.tunnelId!, token, scopes: grant.scopes };
    }
    return Problems.unauthorized("The tunnel access token is invalid or expired.");
  }
  return Problems.unauthorized(`Unsupported authorization scheme '${match[1]}'.`);
}

const { Manage, ManagePorts, Host, Connect } = TunnelAccessScopes;

/**
 * The scopes a tunnel access token needs for an operation: the SDK's own table
 * (`manageAccessTokenScope`, `managePortsAccessTokenScopes`, `readAccessTokenScopes`,
 * `hostAccessTokenScope`); undefined where a tunnel token is never enough (listing, limits).
 */
export function scopesFor(operation: Operation): readonly string[] | undefined {
  switch (operation) {
    case "createTunnel":
    case "updateTunnel":
    case "createOrUpdateTunnel":
    case "deleteTunnel":
      return [Manage];
    case "createTunnelPort":
    case "updateTunnelPort":
    case "createOrUpdateTunnelPort":
    case "deleteTunnelPort":
      return [Manage, ManagePorts, Host];
    case "getTunnel":
    case "listTunnelPorts":
    case "getTunnelPort":
    case "reportEvents":
      return [Manage, ManagePorts, Host, Connect];
    case "updateTunnelEndpoint":
    case "deleteTunnelEndpoints":
      return [Host];
    default:
      return undefined;
  }
}

/** Whether the caller may run `operation` on `stored` (owner, or a tunnel token with a matching scope). */
export function authorize(caller: Caller, operation: Operation, stored: StoredTunnel): ManagementError | undefined {
  if (caller.kind === "anonymous") return Problems.unauthorized("This operation requires authentication.");
  if (caller.kind === "user") {
    return caller.identity === stored.owner ? undefined : Problems.forbidden(`The caller does not have access to tunnel '${stored.tunnel.tunnelId}'.`);
  }
  const needed = scopesFor(operation);
  if (caller.tunnelId !== stored.tunnel.tunnelId || !needed?.some((s) => caller.scopes.includes(s))) {
    return Problems.forbidden(`The tunnel access token does not grant ${needed?.join(" or ") ?? "this operation"} on tunnel '${stored.tunnel.tunnelId}'.`);
  }
  return undefined;
}

/** Whether the caller may be issued a token for every scope in `combination` (space-separated). */
export function mayIssue(caller: Caller, stored: StoredTunnel, combination: string): boolean {
  if (caller.kind === "user") return caller.identity === stored.owner;
  if (caller.kind === "tunnel") return caller.tunnelId === stored.tunnel.tunnelId && combination.split(" ").every((s) => caller.scopes.includes(s));
  return false;
}
