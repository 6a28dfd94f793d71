// Endpoints (EndpointsList with the `ids` and `urls` filters, EndpointsGet): the agent
// endpoints the agent side records in `account.endpoints`, typed `ephemeral` as the
// document calls endpoints "served directly by an agent-initiated tunnel". Cloud
// endpoints (EndpointsCreate/Update/Delete) are not implemented.
import type { Endpoint } from "../../account.ts";
import { ApiErrors } from "../errors.ts";
import { paginate } from "../pagination.ts";
import { type Handler, type HandlerContext, type Json, ref } from "./context.ts";
import { domainCovers, endpointHost } from "./reserved-domains.ts";

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443, tls: 443 };

/** `host:port` as ngrok's `hostport` has it (the port always present). */
function hostportOf(e: Endpoint): string {
  if (/:\d+$/.test(e.hostport)) return e.hostport;
  return `${e.hostport}:${DEFAULT_PORTS[e.proto] ?? 443}`;
}

/** Whether two `host:port` are the same address; loopback may be spelled `localhost` or `127.0.0.1`. */
function sameTcpAddr(a: string, b: string): boolean {
  const loopback = (addr: string): string => addr.replace(/^(localhost|127\.0\.0\.1):/, "loopback:");
  return loopback(a.toLowerCase()) === loopback(b.toLowerCase());
}

/** An endpoint as ngrok's Endpoint schema has it. */
export function renderEndpoint(e: Endpoint, ctx: Pick<HandlerContext, "account" | "baseUrl">): Json {
  const { account, baseUrl } = ctx;
  const session = account.sessions.get(e.sessionId);
  const host = endpointHost(e.url, e.hostport);
  const domain = e.proto === "tcp" ? undefined : [...account.reservedDomains.values()].find((d) => domainCovers(d.domain, host));
  const tcpAddr = e.proto === "tcp" ? [...account.reservedAddrs.values()].find((a) => sameTcpAddr(a.addr, hostportOf(e))) : undefined;
  return {
    id: e.id,
    region: session?.region ?? account.region,
    created_at: e.createdAt,
    updated_at: e.createdAt,
    public_url: e.url,
    proto: e.proto,
    hostport: hostportOf(e),
    type: "ephemeral",
    ...(e.metadata ? { metadata: e.metadata } : {}),
    ...(domain ? { domain: ref(baseUrl, "reserved_domains", domain.id) } : {}),
    ...(tcpAddr ? { tcp_addr: ref(baseUrl, "reserved_addrs", tcpAddr.id) } : {}),
    tunnel: ref(baseUrl, "tunnels", e.tunnelId),
    ...(e.forwardsTo ? { upstream_url: e.forwardsTo } : {}),
    url: e.url,
    bindings: [e.binding],
    tunnel_session: ref(baseUrl, "tunnel_sessions", e.sessionId),
    uri: `${baseUrl}/endpoints/${e.id}`,
    pooling_enabled: e.pooling,
  };
}

const list: Handler = (ctx) => {
  const ids = ctx.query.getAll("ids");
  const urls = ctx.query.getAll("urls");
  const matching = [...ctx.account.endpoints.values()].filter(
    (e) => (ids.length === 0 || ids.includes(e.id)) && (urls.length === 0 || urls.includes(e.url)),
  );
  // Every endpoint enters the creation order, filtered or not, so before_id works across filters.
  ctx.state.order.endpoints.see(ctx.account.endpoints.keys());
  const page = paginate(matching, ctx.state.order.endpoints, ctx);
  return { endpoints: page.items.map((e) => renderEndpoint(e, ctx)), uri: page.uri, next_page_uri: page.next_page_uri };
};

const get: Handler = (ctx) => {
  const e = ctx.account.endpoints.get(ctx.params.id!);
  if (!e) throw ApiErrors.notFound();
  return renderEndpoint(e, ctx);
};

export const endpointHandlers: Record<string, Handler> = {
  EndpointsList: list,
  EndpointsGet: get,
};
