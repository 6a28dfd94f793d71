// Acting as a ServiceAccount in e2e tests (the helper lives in @ktube/testenv, shared with the apps' tests).
import type { KubeConfig } from "@kubernetes/client-node";
import type { KubeClient } from "@ktube/runtime";
import { kubeConfigAs as tokenKubeConfig } from "@ktube/testenv";

export async function kubeConfigAs(kc: KubeConfig, _admin: KubeClient, namespace: string, serviceAccount: string): Promise<KubeConfig> {
  return tokenKubeConfig(kc, namespace, serviceAccount);
}
