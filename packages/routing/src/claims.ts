// What a route claims on a tunnel, and a table of claims already held. Three kinds of
// claim exist: a hostname (owned by the namespace of its first holder, or held whole
// by a route whose protocol takes the whole hostname), a hostname+path, and a
// provider's extra claims (listen ports). One table answers both questions routing
// asks: does a route clash with an older binding's, and with another of its binding's?
import type { Route, RouteProtocol } from "@ktube/api";
import type { ProviderCapabilities } from "./capabilities.ts";

/**
 * The path prefix a route claims. `/api`, `/api/` and `/api//` serve the same
 * requests, as do no path and `/`, so each set is one claim.
 */
export function normalizePath(path?: string): string {
  const trimmed = (path ?? "").replace(/\/+$/, "");
  return trimmed === "" ? "/" : trimmed;
}

/** Everything one route claims, computed once per evaluation. */
export interface RouteClaims {
  route: Route;
  hostname?: string;
  /** The normalised path; meaningful only with a hostname. */
  path: string;
  /** Where the hostname+path claim applies: "" for the whole tunnel, or the provider's scope (an edge listen port). */
  pathScope: string;
  /** The route's protocol takes its hostname whole (no other route may share it). */
  wholeHostname: boolean;
  extras: readonly string[];
}

export function claimsOf(route: Route, caps: ProviderCapabilities): RouteClaims {
  return {
    route,
    ...(route.hostname !== undefined ? { hostname: route.hostname } : {}),
    path: normalizePath(route.path),
    pathScope: caps.pathClaimScope?.(route) ?? "",
    wholeHostname: route.hostname !== undefined && caps.wholeHostnameProtocols.includes(route.protocol),
    extras: caps.extraClaims?.(route) ?? [],
  };
}

/**
 * The key of a hostname+path claim. A hostname has no "/" or space and a path starts with
 * "/", so `<scope> <hostname><path>` is unambiguous.
 */
const pathKeyOf = (claims: RouteClaims): string => `${claims.pathScope} ${claims.hostname ?? ""}${claims.path}`;

/** A route holding a claim. */
export interface ClaimHolder {
  namespace: string;
  /** `namespace/name` of the binding. */
  binding: string;
  route: string;
  protocol: RouteProtocol;
}

/** Why a route cannot have what it claims, and who holds it. */
export type Clash =
  /** The hostname belongs to another namespace: `holder` claimed it first. */
  | { kind: "hostnameOfOtherNamespace"; hostname: string; holder: ClaimHolder }
  /** `holder` takes the whole hostname. */
  | { kind: "hostnameHeldWhole"; hostname: string; holder: ClaimHolder }
  /** The route would take the whole hostname, which `holder` already uses. */
  | { kind: "hostnameInUse"; hostname: string; holder: ClaimHolder }
  | { kind: "path"; hostname: string; path: string; scope: string; holder: ClaimHolder }
  | { kind: "extra"; claim: string; holder: ClaimHolder };

interface HostnameClaim {
  /** The first route to claim the hostname; its namespace owns it. */
  first: ClaimHolder;
  /** The route that takes the hostname whole, if one does. */
  whole?: ClaimHolder;
}

/** Claims held on one tunnel (or by one binding); every lookup is O(1). */
export class ClaimTable {
  private readonly hostnames = new Map<string, HostnameClaim>();
  private readonly paths = new Map<string, ClaimHolder>();
  private readonly extras = new Map<string, ClaimHolder>();

  /** The first of `claims`, made from `namespace`, that a route in this table holds. */
  clash(claims: RouteClaims, namespace: string): Clash | undefined {
    const { hostname } = claims;
    const claimed = hostname === undefined ? undefined : this.hostnames.get(hostname);
    if (hostname !== undefined && claimed) {
      if (claimed.first.namespace !== namespace) return { kind: "hostnameOfOtherNamespace", hostname, holder: claimed.first };
      if (claimed.whole) return { kind: "hostnameHeldWhole", hostname, holder: claimed.whole };
      if (claims.wholeHostname) return { kind: "hostnameInUse", hostname, holder: claimed.first };
      const holder = this.paths.get(pathKeyOf(claims));
      if (holder) return { kind: "path", hostname, path: claims.path, scope: claims.pathScope, holder };
    }
    for (const claim of claims.extras) {
      const holder = this.extras.get(claim);
      if (holder) return { kind: "extra", claim, holder };
    }
    return undefined;
  }

  /** Records `claims` for `holder`; a claim already held stays with its holder. */
  add(claims: RouteClaims, holder: ClaimHolder): void {
    const { hostname } = claims;
    if (hostname !== undefined) {
      const claimed = this.hostnames.get(hostname);
      if (!claimed) this.hostnames.set(hostname, claims.wholeHostname ? { first: holder, whole: holder } : { first: holder });
      else if (claims.wholeHostname) claimed.whole ??= holder;
      // A whole-hostname route needs no path claim: the hostname claim covers every path.
      const pathKey = pathKeyOf(claims);
      if (!claims.wholeHostname && !this.paths.has(pathKey)) this.paths.set(pathKey, holder);
    }
    for (const claim of claims.extras) if (!this.extras.has(claim)) this.extras.set(claim, holder);
  }
}
