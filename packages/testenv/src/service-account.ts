// Acting as a ServiceAccount in tests: a KubeConfig with a token from the TokenRequest API,
// so a controller or connector runs with exactly the rights its RBAC grants.
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";

export async function kubeConfigAs(kc: KubeConfig, namespace: string, serviceAccount: string): Promise<KubeConfig> {
  const token = await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace,
    body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } },
  });
  const cluster = kc.getCurrentCluster()!;
  const as = new KubeConfig();
  as.loadFromOptions({
    clusters: [{ name: "test", server: cluster.server, caData: cluster.caData }],
    users: [{ name: serviceAccount, token: token.status!.token }],
    contexts: [{ name: serviceAccount, cluster: "test", user: serviceAccount }],
    currentContext: serviceAccount,
  });
  return as;
}
