// A small provider for the kit's own tests: an in-memory stand-in for a provider's
// service (tunnels, routes, per-binding resources) and a plugin that drives it. It
// poses as the `ngrok` class (a type with no controller yet), so the real CRDs admit
// its TunnelProviders and Tunnels.
import { Core, type ConditionInput, type SecretKeyRef } from "@ktube/api";
import { bindingKey } from "@ktube/routing";
import { ProviderError, type ProviderPlugin, type RouteOutcomes } from "../src/index.ts";

export const GOOD_TOKEN = "kit-test-token";

export interface ServiceTunnel {
  id: string;
  name: string;
  provider: string;
  /** Applied routes: `binding/route` -> URL. */
  routes: Map<string, string>;
}

export interface TestSession {
  provider: string;
  token: string;
}

/** What the provider's service holds. */
export class TestService {
  readonly tunnels = new Map<string, ServiceTunnel>();
  /** Provider name -> binding keys holding something there. */
  readonly held = new Map<string, Set<string>>();
  /** Every call, as "operation provider object". */
  readonly calls: string[] = [];
  /** Tunnel names whose reconcile throws this error. */
  readonly failures = new Map<string, ProviderError>();
  private nextId = 1;

  holders(provider: string): string[] {
    return [...(this.held.get(provider) ?? [])].sort();
  }

  callsFor(object: string): string[] {
    return this.calls.filter((c) => c.endsWith(` ${object}`));
  }

  newId(): string {
    return `tun-${this.nextId++}`;
  }
}

const CONNECTOR = "connector";

export function connectorName(tunnel: string): string {
  return `${tunnel}-${CONNECTOR}`;
}

export function testPlugin(service: TestService): ProviderPlugin<TestSession> {
  return {
    type: "ngrok",
    displayName: "Test",
    capabilities: () => ({
      provider: "Test",
      protocols: ["HTTP", "HTTPS", "TCP"],
      hostnameRequired: ["HTTP", "HTTPS", "TCP"],
      unsupportedFields: ["listenPort", "tls", "proxyProtocol", "udp", "access", "originRequest"],
      addressTargets: false,
      wholeHostnameProtocols: ["TCP"],
    }),
    credentialRefs: (provider): Record<string, SecretKeyRef> => (provider.spec.ngrok ? { token: provider.spec.ngrok.authtokenSecretRef } : {}),
    connect: (provider, credentials) => ({ provider: provider.metadata.name!, token: credentials.token ?? "" }),
    disconnect: (session) => void service.calls.push(`disconnect ${session.provider} ${session.token}`),
    async verify(session) {
      service.calls.push(`verify ${session.provider}`);
      const ready: ConditionInput =
        session.token === GOOD_TOKEN
          ? { type: "Ready", status: "True", reason: "CredentialsVerified", message: "token accepted" }
          : { type: "Ready", status: "False", reason: "TokenRejected", message: "the service rejected the token" };
      return { ready, recheckAfterMs: 60 * 60_000 };
    },
    tunnel: {
      owns: [Core.Deployment],
      async reconcile(ctx) {
        const { tunnel, session } = ctx;
        const name = tunnel.metadata.name!;
        service.calls.push(`tunnel.reconcile ${session.provider} ${tunnel.metadata.namespace}/${name}`);
        const failure = service.failures.get(name);
        if (failure) throw failure;
        let id = tunnel.status?.tunnelId;
        if (!id || !service.tunnels.has(id)) {
          id = service.newId();
          service.tunnels.set(id, { id, name, provider: session.provider, routes: new Map() });
          await ctx.saveStatus({ tunnelId: id });
        }
        await ctx.objects.ensure(Core.Deployment, connector(tunnel.metadata.namespace!, name));
        const applied = new Map<string, string>();
        const routes = new Map<string, RouteOutcomes>();
        for (const { binding, routes: resolved } of ctx.accepted) {
          const outcomes: RouteOutcomes = new Map();
          for (const r of resolved) {
            const url = `https://${r.route.hostname}${r.route.path ?? "/"}`;
            applied.set(`${bindingKey(binding)}/${r.route.name}`, url);
            outcomes.set(r.route.name, { ready: true, url });
          }
          routes.set(bindingKey(binding), outcomes);
        }
        service.tunnels.get(id)!.routes = applied;
        return { status: { tunnelId: id }, conditions: [{ type: "Ready", status: "True", reason: "TunnelReady", message: `test tunnel ${id}` }], routes };
      },
      async cleanup(ctx) {
        service.calls.push(`tunnel.cleanup ${ctx.session.provider} ${ctx.tunnel.metadata.namespace}/${ctx.tunnel.metadata.name}`);
        const id = ctx.tunnel.status?.tunnelId;
        if (id) service.tunnels.delete(id);
      },
    },
    binding: {
      async reconcile(ctx) {
        const key = bindingKey(ctx.binding);
        service.calls.push(`binding.reconcile ${ctx.session.provider} ${key}`);
        const held = service.held.get(ctx.session.provider) ?? new Set<string>();
        held.add(key);
        service.held.set(ctx.session.provider, held);
        const routes: RouteOutcomes = new Map(ctx.verdict.routes.filter((r) => r.resolved).map((r) => [r.name, { ready: true }]));
        return { routes };
      },
      async release(ctx) {
        const key = bindingKey(ctx.binding);
        service.calls.push(`binding.release ${ctx.session.provider} ${key}`);
        service.held.get(ctx.session.provider)?.delete(key);
      },
    },
  };
}

/** The connector Deployment the test plugin runs per tunnel. */
export function connector(namespace: string, tunnel: string) {
  const labels = { "app.kubernetes.io/name": CONNECTOR, "app.kubernetes.io/instance": tunnel };
  return {
    metadata: { name: connectorName(tunnel), namespace, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { automountServiceAccountToken: false, containers: [{ name: CONNECTOR, image: "registry.example/connector:1" }] },
      },
    },
  };
}
