// TunnelProvider: are its credentials there, and does the provider accept them?
import { Core, TunnelProviderResource, type ConditionInput } from "@ktube/api";
import type { ReconcileContext, Request, Result } from "@ktube/runtime";
import { ProviderError, ProviderRateLimited } from "./errors.ts";
import type { ProviderKit } from "./kit.ts";
import { writeStatus } from "./status.ts";
import { providerChanged } from "./tunnel-controller.ts";

const DEFAULT_RECHECK_MS = 60 * 60_000;

export function registerProviderController<S extends object>(kit: ProviderKit<S>): void {
  const { manager, options } = kit;
  // Answers per session (a new token or spec makes a new session): a resync does not ask again before they are due.
  const verified = new WeakMap<object, { at: number; ready: ConditionInput; recheckAfterMs: number }>();
  kit.controllers.provider = manager
    .controller("tunnelprovider")
    .for(TunnelProviderResource, { predicates: [providerChanged] })
    .watches(Core.Secret, (secret) => kit.providersOfSecret(secret.metadata!.name!).map((p) => p.metadata.name!), { namespace: options.namespace })
    .withOptions({ maxConcurrentReconciles: options.maxConcurrentReconciles ?? 4 })
    .build((request, context) => reconcileProvider(kit, verified, request, context));
}

async function reconcileProvider<S extends object>(
  kit: ProviderKit<S>,
  verified: WeakMap<object, { at: number; ready: ConditionInput; recheckAfterMs: number }>,
  { name }: Request,
  context: ReconcileContext,
): Promise<Result | void> {
  const provider = kit.provider(name);
  if (!provider) return kit.sessions.forget(name);
  if (!kit.scope.serves(provider) || provider.metadata.deletionTimestamp) return;
  const { session, problem } = kit.sessions.of(provider);
  if (problem) {
    await writeStatus(kit.manager, TunnelProviderResource, provider, [{ type: "Ready", status: "False", reason: problem.reason, message: problem.message }]);
    return;
  }
  const key = session as object;
  let answer = verified.get(key);
  if (!answer || Date.now() - answer.at >= answer.recheckAfterMs) {
    try {
      const result = await kit.plugin.verify(session, provider, context.signal);
      answer = { at: Date.now(), ready: result.ready, recheckAfterMs: result.recheckAfterMs ?? DEFAULT_RECHECK_MS };
    } catch (error) {
      if (error instanceof ProviderRateLimited) return { requeueAfterMs: error.retryAfterMs ?? 60_000 };
      if (!(error instanceof ProviderError)) throw error;
      // Unreachable or failing provider: say so, and ask again with backoff.
      await writeStatus(kit.manager, TunnelProviderResource, provider, [{ type: "Ready", status: "False", reason: error.reason, message: error.message }]);
      throw error;
    }
    verified.set(key, answer);
  }
  await writeStatus(kit.manager, TunnelProviderResource, provider, [answer.ready]);
  return { requeueAfterMs: Math.max(1000, answer.recheckAfterMs - (Date.now() - answer.at)) };
}
