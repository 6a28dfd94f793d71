// Short names for the schema's operations: the official SDK's method paths
// (`cf.zeroTrust.tunnels.cloudflared.create` -> "tunnels.create",
// `cf.dns.records.batch` -> "dns.records.batch"), the same names the controller uses for
// its `ktube_provider_requests_total{operation}` metric. Tests hold, count and filter
// requests by these; the schema's operationIds stay in `RequestRecord.operation`.

const ACCESS = "/{accounts_or_zones}/{account_or_zone_id}/access";

/** `METHOD template` -> short name, for every operation in the spec subset. */
const NAMES: Record<string, string> = {
  "GET /user/tokens/verify": "user.tokens.verify",
  "GET /accounts/{account_id}/tokens/verify": "accounts.tokens.verify",

  "GET /zones": "zones.list",
  "POST /zones": "zones.create",

  "GET /accounts/{account_id}/cfd_tunnel": "tunnels.list",
  "POST /accounts/{account_id}/cfd_tunnel": "tunnels.create",
  "GET /accounts/{account_id}/cfd_tunnel/{tunnel_id}": "tunnels.get",
  "PATCH /accounts/{account_id}/cfd_tunnel/{tunnel_id}": "tunnels.edit",
  "DELETE /accounts/{account_id}/cfd_tunnel/{tunnel_id}": "tunnels.delete",
  "GET /accounts/{account_id}/cfd_tunnel/{tunnel_id}/configurations": "tunnels.configurations.get",
  "PUT /accounts/{account_id}/cfd_tunnel/{tunnel_id}/configurations": "tunnels.configurations.update",
  "GET /accounts/{account_id}/cfd_tunnel/{tunnel_id}/connections": "tunnels.connections.get",
  "DELETE /accounts/{account_id}/cfd_tunnel/{tunnel_id}/connections": "tunnels.connections.delete",
  "GET /accounts/{account_id}/cfd_tunnel/{tunnel_id}/token": "tunnels.token.get",

  "GET /zones/{zone_id}/dns_records": "dns.records.list",
  "POST /zones/{zone_id}/dns_records": "dns.records.create",
  "GET /zones/{zone_id}/dns_records/{dns_record_id}": "dns.records.get",
  "PATCH /zones/{zone_id}/dns_records/{dns_record_id}": "dns.records.edit",
  "PUT /zones/{zone_id}/dns_records/{dns_record_id}": "dns.records.update",
  "DELETE /zones/{zone_id}/dns_records/{dns_record_id}": "dns.records.delete",
  "POST /zones/{zone_id}/dns_records/batch": "dns.records.batch",

  [`GET ${ACCESS}/apps`]: "access.applications.list",
  [`POST ${ACCESS}/apps`]: "access.applications.create",
  [`GET ${ACCESS}/apps/{app_id}`]: "access.applications.get",
  [`PUT ${ACCESS}/apps/{app_id}`]: "access.applications.update",
  [`DELETE ${ACCESS}/apps/{app_id}`]: "access.applications.delete",
  [`GET ${ACCESS}/apps/{app_id}/policies`]: "access.applications.policies.list",
  [`POST ${ACCESS}/apps/{app_id}/policies`]: "access.applications.policies.create",
  [`GET ${ACCESS}/apps/{app_id}/policies/{policy_id}`]: "access.applications.policies.get",
  [`PUT ${ACCESS}/apps/{app_id}/policies/{policy_id}`]: "access.applications.policies.update",
  [`DELETE ${ACCESS}/apps/{app_id}/policies/{policy_id}`]: "access.applications.policies.delete",

  "GET /accounts/{account_id}/access/policies": "access.policies.list",
  "POST /accounts/{account_id}/access/policies": "access.policies.create",
  "GET /accounts/{account_id}/access/policies/{policy_id}": "access.policies.get",
  "PUT /accounts/{account_id}/access/policies/{policy_id}": "access.policies.update",
  "DELETE /accounts/{account_id}/access/policies/{policy_id}": "access.policies.delete",

  [`GET ${ACCESS}/identity_providers`]: "access.identity_providers.list",
  [`POST ${ACCESS}/identity_providers`]: "access.identity_providers.create",
  [`GET ${ACCESS}/identity_providers/{identity_provider_id}`]: "access.identity_providers.get",
  [`PUT ${ACCESS}/identity_providers/{identity_provider_id}`]: "access.identity_providers.update",
  [`DELETE ${ACCESS}/identity_providers/{identity_provider_id}`]: "access.identity_providers.delete",
};

/** Every short name, e.g. for a test that wants to hold each operation in turn. */
export const OPERATION_NAMES: readonly string[] = Object.values(NAMES);

/** The short name of a schema operation; `METHOD template` for one this table lacks. */
export function operationName(method: string, template: string): string {
  return NAMES[`${method} ${template}`] ?? `${method} ${template}`;
}

/**
 * A name as a test may write it: "dns_records.batch" (the REST path's spelling) is
 * taken for "dns.records.batch" (the SDK's).
 */
export function canonicalName(name: string): string {
  return name.replace(/^dns_records\./, "dns.records.");
}
