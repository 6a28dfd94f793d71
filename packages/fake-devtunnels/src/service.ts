// The one in-memory Dev Tunnels service both sides of the fake share: the management API
// (src/management/) stores tunnels, ports and host endpoints here and issues access tokens;
// the relay (src/relay/) checks host tokens against it, keeps the one active host per tunnel,
// and serves the ports' web-forwarding URLs. Shapes are the SDK's own contract types.
import { randomBytes } from "node:crypto";
import type { Tunnel, TunnelEndpoint, TunnelPort } from "@microsoft/dev-tunnels-contracts";

export interface ServiceLimits {
  /** Tunnels one identity may have (the service: about 10). Over it: 403 on create. */
  maxTunnelsPerUser: number;
  /** Ports per tunnel (the service: 10). Over it: 403/400 on port create. */
  maxPortsPerTunnel: number;
  /** Management requests per client IP per window before 429. */
  requestsPerWindow: number;
  windowMs: number;
}

export const DEFAULT_LIMITS: ServiceLimits = { maxTunnelsPerUser: 10, maxPortsPerTunnel: 10, requestsPerWindow: 600, windowMs: 60_000 };

export interface StoredTunnel {
  /** The identity (token subject) that owns it: limits and listing are per identity. */
  owner: string;
  /** As the API returns it, without ports, endpoints and tokens (those are kept below). */
  tunnel: Tunnel;
  ports: Map<number, TunnelPort>;
  /** Host endpoints by endpoint id (`<uuid>-relay`). */
  endpoints: Map<string, TunnelEndpoint>;
  /** Access tokens issued for this tunnel, by token: the scopes each grants. */
  tokens: Map<string, { scopes: string[]; expires: number }>;
  created: number;
  /** When the service deletes it unless a host keeps it alive (ms since epoch). */
  expires: number;
}

/** Hooks the relay installs so management calls and tests act on live hosts. */
export interface RelayControl {
  /** Drops the host connection of a tunnel (as a relay restart would). */
  dropHost(tunnelId: string): boolean;
  /** Whether a host is connected for the tunnel. */
  hostConnected(tunnelId: string): boolean;
}

export interface ServiceOptions {
  limits?: Partial<ServiceLimits>;
  /** The cluster this fake is ("localhost" keeps the SDK's cluster rewriting a no-op). */
  clusterId?: string;
  /** Default tunnel lifetime without a host (the service: 30 days). */
  defaultExpirationMs?: number;
  now?: () => number;
}

export class DevTunnelsService {
  readonly limits: ServiceLimits;
  readonly clusterId: string;
  readonly defaultExpirationMs: number;
  readonly now: () => number;
  /** Valid management tokens (Entra ID access tokens in real life), by token: the identity they stand for. */
  readonly userTokens = new Map<string, string>();
  /** When a management token stops working (absent: never), as Entra tokens do after about an hour. */
  readonly userTokenExpiry = new Map<string, number>();
  readonly tunnels = new Map<string, StoredTunnel>();
  relay?: RelayControl;

  constructor(options: ServiceOptions = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.clusterId = options.clusterId ?? "localhost";
    this.defaultExpirationMs = options.defaultExpirationMs ?? 30 * 24 * 3600_000;
    this.now = options.now ?? Date.now;
  }

  /** A management token for an identity (what an Entra ID client-credentials login would give). */
  addUserToken(identity = `sp-${randomBytes(4).toString("hex")}`, lifetimeMs?: number): string {
    const token = `fake-aad.${randomBytes(24).toString("base64url")}`;
    this.userTokens.set(token, identity);
    if (lifetimeMs !== undefined) this.userTokenExpiry.set(token, this.now() + lifetimeMs);
    return token;
  }

  /** The identity a management token stands for, while it is valid. */
  identityOf(token: string): string | undefined {
    const expiry = this.userTokenExpiry.get(token);
    if (expiry !== undefined && expiry <= this.now()) return undefined;
    return this.userTokens.get(token);
  }

  /** Issues a tunnel access token for `scopes` (the service: valid 24 h). */
  issueToken(stored: StoredTunnel, scopes: string[]): string {
    const token = `fake-tunnel.${scopes.join("+")}.${randomBytes(18).toString("base64url")}`;
    stored.tokens.set(token, { scopes, expires: this.now() + 24 * 3600_000 });
    return token;
  }

  /** Whether `token` grants `scope` on the tunnel. */
  tokenGrants(stored: StoredTunnel, token: string, scope: string): boolean {
    const t = stored.tokens.get(token);
    return Boolean(t && t.expires > this.now() && t.scopes.includes(scope));
  }

  tunnelsOf(identity: string): StoredTunnel[] {
    return [...this.tunnels.values()].filter((t) => t.owner === identity);
  }

  /** Deletes tunnels past their expiration (the service does this on its own schedule; tests call it). */
  expire(): string[] {
    const gone: string[] = [];
    for (const [id, t] of this.tunnels) {
      if (t.expires <= this.now()) {
        this.relay?.dropHost(id);
        this.tunnels.delete(id);
        gone.push(id);
      }
    }
    return gone;
  }
}
