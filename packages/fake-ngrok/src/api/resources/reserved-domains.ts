// Reserved domains (ReservedDomainsCreate/List/Get/Update/Delete), kept in
// `account.reservedDomains` where the agent side checks binds against them.
//
// - A name under an ngrok-owned domain (*.ngrok.app, *.ngrok-free.app, *.ngrok.dev,
//   *.ngrok-free.dev, *.ngrok.io) has `cname_target` null and no managed certificate; any
//   other name gets a `….ngrok-cname.com` CNAME target and, unless the request says
//   otherwise, a Let's Encrypt ECDSA certificate management policy whose provisioning job
//   stays "in progress" (no certificate is ever issued here).
// - Reserving a name the account already holds: ERR_NGROK_413; a name in
//   `takenDomains` ("another account"): ERR_NGROK_414; a name on ngrok.com: ERR_NGROK_404.
// - Deleting a name an online endpoint uses: ERR_NGROK_446.
// - `certificate_id` (user-uploaded certificates) is not implemented: 501.
import { randomBytes } from "node:crypto";
import type { ReservedDomain } from "../../account.ts";
import { ApiErrors } from "../errors.ts";
import { paginate } from "../pagination.ts";
import { checkMetadata } from "./metadata.ts";
import { type ApiState, type CertPolicy, type Handler, type HandlerContext, type Json, rfc3339 } from "./context.ts";

const NGROK_OWNED_SUFFIXES = ["ngrok.app", "ngrok-free.app", "ngrok.dev", "ngrok-free.dev", "ngrok.io"];

export const DEFAULT_CERT_POLICY: CertPolicy = { authority: "letsencrypt", private_key_type: "ecdsa" };

/** Whether `domain` is a name under one of ngrok's own domains (no CNAME, no managed certificate). */
export function isNgrokOwned(domain: string): boolean {
  const name = domain.toLowerCase().replace(/^\*\./, "");
  return NGROK_OWNED_SUFFIXES.some((suffix) => name.endsWith(`.${suffix}`));
}

/** Whether the reserved name `domain` (possibly `*.…`) covers `host`. */
export function domainCovers(domain: string, host: string): boolean {
  const h = host.toLowerCase();
  return domain.startsWith("*.") ? h.endsWith(domain.slice(1)) : h === domain;
}

const HOSTNAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/;

function checkCertPolicy(policy: unknown): CertPolicy | null | undefined {
  if (policy === undefined || policy === null) return policy;
  const p = policy as Partial<CertPolicy>;
  const authority = p.authority ?? "letsencrypt";
  const keyType = p.private_key_type ?? "ecdsa";
  if (authority !== "letsencrypt") throw ApiErrors.invalidValue("certificate_management_policy.authority");
  if (keyType !== "ecdsa" && keyType !== "rsa") throw ApiErrors.invalidValue("certificate_management_policy.private_key_type");
  return { authority, private_key_type: keyType };
}

function policyOf(state: ApiState, d: ReservedDomain): CertPolicy | null {
  const stored = state.certPolicies.get(d.id);
  if (stored !== undefined) return stored;
  return d.cnameTarget === null ? null : DEFAULT_CERT_POLICY;
}

/** A reserved domain as ngrok's ReservedDomain schema has it. */
export function renderReservedDomain(d: ReservedDomain, ctx: Pick<HandlerContext, "state" | "baseUrl">): Json {
  const policy = policyOf(ctx.state, d);
  return {
    id: d.id,
    uri: `${ctx.baseUrl}/reserved_domains/${d.id}`,
    created_at: d.createdAt,
    ...(d.description ? { description: d.description } : {}),
    ...(d.metadata ? { metadata: d.metadata } : {}),
    domain: d.domain,
    region: d.region,
    cname_target: d.cnameTarget,
    certificate: null,
    certificate_management_policy: policy,
    certificate_management_status: policy ? { provisioning_job: { msg: "Managed certificate provisioning in progress.", started_at: d.createdAt } } : null,
    acme_challenge_cname_target: d.domain.startsWith("*.") && d.cnameTarget ? d.cnameTarget.replace(/\.ngrok-cname\.com$/, ".acme.ngrok-cname.com") : null,
  };
}

