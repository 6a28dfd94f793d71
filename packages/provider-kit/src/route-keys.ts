// Routes keyed `<namespace>/<binding>/<route>`, the way provider plans name them: grouping
// outcomes by binding for TunnelOutcome.routes, and finding what a route holds at the
// provider (its reservation) in its binding's status, so a restart resumes the same port.
import type { AcceptedBinding, RouteOutcome, RouteOutcomes } from "./plugin.ts";

/** Route outcomes by route key, grouped by binding key (`namespace/name`) as TunnelOutcome.routes wants them. */
export function outcomesByBinding(entries: Iterable<readonly [string, RouteOutcome]>): Map<string, RouteOutcomes> {
  const byBinding = new Map<string, RouteOutcomes>();
  for (const [key, outcome] of entries) {
    const [namespace, binding, route] = key.split("/");
    let routes = byBinding.get(`${namespace}/${binding}`);
    if (!routes) byBinding.set(`${namespace}/${binding}`, (routes = new Map()));
    routes.set(route!, outcome);
  }
  return byBinding;
}

/** The address of reservation `id` that the route's binding status records, as a number (a port). */
export function recordedReservation(accepted: readonly AcceptedBinding[], key: string, id: string): number | undefined {
  const [namespace, name, route] = key.split("/");
  const binding = accepted.find((a) => a.binding.metadata.namespace === namespace && a.binding.metadata.name === name)?.binding;
  const reservation = binding?.status?.routes?.find((r) => r.name === route)?.reservation;
  return reservation?.id === id && reservation.address ? Number(reservation.address) : undefined;
}
