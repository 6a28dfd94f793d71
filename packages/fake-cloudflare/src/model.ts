// The objects the fake keeps, shaped as Cloudflare's API returns them, and the error
// every handler throws to answer with Cloudflare's error envelope.
import { randomBytes } from "node:crypto";

export interface Tunnel {
  id: string;
  account_tag: string;
  name: string;
  created_at: string;
  deleted_at: string | null;
  config_src: "local" | "cloudflare";
  remote_config: boolean;
  status: "inactive" | "healthy" | "degraded" | "down";
  tun_type: "cfd_tunnel";
  connections: Connection[];
  conns_active_at: string | null;
  conns_inactive_at: string | null;
  metadata: Record<string, unknown>;
  secret: string;
}

export interface Connection {
  id: string;
  colo_name: string;
  is_pending_reconnect: boolean;
  opened_at: string;
  origin_ip: string;
  uuid: string;
  client_id: string;
  client_version: string;
}

export interface TunnelConfiguration {
  version: number;
  config: Record<string, unknown>;
  created_at: string;
}

export interface Zone {
  id: string;
  name: string;
  account: { id: string; name: string };
  /** Only an active zone takes Access applications (a pending one is refused with 12130). */
  status: "active" | "pending";
  type: "full";
}

export interface DnsRecord {
  id: string;
  zone_id: string;
  zone_name: string;
  name: string;
  type: string;
  content: string;
  proxied: boolean;
  proxiable: boolean;
  ttl: number;
  comment: string | null;
  tags: string[];
  created_on: string;
  modified_on: string;
  meta: Record<string, unknown>;
  settings: Record<string, unknown>;
}

/** What a test gives `addRecord`/`addDnsRecords`: the rest has the dashboard's defaults. */
export type DnsRecordSeed = Pick<DnsRecord, "name" | "type" | "content"> & Partial<DnsRecord>;

export interface AccessApp {
  id: string;
  uid: string;
  type: string;
  name: string;
  domain: string;
  [key: string]: unknown;
}

export interface AccessPolicy {
  id: string;
  uid: string;
  name: string;
  decision: string;
  include: unknown[];
  precedence: number;
  [key: string]: unknown;
}

/** An Access application as the fake stores it. */
export interface StoredAccessApp extends AccessApp {
  /** The account (or zone, for zone-scoped applications) the application belongs to. */
  account: string;
  /**
   * Policies that exist only for this application ("legacy" app-scoped policies, made
   * through `/apps/{id}/policies` or inline in the application's `policies`), by id.
   */
  policies: Map<string, AccessPolicy>;
  /** Reusable policies linked through the application's `policies` field: policy id -> precedence. */
  policyLinks: Map<string, number>;
}

/** A reusable policy (`/accounts/{id}/access/policies`): one policy, any number of applications. */
export interface ReusablePolicy {
  id: string;
  uid: string;
  name: string;
  decision: string;
  include: unknown[];
  exclude: unknown[];
  require: unknown[];
  created_at: string;
  updated_at: string;
  [key: string]: unknown;
}

export interface StoredReusablePolicy extends ReusablePolicy {
  account: string;
}

export interface IdentityProvider {
  id: string;
  name: string;
  type: string;
  config: Record<string, unknown>;
  account: string;
}

/** A failure answered in Cloudflare's envelope: HTTP status plus Cloudflare's error code. */
export class CfError extends Error {
  readonly status: number;
  readonly code: number;

  constructor(status: number, code: number, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const now = (): string => new Date().toISOString();

/** Cloudflare's 32-hex-digit identifiers (accounts, zones, records). */
export const cfId = (): string => randomBytes(16).toString("hex");

/** A JSON request body, as handlers read it. */
export type Body = Record<string, unknown>;

export const stringList = (value: unknown): string[] => (Array.isArray(value) ? value.map(String) : []);
