// The account-level half of Access: bindings ensure and remove their own applications,
// and this sweep, on every resync, deletes the applications of this installation that
// name a binding the cluster no longer has (removed without its cleanup). Only accounts
// where some binding uses Access are listed, so a token without Access rights is never
// asked. A binding anywhere in the cluster keeps its applications: another instance
// serving another provider may hold them.
import { TunnelBindingResource, TunnelProviderResource } from "@ktube/api";
import { bindingKey } from "@ktube/routing";
import { Index, objectKeyOf, ProviderError, ProviderRateLimited, type ProviderKit, type ProviderObject } from "@ktube/provider-kit";
import { sweepAccessApps } from "./access.ts";
import { bindingFingerprint } from "./ownership.ts";
import { ACCESS_ANNOTATION } from "./routes.ts";
import type { AccountSession } from "./sessions.ts";

export interface AccessSweepOptions {
  ownerId: string;
  accountOf(provider: ProviderObject): AccountSession | undefined;
}

export function registerAccessSweep<S extends object>(kit: ProviderKit<S>, options: AccessSweepOptions): void {
  const { cache } = kit.manager;
  const usesAccess = (provider: ProviderObject): boolean =>
    kit.tunnelsOfProvider(provider.metadata.name!).some((t) =>
      cache.byIndex(TunnelBindingResource, Index.bindingsByTunnel, objectKeyOf(t)).some((b) => b.metadata.annotations?.[ACCESS_ANNOTATION] === "true"),
    );
  kit.manager
    .controller("accesssweep")
    .forKeys({
      resyncKeys: () =>
        cache
          .list(TunnelProviderResource)
          .filter((p) => p.spec.type === kit.plugin.type && kit.scope.serves(p) && usesAccess(p))
          .map((p) => p.metadata.name!),
    })
    .withOptions({ maxConcurrentReconciles: 1 })
    .build(async ({ key }, context) => {
      const provider = kit.provider(key);
      const account = provider ? options.accountOf(provider) : undefined;
      if (!account) return;
      const known = new Set<string>();
      for (const b of cache.list(TunnelBindingResource)) known.add(bindingKey(b)).add(bindingFingerprint(bindingKey(b)));
      try {
        const cleared = await sweepAccessApps(account.api, account.access, options.ownerId, (binding) => known.has(binding));
        if (cleared.length > 0) context.logger.info({ provider: key, domains: cleared }, "deleted Access applications of bindings that no longer exist");
      } catch (error) {
        if (error instanceof ProviderRateLimited) return { requeueAfterMs: error.retryAfterMs ?? 60_000 };
        // Bindings report what Access says to them; the sweep tries again on the next resync.
        if (error instanceof ProviderError) context.logger.warn({ provider: key, reason: error.reason, err: error.message }, "could not sweep Access applications");
        else throw error;
      }
      return undefined;
    });
}
