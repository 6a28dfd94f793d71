// The one in-memory ngrok account both sides of the fake share: the agent ingress
// (src/agent/) records sessions and endpoints here, the REST API (src/api/) serves them and
// the reservations that agents may bind.
import { randomBytes } from "node:crypto";

/** What the account's plan allows. Defaults: a paid plan with room for tests. */
export interface PlanLimits {
  /** Simultaneous agent sessions (free plan: 3). Over it: ERR_NGROK_108. */
  maxSessions: number;
  /** Online endpoints across the account (free plan: 3). Over it: ERR_NGROK_324. */
  maxEndpoints: number;
  /** Whether endpoint pooling is available (ERR_NGROK_18019 when not). */
  pooling: boolean;
  /** REST API requests per rolling 60 s window (ngrok: 120). Over it: 429, ERR_NGROK_226. */
  apiRequestsPerMinute: number;
  /** Whether TLS endpoints are on the plan (ERR_NGROK_312 when not). */
  tlsEndpoints: boolean;
}

export const DEFAULT_LIMITS: PlanLimits = {
  maxSessions: 20,
  maxEndpoints: 200,
  pooling: true,
  apiRequestsPerMinute: 120,
  tlsEndpoints: true,
};

export interface ReservedDomain {
  id: string; // rd_…
  domain: string;
  region: string;
  description: string;
  metadata: string;
  createdAt: string; // RFC 3339
  /** null for names under an ngrok-owned domain; a CNAME target for the user's own names. */
  cnameTarget: string | null;
}

export interface ReservedAddr {
  id: string; // ra_…
  /** `host:port`; the fake's TCP addresses are on loopback so tests can dial them. */
  addr: string;
  region: string;
  description: string;
  metadata: string;
  createdAt: string;
}

export interface AgentSession {
  id: string; // ts_…
  /** The authtoken the session authenticated with (never served by the REST API). */
  authtoken: string;
  metadata: string;
  agentVersion: string;
  os: string;
  /** The client's `host:port` as the ingress saw it. */
  ip: string;
  region: string;
  startedAt: string;
}

export type EndpointProto = "http" | "https" | "tcp" | "tls";

export interface Endpoint {
  id: string; // ep_…
  /** The agent-side tunnel id the Bind reply assigned (kept across reconnects). */
  tunnelId: string;
  sessionId: string;
  /** `https://host`, `http://host`, `tcp://host:port`, `tls://host`. */
  url: string;
  proto: EndpointProto;
  /** host (HTTP/TLS) or host:port (TCP). */
  hostport: string;
  pooling: boolean;
  binding: "public" | "internal" | "kubernetes";
  metadata: string;
  forwardsTo: string;
  createdAt: string;
}

/** Hooks the agent side installs so REST calls act on live sessions. */
export interface AgentControl {
  /** POST /tunnel_sessions/{id}/stop: the ingress sends the Stop command, then drops the session. */
  stopSession(id: string): boolean;
}

export interface AccountOptions {
  limits?: Partial<PlanLimits>;
  region?: string;
}

export class Account {
  readonly limits: PlanLimits;
  readonly region: string;
  /** Valid agent authtokens. A token that looks wrong is ERR_NGROK_105; a well-formed unknown one ERR_NGROK_107. */
  readonly authtokens = new Set<string>();
  /** Valid REST API keys (Bearer). */
  readonly apiKeys = new Set<string>();
  readonly reservedDomains = new Map<string, ReservedDomain>();
  readonly reservedAddrs = new Map<string, ReservedAddr>();
  readonly sessions = new Map<string, AgentSession>();
  readonly endpoints = new Map<string, Endpoint>();
  /** The account's dev domain: what an HTTP endpoint without a domain gets. */
  readonly devDomain: string;
  agentControl?: AgentControl;

  constructor(options: AccountOptions = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.region = options.region ?? "us";
    this.devDomain = `${randomBytes(4).toString("hex")}-dev.ngrok-free.app`;
  }

  /** An id in ngrok's shape: a prefix and 27 base62-ish characters. */
  newId(prefix: "rd" | "ra" | "ts" | "ep" | "tun" | "op" | "cr"): string {
    return `${prefix}_${randomBytes(20).toString("base64url").replace(/[-_]/g, "x").slice(0, 27)}`;
  }

  /** Reserved domain by name, if any. */
  reservedDomain(domain: string): ReservedDomain | undefined {
    const name = domain.toLowerCase();
    for (const d of this.reservedDomains.values()) if (d.domain === name) return d;
    return undefined;
  }

  reservedAddr(addr: string): ReservedAddr | undefined {
    for (const a of this.reservedAddrs.values()) if (a.addr === addr) return a;
    return undefined;
  }

  endpointsAt(url: string): Endpoint[] {
    return [...this.endpoints.values()].filter((e) => e.url === url);
  }
}
