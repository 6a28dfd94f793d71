// TunnelProvider (type: cloudflare): are the credentials there, and does Cloudflare accept them?
import { Core, TunnelProviderResource, type ConditionInput, type TunnelProvider } from "@ktube/api";
import { generationChanged, type KubeObject, type Request } from "@ktube/runtime";
import { getProvider, PROVIDER_TYPE, providerSelector, applyConditions, type Context } from "../context.ts";
import { isProblem } from "../provider/accounts.ts";
import { CloudflareError, type CloudflareApi } from "../provider/api.ts";

const REVERIFY_MS = 60 * 60_000;

export function setupTunnelProviderController(ctx: Context): void {
  // Verification results by API session (a new token or account makes a new session):
  // a resync does not ask Cloudflare again within REVERIFY_MS.
  const verified = new WeakMap<CloudflareApi, { at: number; result: ConditionInput }>();
  const secretNs = ctx.accounts.secretNamespace;

  ctx.manager
    .controller("tunnelprovider")
    .for(TunnelProviderResource, { ...providerSelector(ctx), predicates: [generationChanged] })
    .watches(
      Core.Secret,
      (secret) =>
        ctx.manager.cache
          .list<TunnelProvider & KubeObject>(TunnelProviderResource, {}, providerSelector(ctx))
          .filter((p) => p.spec.cloudflare?.apiTokenSecretRef?.name === secret.metadata?.name)
          .map((p) => p.metadata.name!),
      { namespace: secretNs },
    )
    .withOptions({ maxConcurrentReconciles: ctx.options.maxConcurrentReconciles })
    .build(async ({ name }: Request) => {
      const provider = getProvider(ctx, name);
      if (!provider || provider.spec.type !== PROVIDER_TYPE || provider.metadata.deletionTimestamp) return;
      const generation = provider.metadata.generation;
      let ready: ConditionInput;
      let requeueAfterMs: number | undefined;
      if (provider.spec.cloudflare?.quickTunnels) {
        ready = { type: "Ready", status: "True", reason: "QuickTunnels", message: "quick tunnels need no account (development only)" };
      } else {
        const session = ctx.accounts.session(provider);
        if (isProblem(session)) {
          ready = { type: "Ready", status: "False", reason: session.reason, message: session.message };
        } else {
          const cached = verified.get(session.api);
          if (cached && Date.now() - cached.at < REVERIFY_MS) {
            ready = cached.result;
          } else {
            ready = await verify(session.api);
            verified.set(session.api, { at: Date.now(), result: ready });
          }
          requeueAfterMs = REVERIFY_MS;
        }
      }
      const status = provider.status ?? {};
      const conditions = await applyConditions(ctx, provider as KubeObject, status.conditions, [ready], generation);
      await ctx.manager.status.update(TunnelProviderResource, provider as KubeObject & { status?: object }, {
        ...status,
        observedGeneration: generation,
        conditions,
      });
      return requeueAfterMs ? { requeueAfterMs } : undefined;
    });
}

/** Asks Cloudflare about the token: a user token first, then an account-owned one. */
async function verify(api: CloudflareApi): Promise<ConditionInput> {
  try {
    const result = await api
      .call("user.tokens.verify", (sdk) => sdk.user.tokens.verify())
      .catch((error: unknown) => {
        if (error instanceof CloudflareError && error.reason === "AuthenticationFailed") {
          return api.call("accounts.tokens.verify", (sdk) => sdk.accounts.tokens.verify({ account_id: api.accountId }));
        }
        throw error;
      });
    if (result.status !== "active") {
      return { type: "Ready", status: "False", reason: "TokenNotActive", message: `the API token is ${result.status}` };
    }
    return { type: "Ready", status: "True", reason: "CredentialsVerified", message: `token verified for account ${api.accountId}` };
  } catch (error) {
    if (error instanceof CloudflareError && error.reason === "AuthenticationFailed") {
      return { type: "Ready", status: "False", reason: "TokenRejected", message: `Cloudflare rejected the API token: ${error.message}` };
    }
    throw error;
  }
}
