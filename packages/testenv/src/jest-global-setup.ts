// Jest globalSetup: one control plane per test run of a project, CRDs installed,
// and KUBECONFIG pointing at it for every test worker.
import type { ControlPlane } from "./control-plane.ts";
import { startWithCrds } from "./crds.ts";

declare global {
  var __ktubeTestenv: ControlPlane | undefined;
}

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  const controlPlane = await startWithCrds({ log: (line) => process.stderr.write(`[testenv] ${line}\n`) });
  globalThis.__ktubeTestenv = controlPlane;
  process.env.KUBECONFIG = controlPlane.kubeconfigPath;
  process.stderr.write(`[testenv] control plane up at ${controlPlane.server} in ${Date.now() - started} ms\n`);
}
