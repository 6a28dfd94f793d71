// A complete controller on @ktube/runtime: it stamps every ConfigMap labelled
// example.ktube.dev/stamp=true with the name of the instance that reconciled it.
// Run several copies: leader election lets exactly one of them reconcile.
import { KubeConfig, type V1ConfigMap } from "@kubernetes/client-node";
import { createLogger, annotationsChanged, Manager, PatchType, type ResourceType } from "@ktube/runtime";

// The phantom type makes cache reads of this kind V1ConfigMaps, with no generics at call sites.
const ConfigMap: ResourceType<V1ConfigMap> = { apiVersion: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true };
const selector = { labelSelector: "example.ktube.dev/stamp=true" };
const STAMP = "example.ktube.dev/stamped-by";

const kubeConfig = new KubeConfig();
kubeConfig.loadFromDefault();

const manager = new Manager({
  kubeConfig,
  name: "stamp-controller",
  logger: createLogger({ name: "stamp-controller" }),
  leaderElection: { namespace: process.env.LEASE_NAMESPACE ?? "default" },
  probeAddress: { host: "127.0.0.1", port: Number(process.env.PROBE_PORT ?? 8081) },
  metricsAddress: { host: "127.0.0.1", port: Number(process.env.METRICS_PORT ?? 8080) },
});

manager
  .controller("configmap-stamper")
  .for(ConfigMap, { ...selector, predicates: [annotationsChanged] })
  .withOptions({ maxConcurrentReconciles: 2 })
  .build(async ({ namespace, name }, { logger, signal }) => {
    // Level-triggered: read the current state from the cache, not from the event.
    const cm = manager.cache.get(ConfigMap, namespace, name, selector);
    if (!cm || cm.metadata?.annotations?.[STAMP] === manager.identity) return; // gone, or nothing to do
    const stamp = { metadata: { annotations: { [STAMP]: manager.identity } } };
    // The signal aborts the write if this instance loses the lease meanwhile.
    await manager.client.patch(ConfigMap, namespace, name, stamp, PatchType.merge, { signal });
    logger.info("stamped");
  });

manager.installSignalHandlers();
await manager.start();
