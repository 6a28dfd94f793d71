// What an operation handler gets, and the bits of API-side state the account model
// (src/account.ts) does not hold.
import type { Account } from "../../account.ts";
import type { CreationOrder } from "../pagination.ts";

export type Json = Record<string, unknown>;

/** ngrok's `Ref`: a resource id and the URL of its API resource. */
export interface Ref {
  id: string;
  uri: string;
}

/** A reserved domain's automatic certificate settings (ngrok's ReservedDomainCertPolicy). */
export interface CertPolicy {
  authority: string;
  private_key_type: string;
}

/** State the REST side keeps beside the shared account. */
export interface ApiState {
  /** Domains reserved by "another account": reserving one is ERR_NGROK_414. Lower case. */
  readonly takenDomains: Set<string>;
  /** Creation order per list, for `before_id` (see pagination.ts). */
  readonly order: {
    readonly reservedDomains: CreationOrder;
    readonly reservedAddrs: CreationOrder;
    readonly endpoints: CreationOrder;
    readonly tunnelSessions: CreationOrder;
  };
  /**
   * Certificate management policy per reserved domain id; null = managed certificates
   * off. A domain the API did not create (seeded into the account) has none here and is
   * served with the default (see reserved-domains.ts).
   */
  readonly certPolicies: Map<string, CertPolicy | null>;
  /** Allocates a TCP address (`host:port`) for a new reserved address. */
  allocateTcpAddr(): Promise<string>;
}

export interface HandlerContext {
  account: Account;
  state: ApiState;
  /** Path parameters (`id`). */
  params: Readonly<Record<string, string>>;
  query: URLSearchParams;
  /** The validated JSON body (`{}` where none was sent). */
  body: Json;
  /** The fake's base URL, for `uri` fields: http://127.0.0.1:PORT */
  baseUrl: string;
  /** The request path, e.g. /reserved_domains */
  path: string;
}

/** Answers one operation: the response body, or undefined for the document's 204s. */
export type Handler = (ctx: HandlerContext) => unknown;

/** ngrok's RFC 3339 timestamps are UTC to the second: 2025-09-04T10:11:14Z. */
export function rfc3339(date: Date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

export const ref = (baseUrl: string, collection: string, id: string): Ref => ({ id, uri: `${baseUrl}/${collection}/${id}` });

/** Metadata and description limits (ngrok: "Optional, max 4096 bytes"). */
export const MAX_METADATA_BYTES = 4096;
