// The rules of DESIGN.md §API that need the cluster to judge, as one pure function:
// given a tunnel, every binding that names it, and the Services and Namespaces they
// refer to, decide which bindings are accepted, what each route resolves to, and who
// wins a conflict. Every controller (and both of a controller's binding and tunnel
// reconcilers) calls this, so they cannot disagree.
import type { LabelSelector, Route, RouteProtocol, Tunnel, TunnelBinding } from "@ktube/api";

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

/** What a provider can serve; anything else is refused with a reason. */
export interface ProviderCapabilities {
  provider: string;
  protocols: readonly RouteProtocol[];
  /** Protocols whose routes must name a hostname. */
  hostnameRequired: readonly RouteProtocol[];
  /** Route fields the provider does not implement (e.g. `listenPort` on Cloudflare). */
  unsupportedFields: ReadonlyArray<keyof Route>;
  /** Raw IP:port targets, where the tunnel allows them. */
  addressTargets: boolean;
  /** The key two routes of a tunnel cannot share. */
  claimKey: (route: Route) => string | undefined;
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

/** Oldest first: creationTimestamp, then namespace/name. Older bindings win conflicts. */
export function byAge(a: TunnelBinding, b: TunnelBinding): number {
  const ta = String(a.metadata.creationTimestamp ?? "");
  const tb = String(b.metadata.creationTimestamp ?? "");
  if (ta !== tb) return ta < tb ? -1 : 1;
  return bindingKey(a) < bindingKey(b) ? -1 : bindingKey(a) > bindingKey(b) ? 1 : 0;
}

/** Does the tunnel name this binding, after defaulting the binding's tunnelRef namespace? */
export function refersTo(binding: TunnelBinding, tunnel: { metadata: { name?: string; namespace?: string } }): boolean {
  const ref = binding.spec.tunnelRef;
  return ref.name === tunnel.metadata.name && (ref.namespace ?? binding.metadata.namespace) === tunnel.metadata.namespace;
}

export function matchesSelector(labels: Record<string, string>, selector: LabelSelector): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, req.key);
    const value = labels[req.key];
    const values = req.values ?? [];
    if (req.operator === "In" && !(has && values.includes(value!))) return false;
    if (req.operator === "NotIn" && has && values.includes(value!)) return false;
    if (req.operator === "Exists" && !has) return false;
    if (req.operator === "DoesNotExist" && has) return false;
  }
  return true;
}

function namespaceAllowed(view: TunnelView, binding: TunnelBinding): ConditionVerdict | undefined {
  const tunnelNs = view.tunnel.metadata.namespace;
  const bindingNs = binding.metadata.namespace!;
  const rule = view.tunnel.spec.allowedBindings?.namespaces ?? { from: "Same" as const };
  if (rule.from === "All" || bindingNs === tunnelNs) return undefined;
  if (rule.from === "Same") {
    return no("NotAllowedByTunnel", `Tunnel ${tunnelNs}/${view.tunnel.metadata.name} admits bindings from its own namespace only (allowedBindings.namespaces.from: Same)`);
  }
  const ns = view.namespaces(bindingNs);
  if (ns && rule.selector && matchesSelector(ns.metadata?.labels ?? {}, rule.selector)) return undefined;
  return no("NotAllowedByTunnel", `namespace ${bindingNs} does not match the namespace selector of Tunnel ${tunnelNs}/${view.tunnel.metadata.name}`);
}

function checkRouteShape(route: Route, caps: ProviderCapabilities, tunnel: Tunnel): { reason: string; message: string } | undefined {
  if (!caps.protocols.includes(route.protocol)) {
    return { reason: "UnsupportedProtocol", message: `route ${route.name}: ${caps.provider} tunnels do not carry ${route.protocol} (supported: ${caps.protocols.join(", ")})` };
  }
  if (caps.hostnameRequired.includes(route.protocol) && !route.hostname) {
    return { reason: "HostnameRequired", message: `route ${route.name}: ${caps.provider} needs a hostname for ${route.protocol} routes` };
  }
  const unsupported = caps.unsupportedFields.filter((f) => route[f] !== undefined);
  if (unsupported.length > 0) {
    return { reason: "UnsupportedField", message: `route ${route.name}: ${caps.provider} does not support ${unsupported.join(", ")}` };
  }
  if (route.address && !(caps.addressTargets && (tunnel.spec.edge?.allowAddressTargets ?? false))) {
    return { reason: "AddressTargetNotAllowed", message: `route ${route.name}: raw address targets are not allowed by this tunnel` };
  }
  return undefined;
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
 * accepted when it is allowed, well-formed for the provider, and claims nothing an
 * older accepted binding holds. Routes whose Service or port is missing are not
 * served (ResolvedRefs=False) but do not make the binding lose its claims.
 */
export function evaluateTunnel(view: TunnelView, caps: ProviderCapabilities): Map<string, BindingVerdict> {
  const verdicts = new Map<string, BindingVerdict>();
  const claims = new Map<string, string>(); // claim key -> binding key holding it
  for (const binding of [...view.bindings].filter((b) => refersTo(b, view.tunnel) && !b.metadata.deletionTimestamp).sort(byAge)) {
    const key = bindingKey(binding);
    const reject = (accepted: ConditionVerdict): void =>
      void verdicts.set(key, { binding, accepted, resolvedRefs: NOT_EVALUATED, routes: [] });

    const notAllowed = namespaceAllowed(view, binding);
    if (notAllowed) {
      reject(notAllowed);
      continue;
    }
    const shape = binding.spec.routes.map((r) => checkRouteShape(r, caps, view.tunnel)).find(Boolean);
    if (shape) {
      reject(no(shape.reason, shape.message));
      continue;
    }
    const conflicts = binding.spec.routes.flatMap((r) => {
      const claim = caps.claimKey(r);
      const holder = claim ? claims.get(claim) : undefined;
      return holder ? [`route ${r.name} (${claim}) is held by TunnelBinding ${holder}`] : [];
    });
    if (conflicts.length > 0) {
      reject(no("Conflict", `${conflicts.join("; ")}; the older binding keeps it`));
      continue;
    }
    for (const r of binding.spec.routes) {
      const claim = caps.claimKey(r);
      if (claim) claims.set(claim, key);
    }
    const routes = binding.spec.routes.map((r) => resolveRoute(view, binding, r));
    const problems = routes.filter((r) => r.problem);
    verdicts.set(key, {
      binding,
      accepted: ok("Accepted", `bound to Tunnel ${view.tunnel.metadata.namespace}/${view.tunnel.metadata.name}`),
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
