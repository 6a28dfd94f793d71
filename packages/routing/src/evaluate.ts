// The rules of DESIGN.md §API that need the cluster to judge, as one pure function:
// given a tunnel, every binding that names it, and the Services and Namespaces they
// refer to, decide which bindings are accepted, what each route resolves to, and who
// wins a conflict. Every controller (and both of a controller's binding and tunnel
// reconcilers) calls this, so they cannot disagree.
import type { Route, Tunnel, TunnelBinding } from "@ktube/api";
import { checkRouteShape, type ProviderCapabilities } from "./capabilities.ts";
import { type Clash, ClaimTable, claimsOf, type ClaimHolder, type RouteClaims } from "./claims.ts";
import { hostnameAdmission } from "./hostnames.ts";
import { matchesSelector } from "./selectors.ts";

export interface ServicePort {
  name?: string;
  port: number;
  protocol?: string;
}

export interface ServiceLike {
  metadata?: { name?: string; namespace?: string };
  spec?: { ports?: ServicePort[]; type?: string };
}

export interface NamespaceLike {
  metadata?: { name?: string; labels?: Record<string, string> };
}

export interface ConditionVerdict {
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
}

export interface ResolvedRoute {
  route: Route;
  /** In-cluster DNS name of the target Service (or the raw IP). */
  host: string;
  port: number;
}

export interface RouteVerdict {
  name: string;
  resolved?: ResolvedRoute;
  /** Why the route is not served, when it is not. */
  problem?: { reason: string; message: string };
}

export interface BindingVerdict {
  binding: TunnelBinding;
  accepted: ConditionVerdict;
  resolvedRefs: ConditionVerdict;
  routes: RouteVerdict[];
}

export interface TunnelView {
  tunnel: Tunnel;
  bindings: TunnelBinding[];
  services: (namespace: string, name: string) => ServiceLike | undefined;
  namespaces: (name: string) => NamespaceLike | undefined;
}

const ok = (reason: string, message = ""): ConditionVerdict => ({ status: "True", reason, message });
const no = (reason: string, message: string): ConditionVerdict => ({ status: "False", reason, message });
/** References of a binding that is not accepted are not looked at: their state is unknown, not fine. */
const NOT_EVALUATED: ConditionVerdict = { status: "Unknown", reason: "NotEvaluated", message: "the binding is not accepted, so its references were not resolved" };

export const bindingKey = (b: TunnelBinding): string => `${b.metadata.namespace}/${b.metadata.name}`;

/**
 * When a binding was created, in ms. Metadata may carry a string (raw JSON) or a Date
 * (typed clients), and `String(date)` does not sort by time, so both become numbers.
 * A binding without one (never from the API server) counts as oldest.
 */
function createdAt(binding: TunnelBinding): number {
  const stamp = binding.metadata.creationTimestamp;
  const ms = stamp instanceof Date ? stamp.getTime() : stamp ? Date.parse(stamp) : Number.NaN;
  return Number.isNaN(ms) ? Number.NEGATIVE_INFINITY : ms;
}

/** Does the binding's status say it is accepted now (it holds its claims)? */
const acceptedNow = (binding: TunnelBinding): boolean =>
  binding.status?.conditions?.some((c) => c.type === "Accepted" && c.status === "True") ?? false;

/**
 * Oldest first: creationTimestamp, then, between bindings created in the same second (the
 * timestamp's resolution), the one already accepted (a newcomer never takes claims from the
 * binding holding them just because of its name), then namespace/name. Older bindings win
 * conflicts.
 */
