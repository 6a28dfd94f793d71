// What each tunnel last applied for each of its bindings, published by the Tunnel
// controller and read by the TunnelBinding controller (the Gateway API pattern: the
// parent judges and applies, the route reports). A binding is woken exactly when its
// entry changes, which is also how a conflict's loser learns the winner has gone.
import { createHash } from "node:crypto";
import type { BindingVerdict } from "@ktube/routing";
import type { RouteOutcomes } from "./plugin.ts";

export interface AppliedBinding {
  /** What the tunnel judged and applied: the binding's generation and the verdict's fingerprint. */
  fingerprint: string;
  routes: RouteOutcomes;
}

/** Identifies a verdict: the binding generation plus everything the verdict says. */
export function verdictFingerprint(verdict: BindingVerdict): string {
  const { binding, ...judgement } = verdict;
  return createHash("sha256")
    .update(JSON.stringify([binding.metadata.uid, binding.metadata.generation, judgement]))
    .digest("hex")
    .slice(0, 16);
}

const same = (a: AppliedBinding | undefined, b: AppliedBinding | undefined): boolean =>
  a?.fingerprint === b?.fingerprint && JSON.stringify([...(a?.routes ?? [])]) === JSON.stringify([...(b?.routes ?? [])]);

export class PublishedRoutes {
  private readonly tunnels = new Map<string, Map<string, AppliedBinding>>();

  has(tunnelKey: string): boolean {
    return this.tunnels.has(tunnelKey);
  }

  get(tunnelKey: string, bindingKey: string): AppliedBinding | undefined {
    return this.tunnels.get(tunnelKey)?.get(bindingKey);
  }

  /** Replaces a tunnel's entries; returns the binding keys whose entry changed. */
  publish(tunnelKey: string, entries: Map<string, AppliedBinding>): string[] {
    const before = this.tunnels.get(tunnelKey) ?? new Map<string, AppliedBinding>();
    this.tunnels.set(tunnelKey, entries);
    const changed = [...entries].filter(([key, entry]) => !same(before.get(key), entry)).map(([key]) => key);
    return [...changed, ...[...before.keys()].filter((key) => !entries.has(key))];
  }

  /** Forgets a tunnel; returns the bindings that had entries. */
  drop(tunnelKey: string): string[] {
    const before = this.tunnels.get(tunnelKey);
    this.tunnels.delete(tunnelKey);
    return [...(before?.keys() ?? [])];
  }
}
