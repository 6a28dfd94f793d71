// Acting as a ServiceAccount in e2e tests: a KubeConfig with a token from the TokenRequest API.
import { KubeConfig } from "@kubernetes/client-node";
import type { KubeClient } from "@ktube/runtime";

export async function kubeConfigAs(kc: KubeConfig, admin: KubeClient, namespace: string, serviceAccount: string): Promise<KubeConfig> {
  const token = await admin.request<{ status: { token: string } }>("POST", `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`, {
    body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } },
  });
  const cluster = kc.getCurrentCluster()!;
  const as = new KubeConfig();
  as.loadFromOptions({
    clusters: [{ name: "test", server: cluster.server, caData: cluster.caData }],
    users: [{ name: serviceAccount, token: token.status.token }],
    contexts: [{ name: serviceAccount, cluster: "test", user: serviceAccount }],
    currentContext: serviceAccount,
  });
  return as;
}