export function byAge(a: TunnelBinding, b: TunnelBinding): number {
  const ta = createdAt(a);
  const tb = createdAt(b);
  if (ta !== tb) return ta < tb ? -1 : 1;
  const holdA = acceptedNow(a);
  if (holdA !== acceptedNow(b)) return holdA ? -1 : 1;
  const ka = bindingKey(a);
  const kb = bindingKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** Does the tunnel name this binding, after defaulting the binding's tunnelRef namespace? */
export function refersTo(binding: TunnelBinding, tunnel: { metadata: { name?: string; namespace?: string } }): boolean {
  const ref = binding.spec.tunnelRef;
  return ref.name === tunnel.metadata.name && (ref.namespace ?? binding.metadata.namespace) === tunnel.metadata.namespace;
}

const tunnelKey = (tunnel: Tunnel): string => `${tunnel.metadata.namespace}/${tunnel.metadata.name}`;

function namespaceNotAllowed(view: TunnelView, binding: TunnelBinding): ConditionVerdict | undefined {
  const tunnelNs = view.tunnel.metadata.namespace;
  const bindingNs = binding.metadata.namespace!;
  const rule = view.tunnel.spec.allowedBindings?.namespaces ?? { from: "Same" as const };
  if (rule.from === "All" || bindingNs === tunnelNs) return undefined;
  if (rule.from === "Same") {
    return no("NotAllowedByTunnel", `Tunnel ${tunnelKey(view.tunnel)} admits bindings from its own namespace only (allowedBindings.namespaces.from: Same)`);
  }
  const ns = view.namespaces(bindingNs);
  if (ns && rule.selector && matchesSelector(ns.metadata?.labels ?? {}, rule.selector)) return undefined;
  return no("NotAllowedByTunnel", `namespace ${bindingNs} does not match the namespace selector of Tunnel ${tunnelKey(view.tunnel)}`);
}

function shapeNotServed(view: TunnelView, binding: TunnelBinding, caps: ProviderCapabilities): ConditionVerdict | undefined {
  for (const route of binding.spec.routes) {
    const problem = checkRouteShape(route, caps, view.tunnel);
    if (problem) return no(problem.reason, problem.message);
  }
  return undefined;
}

function hostnamesNotAdmitted(view: TunnelView, binding: TunnelBinding, admitted: ((hostname: string) => boolean) | undefined): ConditionVerdict | undefined {
  if (!admitted) return undefined;
  const refused = binding.spec.routes
    .filter((route) => route.hostname !== undefined && !admitted(route.hostname))
    .map((route) => `route ${route.name}: hostname ${route.hostname} is not admitted by Tunnel ${tunnelKey(view.tunnel)} (its allowedBindings.hostnames)`);
  return refused.length > 0 ? no("HostnameNotAllowed", refused.join("; ")) : undefined;
}

/** Two routes of one binding claiming the same thing: the binding contradicts itself. */
function duplicateRoutes(binding: TunnelBinding, claims: readonly RouteClaims[]): ConditionVerdict | undefined {
  const own = new ClaimTable();
  const namespace = binding.metadata.namespace!;
  const duplicates: string[] = [];
  for (const routeClaims of claims) {
    const clash = own.clash(routeClaims, namespace);
    if (clash) duplicates.push(describeDuplicate(routeClaims.route, clash));
    else own.add(routeClaims, holderOf(binding, routeClaims.route));
  }
  return duplicates.length > 0 ? no("DuplicateRoute", duplicates.join("; ")) : undefined;
}

function conflicts(binding: TunnelBinding, claims: readonly RouteClaims[], held: ClaimTable): ConditionVerdict | undefined {
  const namespace = binding.metadata.namespace!;
  const found: string[] = [];
  for (const routeClaims of claims) {
    const clash = held.clash(routeClaims, namespace);
    if (clash) found.push(describeConflict(routeClaims.route, clash));
  }
  return found.length > 0 ? no("Conflict", `${found.join("; ")}; the older binding keeps its claims`) : undefined;
}

const holderOf = (binding: TunnelBinding, route: Route): ClaimHolder => ({
  namespace: binding.metadata.namespace!,
  binding: bindingKey(binding),
  route: route.name,
  protocol: route.protocol,
});

function claimed(clash: Clash): string {
  switch (clash.kind) {
    case "path":
      return `${clash.hostname}${clash.path}${clash.scope ? ` on ${clash.scope}` : ""}`;
    case "extra":
      return clash.claim;
    default:
      return `hostname ${clash.hostname}`;
  }
}

function describeConflict(route: Route, clash: Clash): string {
  const holder = `TunnelBinding ${clash.holder.binding} (route ${clash.holder.route})`;
  switch (clash.kind) {
    case "hostnameOfOtherNamespace":
      return `route ${route.name}: hostname ${clash.hostname} belongs to namespace ${clash.holder.namespace} on this tunnel, as ${holder} claimed it first; bindings from other namespaces cannot add routes to it`;
    case "hostnameHeldWhole":
      return `route ${route.name}: hostname ${clash.hostname} is held whole by ${holder}, as ${clash.holder.protocol} takes the whole hostname`;
    case "hostnameInUse":
      return `route ${route.name}: ${route.protocol} takes the whole hostname ${clash.hostname}, which is held by ${holder}`;
    default:
      return `route ${route.name}: ${claimed(clash)} is held by ${holder}`;
  }
}

function describeDuplicate(route: Route, clash: Clash): string {
  const other = clash.holder.route;
  switch (clash.kind) {
    case "hostnameHeldWhole":
      return `route ${other} (${clash.holder.protocol}) takes the whole hostname ${clash.hostname}, which route ${route.name} also uses`;
    case "hostnameInUse":
      return `route ${route.name} (${route.protocol}) takes the whole hostname ${clash.hostname}, which route ${other} also uses`;
    default:
      return `routes ${other} and ${route.name} both claim ${claimed(clash)}`;
  }
}

function resolveRoute(view: TunnelView, binding: TunnelBinding, route: Route): RouteVerdict {
  if (route.address) return { name: route.name, resolved: { route, host: route.address.ip, port: route.address.port } };
  const target = route.service!;
  const ns = binding.metadata.namespace!;
  const service = view.services(ns, target.name);
  if (!service) return { name: route.name, problem: { reason: "ServiceNotFound", message: `route ${route.name}: Service ${ns}/${target.name} not found` } };
  const ports = service.spec?.ports ?? [];
  const port = typeof target.port === "number" ? ports.find((p) => p.port === target.port) : ports.find((p) => p.name === target.port);
  if (!port) {
    const have = ports.map((p) => (p.name ? `${p.name}/${p.port}` : String(p.port))).join(", ") || "none";
    return { name: route.name, problem: { reason: "PortNotFound", message: `route ${route.name}: Service ${ns}/${target.name} has no port ${target.port} (ports: ${have})` } };
  }
  return { name: route.name, resolved: { route, host: `${target.name}.${ns}.svc.cluster.local`, port: port.port } };
}

/**
 * Judges every binding of one tunnel. Bindings are taken oldest first; a binding is
 * accepted when its namespace is admitted, every route is one the provider serves on
 * a hostname the tunnel admits, no two of its routes claim the same thing, and it
 * claims nothing an older accepted binding holds (a hostname belongs to the
 * namespace of its first accepted binding). A rejected binding holds nothing. Routes
 * whose Service or port is missing are not served (ResolvedRefs=False) but do not
 * make the binding lose its claims. Every claim is a map lookup, so the cost is
 * linear in the routes of the tunnel's bindings (plus sorting the bindings).
 */
export function evaluateTunnel(view: TunnelView, caps: ProviderCapabilities): Map<string, BindingVerdict> {
  const verdicts = new Map<string, BindingVerdict>();
  const held = new ClaimTable();
  const allowedHostnames = view.tunnel.spec.allowedBindings?.hostnames;
  const admitted = allowedHostnames ? hostnameAdmission(allowedHostnames) : undefined;
  const bindings = view.bindings.filter((b) => refersTo(b, view.tunnel) && !b.metadata.deletionTimestamp).sort(byAge);
  for (const binding of bindings) {
    const key = bindingKey(binding);
    const claims = binding.spec.routes.map((route) => claimsOf(route, caps));
    const rejection =
      namespaceNotAllowed(view, binding) ??
      shapeNotServed(view, binding, caps) ??
      hostnamesNotAdmitted(view, binding, admitted) ??
      duplicateRoutes(binding, claims) ??
      conflicts(binding, claims, held);
    if (rejection) {
      verdicts.set(key, { binding, accepted: rejection, resolvedRefs: NOT_EVALUATED, routes: [] });
      continue;
    }
    for (const routeClaims of claims) held.add(routeClaims, holderOf(binding, routeClaims.route));
    const routes = binding.spec.routes.map((r) => resolveRoute(view, binding, r));
    const problems = routes.filter((r) => r.problem);
    verdicts.set(key, {
      binding,
      accepted: ok("Accepted", `bound to Tunnel ${tunnelKey(view.tunnel)}`),
      resolvedRefs: problems.length === 0 ? ok("ResolvedRefs") : no(problems[0]!.problem!.reason, problems.map((p) => p.problem!.message).join("; ")),
      routes,
    });
  }
  return verdicts;
}

/** Verdicts for bindings whose tunnel cannot be used at all (missing, or of another provider). */
export function unboundVerdict(binding: TunnelBinding, reason: string, message: string): BindingVerdict {
  return { binding, accepted: no(reason, message), resolvedRefs: NOT_EVALUATED, routes: [] };
}
