// Everything the fake Cloudflare holds, and the shape of one routed request: the
// handler modules (tunnels, dns, zones, access-*) read and change the store through it.
import type {
  Body,
  DnsRecord,
  IdentityProvider,
  StoredAccessApp,
  StoredReusablePolicy,
  Tunnel,
  TunnelConfiguration,
  Zone,
} from "./model.ts";
import type { Page, ResultInfo } from "./pagination.ts";
import type { TokenWindow } from "./rate-limit.ts";

export interface TokenInfo {
  /** The id Cloudflare's token verification answers with. */
  id: string;
  accounts: Set<string>;
  fingerprint: string;
  window: TokenWindow;
}

export class Store {
  /** Account id -> name. */
  readonly accounts = new Map<string, string>();
  /** Token value -> what it may do. */
  readonly tokens = new Map<string, TokenInfo>();
  readonly tunnels = new Map<string, Tunnel>();
  /** Tunnel id -> its remote configuration. */
  readonly configurations = new Map<string, TunnelConfiguration>();
  readonly zones = new Map<string, Zone>();
  readonly records = new Map<string, DnsRecord>();
  readonly apps = new Map<string, StoredAccessApp>();
  readonly reusablePolicies = new Map<string, StoredReusablePolicy>();
  readonly identityProviders = new Map<string, IdentityProvider>();
  /** Told when a tunnel's configuration is replaced or its connections are cleaned up (the edge acts on both). */
  readonly listeners = new Set<(event: StoreEvent) => void>();

  emit(event: StoreEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}

export type StoreEvent = { type: "configuration" | "connections-cleanup"; tunnelId: string };

/** Behaviour a test may switch per fake (see FakeCloudflareOptions). */
export interface Settings {
  duplicateAccessDomains: "allow" | "reject";
}

/** One request as a handler sees it: already validated, authenticated and admitted. */
export interface Route {
  store: Store;
  settings: Settings;
  params: Readonly<Record<string, string>>;
  query: URLSearchParams;
  /** The JSON body, `{}` when there was none. */
  body: Body;
  token: TokenInfo;
  /** One page of `items`, sized by this operation's documented `per_page` rules. */
  page<T>(items: readonly T[]): Page<T>;
}

export interface Answer {
  result: unknown;
  result_info?: ResultInfo;
}

export type Handler = (route: Route) => Answer;
