// What a provider can serve, declared by its plugin, and the check of a route's shape
// against it. Routing needs no other knowledge of a provider.
import type { Route, RouteProtocol, Tunnel } from "@ktube/api";

/** What a provider can serve; anything else is refused with a reason. */
export interface ProviderCapabilities {
  provider: string;
  protocols: readonly RouteProtocol[];
  /** Protocols whose routes must name a hostname. */
  hostnameRequired: readonly RouteProtocol[];
  /** Route fields the provider does not implement (e.g. `listenPort` on Cloudflare). */
  unsupportedFields: ReadonlyArray<keyof Route>;
  /** Raw IP:port targets, where the tunnel allows them. */
  addressTargets: boolean;
  /**
   * Protocols whose route takes its hostname whole: no other route of the tunnel, on
   * any path, may use that hostname (Cloudflare's TCP, where the hostname is the
   * endpoint and has no paths).
   */
  wholeHostnameProtocols: readonly RouteProtocol[];
  /**
   * Claims other than hostname+path (routing computes those itself) that two routes
   * of one tunnel cannot share, such as the edge's listen port: two routes with an
   * equal claim conflict and the older binding keeps it. Claims appear in condition
   * messages, so write them for people: `listen port 443/TCP`.
   */
  extraClaims?: (route: Route) => readonly string[];
  /**
   * Where a route's hostname+path claim applies, for providers where one hostname can be
   * served separately on several ports (the edge: `a.example.com/` over HTTP on 80 and by
   * SNI on 443 are two routes, not a conflict). Unset: the whole tunnel. Appears in
   * condition messages: `listen port 443/TCP`.
   */
  pathClaimScope?: (route: Route) => string;
}

export interface RouteProblem {
  reason: string;
  message: string;
}

/** The first thing about `route` that this provider or tunnel cannot serve, if any. */
export function checkRouteShape(route: Route, caps: ProviderCapabilities, tunnel: Tunnel): RouteProblem | undefined {
  if (!caps.protocols.includes(route.protocol)) {
    return { reason: "UnsupportedProtocol", message: `route ${route.name}: ${caps.provider} tunnels do not carry ${route.protocol} (supported: ${caps.protocols.join(", ")})` };
  }
  if (caps.hostnameRequired.includes(route.protocol) && !route.hostname) {
    return { reason: "HostnameRequired", message: `route ${route.name}: ${caps.provider} needs a hostname for ${route.protocol} routes` };
  }
  const unsupported = caps.unsupportedFields.filter((f) => route[f] !== undefined);
  if (unsupported.length > 0) {
    return { reason: "UnsupportedField", message: `route ${route.name}: ${caps.provider} does not support ${unsupported.join(", ")}` };
  }
  if (route.address && !(caps.addressTargets && (tunnel.spec.edge?.allowAddressTargets ?? false))) {
    return { reason: "AddressTargetNotAllowed", message: `route ${route.name}: raw address targets are not allowed by this tunnel` };
  }
  return undefined;
}
