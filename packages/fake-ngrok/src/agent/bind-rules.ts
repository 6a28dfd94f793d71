// What ngrok's cloud decides when an agent binds an endpoint: which URL it gets, and the
// account rules that refuse it (reservations, plan features, limits, URL conflicts). Pure
// apart from allocating a random TCP address.
import type { Account, Endpoint, EndpointProto } from "../account.ts";
import {
  addrNotReserved,
  alreadyOnline,
  domainNotReserved,
  endpointLimit,
  poolingUnavailable,
  tlsEndpointsUnavailable,
} from "./ngrok-errors.ts";
import { shapeProblems } from "./shape-check.ts";
import { sameTcpAddr } from "./tcp-addrs.ts";
import { BIND_OPTS_RULES, BIND_RULE_WITHOUT_OPTS, type BindRequest } from "./wire.ts";

export interface BindPlan {
  proto: EndpointProto;
  url: string;
  /** host (HTTP/TLS) or host:port (TCP): what public traffic is routed by. */
  hostport: string;
  pooling: boolean;
  /** PROXY protocol version the agent expects at the start of each connection (0: none). */
  proxyProto: 0 | 1 | 2;
  /** TLS endpoints bound with `termination(cert, key)`: the edge terminates TLS with these. */
  termination?: { certPem: string; keyPem: string };
}

export interface BindContext {
  account: Account;
  /** Named in ngrok's messages. */
  accountName: string;
  /** The tunnel being (re)bound: its own endpoint never conflicts with itself. */
  tunnelId: string;
  /** The address this tunnel had before a reconnect, for a random TCP endpoint to keep it. */
  previousTcpAddr?: string;
  allocateTcpAddr(): Promise<string>;
}

/** Everything in a Bind the fake does not implement; empty when it can honour the request. */
export function unimplementedInBind(request: BindRequest): string[] {
  const { Opts, ...rest } = request as BindRequest & Record<string, unknown>;
  const problems = shapeProblems(rest, BIND_RULE_WITHOUT_OPTS, "Bind");
  const optsRule = BIND_OPTS_RULES[request.Proto ?? ""];
  if (!optsRule) return [...problems, `Bind.Proto ${JSON.stringify(request.Proto)} (http, https, tcp, tls are implemented)`];
  problems.push(...shapeProblems(Opts ?? {}, optsRule, "Bind.Opts"));
  const proxyProto = Opts?.ProxyProto ?? 0;
  if (proxyProto !== 0 && proxyProto !== 1 && proxyProto !== 2) problems.push(`Bind.Opts.ProxyProto ${String(proxyProto)}`);
  const bindings = request.Extra?.Bindings ?? [];
  if (bindings.some((b) => b !== "public")) problems.push(`Bind.Extra.Bindings ${JSON.stringify(bindings)} (only public endpoints are implemented)`);
  return problems;
}

/** The reserved domain (exact, or a `*.` wildcard one label up) that admits `domain`. */
function isReserved(account: Account, domain: string): boolean {
  if (account.reservedDomain(domain)) return true;
  const dot = domain.indexOf(".");
  return dot > 0 && account.reservedDomain(`*${domain.slice(dot)}`) !== undefined;
}

const decodePem = (base64: string | undefined): string => Buffer.from(base64 ?? "", "base64").toString("utf8");

/** Decides a Bind (already checked with `unimplementedInBind`); throws NgrokRpcError as ngrok would refuse it. */
export async function planBind(request: BindRequest, ctx: BindContext): Promise<BindPlan> {
  const { account } = ctx;
  const proto = request.Proto as EndpointProto;
  const opts = request.Opts ?? {};
  const pooling = request.Extra?.PoolingEnabled ?? false;
  const proxyProto = (opts.ProxyProto ?? 0) as 0 | 1 | 2;
  let hostport: string;
  let termination: BindPlan["termination"];

  if (proto === "tcp") {
    if (opts.Addr) {
      // Either loopback spelling binds a reservation; the URL uses the reservation's.
      const reserved = [...account.reservedAddrs.values()].find((a) => sameTcpAddr(a.addr, opts.Addr!));
      if (!reserved) throw addrNotReserved(opts.Addr, ctx.accountName, account.region);
      hostport = reserved.addr;
    } else {
      hostport = ctx.previousTcpAddr ?? (await ctx.allocateTcpAddr());
    }
  } else {
    if (proto === "tls" && !account.limits.tlsEndpoints) throw tlsEndpointsUnavailable(ctx.accountName);
    const domain = (opts.Domain ?? "").toLowerCase();
    if (proto === "tls") {
      if (!domain || !isReserved(account, domain)) throw domainNotReserved(domain, ctx.accountName);
      const tt = opts.TLSTermination;
      if (tt && (tt.cert || tt.key)) termination = { certPem: decodePem(tt.cert), keyPem: decodePem(tt.key) };
    } else if (domain && domain !== account.devDomain && !isReserved(account, domain)) {
      throw domainNotReserved(domain, ctx.accountName);
    }
    hostport = domain || account.devDomain;
  }
  const url = `${proto}://${hostport}`;

  if (pooling && !account.limits.pooling) throw poolingUnavailable();
  const others = (e: Endpoint): boolean => e.tunnelId !== ctx.tunnelId;
  const sameUrl = account.endpointsAt(url).filter(others);
  if (sameUrl.length > 0 && (!pooling || sameUrl.some((e) => !e.pooling))) throw alreadyOnline(url);
  const online = [...account.endpoints.values()].filter(others);
  if (online.length >= account.limits.maxEndpoints) throw endpointLimit(account.limits.maxEndpoints, online.map((e) => e.url));

  return { proto, url, hostport, pooling, proxyProto, ...(termination ? { termination } : {}) };
}
