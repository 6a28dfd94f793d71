// What the API answers for a stored tunnel or port: the contract objects, with the
// service-computed fields (status, created/expiration, inherited ACEs, portForwardingUris,
// access tokens) filled in per request.
import type { Tunnel, TunnelAccessControl, TunnelPort } from "@microsoft/dev-tunnels-contracts";
import type { DevTunnelsService, StoredTunnel } from "../service.ts";
import { WEB_PROTOCOLS } from "./contract-schema.ts";

/** How a stored object is shown on the wire (JSON: dates as ISO strings). */
export type Json = Record<string, unknown>;

export interface RenderOptions {
  includePorts: boolean;
  includeAccessControl: boolean;
  /** Tokens issued for this request, by scope combination. */
  accessTokens?: Record<string, string>;
}

/** The web-forwarding URIs of a port (none for protocols web forwarding does not serve). */
export function portForwardingUris(
  webForwardingBase: (tunnelId: string, port: number | string) => string,
  tunnelId: string,
  port: TunnelPort,
): string[] {
  return WEB_PROTOCOLS.includes(port.protocol ?? "auto") ? [webForwardingBase(tunnelId, port.portNumber)] : [];
}

/** The port's ACL as the service returns it: the tunnel's entries (marked inherited), then the port's own. */
function effectiveAccessControl(stored: StoredTunnel, own: TunnelAccessControl | undefined): TunnelAccessControl {
  const inherited = (stored.tunnel.accessControl?.entries ?? []).map((e) => ({ ...e, isInherited: true }));
  return { entries: [...inherited, ...(own?.entries ?? [])] };
}

export function renderPort(stored: StoredTunnel, port: TunnelPort, accessTokens?: Record<string, string>): Json {
  return {
    ...port,
    clusterId: stored.tunnel.clusterId,
    tunnelId: stored.tunnel.tunnelId,
    accessControl: effectiveAccessControl(stored, port.accessControl),
    status: { clientConnectionCount: { current: 0 } },
    ...(accessTokens && Object.keys(accessTokens).length > 0 ? { accessTokens } : {}),
  };
}

export function renderTunnel(service: DevTunnelsService, stored: StoredTunnel, options: RenderOptions): Json {
  const t: Tunnel = stored.tunnel;
  const hostConnected = service.relay?.hostConnected(t.tunnelId!) ?? false;
  const ports = [...stored.ports.values()].sort((a, b) => a.portNumber - b.portNumber);
  return {
    clusterId: t.clusterId,
    tunnelId: t.tunnelId,
    ...(t.name ? { name: t.name } : {}),
    ...(t.description !== undefined ? { description: t.description } : {}),
    labels: t.labels ?? [],
    ...(t.domain ? { domain: t.domain } : {}),
    ...(options.includeAccessControl ? { accessControl: { entries: t.accessControl?.entries ?? [] } } : {}),
    ...(t.options ? { options: t.options } : {}),
    status: {
      portCount: { current: stored.ports.size, limit: service.limits.maxPortsPerTunnel },
      hostConnectionCount: { current: hostConnected ? 1 : 0, limit: 1 },
    },
    endpoints: [...stored.endpoints.values()],
    ...(options.includePorts ? { ports: ports.map((p) => renderPort(stored, p)) } : {}),
    ...(options.accessTokens && Object.keys(options.accessTokens).length > 0 ? { accessTokens: options.accessTokens } : {}),
    created: new Date(stored.created).toISOString(),
    expiration: new Date(stored.expires).toISOString(),
    ...(t.customExpiration !== undefined ? { customExpiration: t.customExpiration } : {}),
  };
}
