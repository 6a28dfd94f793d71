// Typed resources, checked by the compiler: the typecheck target fails when a read stops
// inferring its type from @ktube/api's descriptors. The jest test only keeps the file in
// the suite; the assertions are the types below.
import { describe, expect, it } from "@jest/globals";
import { Core, type ResourceDescriptor, type Tunnel, type TunnelBinding, TunnelBindingResource, type TunnelProvider, TunnelProviderResource, TunnelResource } from "@ktube/api";
import type { V1ConfigMap, V1Deployment, V1Namespace, V1PodDisruptionBudget, V1Secret, V1Service } from "@kubernetes/client-node";
import type { Cache, ControllerBuilder, Informer, KubeObject, ResourceType } from "../src/index.ts";

/** True when A and B are the same type (not merely assignable). */
type Equals<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
const assertType = <T extends true>(): T | undefined => undefined;

/** Never called: tsc checks it, jest only sees a function. */
function typeChecks(cache: Cache, builder: ControllerBuilder): void {
  // A ResourceDescriptor<X> passed where ResourceType<T> is expected infers T = X.
  const infer = <T>(type: ResourceType<T>): T | undefined => type.__object;
  assertType<Equals<ReturnType<typeof infer<TunnelBinding>>, TunnelBinding | undefined>>();
  const inferred = infer(TunnelBindingResource);
  assertType<Equals<typeof inferred, TunnelBinding | undefined>>();

  assertType<Equals<ReturnType<typeof cache.get<Tunnel>>, (Tunnel & KubeObject) | undefined>>();
  const tunnel = cache.get(TunnelResource, "ns", "t");
  assertType<Equals<typeof tunnel, (Tunnel & KubeObject) | undefined>>();
  const provider: string | undefined = tunnel?.spec.providerRef.name;

  const bindings = cache.list(TunnelBindingResource);
  assertType<Equals<typeof bindings, Array<TunnelBinding & KubeObject>>>();
  const tunnelNames: string[] = bindings.map((b) => b.spec.tunnelRef.name);

  const byProvider = cache.byIndex(TunnelResource, "provider", "p");
  assertType<Equals<typeof byProvider, Array<Tunnel & KubeObject>>>();

  const providers = cache.informer(TunnelProviderResource);
  assertType<Equals<typeof providers, Informer<TunnelProvider & KubeObject>>>();

  // Index functions and map functions get the typed object too.
  cache.addIndex(TunnelBindingResource, "tunnel", (b) => [b.spec.tunnelRef.name]);
  builder.watches(TunnelBindingResource, (b) => [b.spec.tunnelRef.name]);

  // Built-in kinds carry client-node's types.
  assertType<Equals<typeof Core.Namespace, ResourceDescriptor<V1Namespace>>>();
  assertType<Equals<typeof Core.Service, ResourceDescriptor<V1Service>>>();
  assertType<Equals<typeof Core.Secret, ResourceDescriptor<V1Secret>>>();
  assertType<Equals<typeof Core.ConfigMap, ResourceDescriptor<V1ConfigMap>>>();
  assertType<Equals<typeof Core.Deployment, ResourceDescriptor<V1Deployment>>>();
  assertType<Equals<typeof Core.PodDisruptionBudget, ResourceDescriptor<V1PodDisruptionBudget>>>();
  const secret = cache.get(Core.Secret, "ns", "s");
  const token: string | undefined = secret?.data?.token;
  const replicas: number | undefined = cache.get(Core.Deployment, "ns", "d")?.status?.availableReplicas;

  // Typed descriptors still go wherever any kind is accepted (client calls, owns()).
  const anyKind: ResourceType = TunnelBindingResource;
  builder.owns(Core.Deployment);

  // @ts-expect-error a Tunnel has no `routes` in its spec: reads are really typed.
  void cache.get(TunnelResource, "ns", "t")?.spec.routes;

  void [provider, tunnelNames, token, replicas, anyKind];
}

describe("typed resources", () => {
  it("are checked by tsc (see typeChecks in this file)", () => {
    expect(typeof typeChecks).toBe("function");
    expect(TunnelResource.__object).toBeUndefined(); // the phantom is never set
  });
});
