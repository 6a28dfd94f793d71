// Which TunnelProviders this controller instance serves: its provider class, narrowed
// by --provider-selector so several instances can split one class's providers. An
// instance acts only on objects whose provider it serves; a provider that exists but
// is another instance's is left entirely alone (no status, no finalizer, no cleanup).
import type { LabelSelector } from "@ktube/api";
import { matchesSelector, parseLabelSelector } from "@ktube/routing";
import { createHash } from "node:crypto";
import type { ProviderObject } from "./plugin.ts";

export class ProviderScope {
  readonly type: string;
  readonly selectorText: string | undefined;
  private readonly selector: LabelSelector | undefined;

  constructor(type: string, selectorText?: string) {
    this.type = type;
    this.selectorText = selectorText?.trim() || undefined;
    this.selector = this.selectorText ? parseLabelSelector(this.selectorText) : undefined;
  }

  serves(provider: ProviderObject | undefined): provider is ProviderObject {
    if (!provider || provider.spec.type !== this.type) return false;
    return !this.selector || matchesSelector(provider.metadata.labels ?? {}, this.selector);
  }
}

/**
 * The Lease name of an instance: one per program and selector, so instances serving
 * different providers never contend for one Lease.
 */
export function defaultLeaderElectionId(program: string, selectorText: string | undefined): string {
  if (!selectorText?.trim()) return `${program}.ktube.dev`;
  const hash = createHash("sha256").update(selectorText.trim()).digest("hex").slice(0, 10);
  return `${program}-${hash}.ktube.dev`;
}
