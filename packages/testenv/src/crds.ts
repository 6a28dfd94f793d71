// Installs CustomResourceDefinitions and waits until the API server serves them.
import {
  ApiextensionsV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  type V1CustomResourceDefinition,
} from "@kubernetes/client-node";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
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
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const crds = readCrds(dir);
  for (const crd of crds) {
    await objects.patch(crd, undefined, undefined, "ktube-testenv", true, PatchStrategy.ServerSideApply);
  }
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
