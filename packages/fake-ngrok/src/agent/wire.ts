// The agent protocol's messages as the SDK sends them (ngrok-rust ngrok/src/internals/
// proto.rs; JSON with PascalCase keys), the typed-stream ids, and the rules saying which
// fields the fake implements.
import type { Rule } from "./shape-check.ts";

/** The first 4 bytes (uint32, big-endian) of every stream name its kind. */
export const StreamType = {
  Auth: 0,
  Bind: 1,
  Unbind: 2,
  Proxy: 3,
  Restart: 4,
  Stop: 5,
  Update: 6,
  BindLabeled: 7,
  StopTunnel: 9,
  Heartbeat: 0xffffffff,
} as const;

export const streamTypeName = (type: number): string =>
  Object.entries(StreamType).find(([, value]) => value === type)?.[0] ?? `Type${type}`;

/** Protocol versions this server speaks, in its order of preference (proto.rs VERSION). */
export const PROTOCOL_VERSIONS = ["3", "2"] as const;

export interface AuthExtra {
  OS?: string;
  Arch?: string;
  AuthToken?: string;
  Version?: string;
  Hostname?: string;
  UserAgent?: string;
  Metadata?: string;
  Cookie?: string;
  HeartbeatInterval?: number;
  HeartbeatTolerance?: number;
  UpdateUnsupportedError?: string | null;
  StopUnsupportedError?: string | null;
  RestartUnsupportedError?: string | null;
  ClientType?: string;
}

export interface AuthRequest {
  Version?: string[];
  /** Empty for a new session; the old session id when the agent reconnects. */
  ClientId?: string;
  Extra?: AuthExtra;
}

export interface AuthResponse {
  Version: string;
  ClientId: string;
  Extra: {
    Version: string;
    Region: string;
    Cookie: string;
    AccountName: string;
    SessionDuration: number;
    PlanName: string;
    Banner: string | null;
  };
}

export interface TlsTermination {
  /** PEM, base64-encoded (serde `base64bytes`); lower-case keys on the wire. */
  cert?: string;
  key?: string;
}

/** HTTP, TCP and TLS bind options share one loose type; `Proto` decides which keys apply. */
export interface BindOpts {
  Domain?: string;
  Addr?: string;
  ProxyProto?: number;
  TLSTermination?: TlsTermination | null;
  [key: string]: unknown;
}

export interface BindRequest {
  /** Empty on a first bind; the id the fake assigned when the agent rebinds after a reconnect. */
  Id?: string;
  Proto?: string;
  ForwardsTo?: string;
  ForwardsProto?: string;
  Opts?: BindOpts;
  Extra?: { Token?: string; Metadata?: string; Bindings?: string[]; PoolingEnabled?: boolean; IPPolicyRef?: string };
}

export interface BindResponse {
  Id: string;
  URL: string;
  Proto: string;
  /** Echoed: the SDK keeps the reply's options and rebinds with them after a reconnect. */
  Opts: BindOpts;
  Extra: { Token: string };
}

export interface UnbindRequest {
  Id?: string;
}

/** Written by the fake at the start of each Proxy stream, after an i64 LE length. */
export interface ProxyHeader {
  Id: string;
  ClientAddr: string;
  Proto: string;
  EdgeType: string;
  PassthroughTLS: boolean;
}

export interface StopTunnelRequest {
  Id: string;
  Message: string;
  ErrorCode: string | null;
}

/** The agent's answer to Stop, Restart and Update. */
export interface CommandResponse {
  Error?: string;
}

export const AUTH_RULE: Rule = {
  object: {
    Version: "string[]",
    ClientId: "string",
    Extra: {
      object: {
        OS: "string",
        Arch: "string",
        AuthToken: "string",
        Version: "string",
        Hostname: "string",
        UserAgent: "string",
        Metadata: "string",
        Cookie: "string",
        HeartbeatInterval: "integer",
        HeartbeatTolerance: "integer",
        UpdateUnsupportedError: "string?",
        StopUnsupportedError: "string?",
        RestartUnsupportedError: "string?",
        ProxyType: "string",
        MutualTLS: "unimplemented",
        ServiceRun: "boolean",
        ConfigVersion: "string",
        CustomInterface: "boolean",
        CustomCAs: "boolean",
        ClientType: "string",
      },
    },
  },
};

// Modules of an endpoint that ngrok's edge would apply and the fake does not.
const EDGE_MODULES = {
  IPRestriction: "unimplemented",
  TrafficPolicy: "unimplemented",
} as const satisfies Record<string, Rule>;

const HTTP_OPTS: Rule = {
  object: {
    Domain: "string",
    Hostname: "unimplemented",
    Auth: "unimplemented",
    Subdomain: "unimplemented",
    HostHeaderRewrite: "unimplemented",
    LocalUrlScheme: "string?",
    ProxyProto: "integer",
    Compression: "unimplemented",
    CircuitBreaker: "unimplemented",
    BasicAuth: "unimplemented",
    OAuth: "unimplemented",
    OIDC: "unimplemented",
    WebhookVerification: "unimplemented",
    MutualTLSCA: "unimplemented",
    RequestHeaders: "unimplemented",
    ResponseHeaders: "unimplemented",
    WebsocketTCPConverter: "unimplemented",
    UserAgentFilter: "unimplemented",
    ...EDGE_MODULES,
  },
};

const TCP_OPTS: Rule = { object: { Addr: "string", ProxyProto: "integer", ...EDGE_MODULES } };

const TLS_OPTS: Rule = {
  object: {
    Domain: "string",
    Hostname: "unimplemented",
    Subdomain: "unimplemented",
    ProxyProto: "integer",
    MutualTLSAtAgent: "unimplemented",
    MutualTLSAtEdge: "unimplemented",
    TLSTermination: { object: { cert: "string", key: "string", sealed_key: "unimplemented" }, nullable: true },
    ...EDGE_MODULES,
  },
};

export const BIND_OPTS_RULES: Readonly<Record<string, Rule>> = { http: HTTP_OPTS, https: HTTP_OPTS, tcp: TCP_OPTS, tls: TLS_OPTS };

/** A Bind without its `Opts` (checked separately, by `Proto`, with BIND_OPTS_RULES). */
export const BIND_RULE_WITHOUT_OPTS: Rule = {
  object: {
    Id: "string",
    Proto: "string",
    ForwardsTo: "string",
    ForwardsProto: "string",
    Extra: {
      object: {
        Token: "string",
        IPPolicyRef: "unimplemented",
        Metadata: "string",
        Bindings: "string[]",
        PoolingEnabled: "boolean",
      },
    },
  },
};

export const UNBIND_RULE: Rule = { object: { Id: "string" } };
