// Installs CustomResourceDefinitions and waits until the API server serves them.
import { ApiextensionsV1Api, HttpMethod, KubeConfig, RequestContext, type V1CustomResourceDefinition } from "@kubernetes/client-node";
import { fetch, type Dispatcher } from "undici";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { ControlPlane, type ControlPlaneOptions } from "./control-plane.ts";
import { sleep } from "./process.ts";

/** The repository's generated CRDs. */
export const REPO_CRD_DIR = join(import.meta.dirname, "..", "..", "..", "crds");

export function readCrds(dir: string = REPO_CRD_DIR): V1CustomResourceDefinition[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), "utf8")).map((d) => d.toJS() as V1CustomResourceDefinition))
    .filter((crd) => crd?.kind === "CustomResourceDefinition");
}

/** Server-side applies every CRD in `dir` and waits until each is Established. */
export async function installCrds(kc: KubeConfig, dir: string = REPO_CRD_DIR, timeoutMs = 30_000): Promise<string[]> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const crds = readCrds(dir);
  for (const crd of crds) await serverSideApply(kc, crd);
  const names = crds.map((c) => c.metadata!.name!);
  const deadline = Date.now() + timeoutMs;
  for (const name of names) {
    for (;;) {
      const crd = await api.readCustomResourceDefinition({ name });
      if (crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} was not Established within ${timeoutMs / 1000} s`);
      await sleep(100);
    }
  }
  return names;
}

/**
 * Server-side apply of a CRD as raw JSON. client-node's typed serializers would drop
 * every schema key they do not model in camelCase (`x-kubernetes-validations`, `enum`
 * inside nested schemas...), installing a CRD that validates nothing.
 */
async function serverSideApply(kc: KubeConfig, crd: V1CustomResourceDefinition): Promise<void> {
  const url = `${kc.getCurrentCluster()!.server}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata!.name}?fieldManager=ktube-testenv&force=true`;
  const ctx = new RequestContext(url, HttpMethod.PATCH);
  await kc.applySecurityAuthentication(ctx);
  const response = await fetch(url, {
    method: "PATCH",
    headers: { ...ctx.getHeaders(), "Content-Type": "application/apply-patch+yaml" },
    body: JSON.stringify(crd),
    dispatcher: ctx.getDispatcher() as Dispatcher | undefined,
  });
  if (!response.ok) throw new Error(`applying CRD ${crd.metadata!.name} failed: ${response.status} ${await response.text()}`);
}

/** Starts a control plane and installs the CRDs; on failure stops what it started. */
export async function startWithCrds(options: ControlPlaneOptions = {}, crdDir: string = REPO_CRD_DIR): Promise<ControlPlane> {
  const controlPlane = new ControlPlane(options);
  try {
    await controlPlane.start();
    await installCrds(controlPlane.kubeConfig(), crdDir);
  } catch (error) {
    await controlPlane.stop();
    throw error;
  }
  return controlPlane;
}