function find(ctx: HandlerContext): ReservedDomain {
  const d = ctx.account.reservedDomains.get(ctx.params.id!);
  if (!d) throw ApiErrors.notFound();
  return d;
}

const randomLabel = (): string => randomBytes(12).toString("base64url").toLowerCase().replace(/[^a-z0-9]/g, "x").slice(0, 16);

const create: Handler = (ctx) => {
  const { body, account, state } = ctx;
  if (typeof body.domain !== "string" || body.domain === "") throw ApiErrors.invalidValue("domain");
  const domain = body.domain.toLowerCase();
  if (!HOSTNAME.test(domain)) throw ApiErrors.invalidValue("domain");
  if (domain === "ngrok.com" || domain.endsWith(".ngrok.com")) throw ApiErrors.ngrokComName(domain);
  if (body.certificate_id !== undefined) throw ApiErrors.notImplemented("certificate_id on reserved domains (user-uploaded TLS certificates)");
  checkMetadata(body);
  const policy = checkCertPolicy(body.certificate_management_policy);
  if (account.reservedDomain(domain)) throw ApiErrors.domainReservedByYou(domain);
  if (state.takenDomains.has(domain)) throw ApiErrors.domainReservedByOther(domain);
  const owned = isNgrokOwned(domain);
  const reserved: ReservedDomain = {
    id: account.newId("rd"),
    domain,
    region: typeof body.region === "string" ? body.region : "",
    description: typeof body.description === "string" ? body.description : "",
    metadata: typeof body.metadata === "string" ? body.metadata : "",
    createdAt: rfc3339(),
    cnameTarget: owned ? null : `${randomLabel()}.${randomLabel()}.ngrok-cname.com`,
  };
  account.reservedDomains.set(reserved.id, reserved);
  state.certPolicies.set(reserved.id, owned ? null : policy === undefined ? DEFAULT_CERT_POLICY : policy);
  return renderReservedDomain(reserved, ctx);
};

const list: Handler = (ctx) => {
  const page = paginate([...ctx.account.reservedDomains.values()], ctx.state.order.reservedDomains, ctx);
  return { reserved_domains: page.items.map((d) => renderReservedDomain(d, ctx)), uri: page.uri, next_page_uri: page.next_page_uri };
};

const get: Handler = (ctx) => renderReservedDomain(find(ctx), ctx);

const update: Handler = (ctx) => {
  const current = find(ctx);
  const { body } = ctx;
  if (body.id !== undefined && body.id !== current.id) throw ApiErrors.invalidValue("id");
  if (body.certificate_id !== undefined) throw ApiErrors.notImplemented("certificate_id on reserved domains (user-uploaded TLS certificates)");
  checkMetadata(body);
  const policy = checkCertPolicy(body.certificate_management_policy);
  const updated: ReservedDomain = {
    ...current,
    ...(typeof body.description === "string" ? { description: body.description } : {}),
    ...(typeof body.metadata === "string" ? { metadata: body.metadata } : {}),
  };
  ctx.account.reservedDomains.set(current.id, updated);
  if (policy !== undefined && current.cnameTarget !== null) ctx.state.certPolicies.set(current.id, policy);
  return renderReservedDomain(updated, ctx);
};

const remove: Handler = (ctx) => {
  const d = find(ctx);
  for (const endpoint of ctx.account.endpoints.values()) {
    if (domainCovers(d.domain, endpointHost(endpoint.url, endpoint.hostport))) throw ApiErrors.domainInUse(d.domain);
  }
  ctx.account.reservedDomains.delete(d.id);
  ctx.state.certPolicies.delete(d.id);
  return undefined;
};

/** The host an endpoint serves, from its URL (`https://host`, `tcp://host:port`). */
export function endpointHost(url: string, hostport: string): string {
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return hostport.replace(/:\d+$/, "").toLowerCase();
  }
}

export const reservedDomainHandlers: Record<string, Handler> = {
  ReservedDomainsCreate: create,
  ReservedDomainsList: list,
  ReservedDomainsGet: get,
  ReservedDomainsUpdate: update,
  ReservedDomainsDelete: remove,
};
