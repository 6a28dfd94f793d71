export { ControlPlane, type ControlPlaneOptions } from "./control-plane.ts";
export { ensureBinaries, ensureHelm, cacheDir, pinnedVersions, TestenvSetupError, type BinaryPaths } from "./binaries.ts";
export { installCrds, readCrds, REPO_CRD_DIR, startWithCrds } from "./crds.ts";
export { createTestNamespace, deleteTestNamespace, eventually, kubectl, testKubeConfig } from "./helpers.ts";
export { freePort, sleep } from "./process.ts";
export { ktubeStatus, conditionOf, waitForKtubeCondition, afterCreationSecond, TestProcess, type KtubeKind, type KtubeStatus, type ObjectCondition } from "./ktube-objects.ts";
export { kubeConfigAs } from "./service-account.ts";
export { LocalKubelet, type LocalKubeletOptions, type LocalPod } from "./local-kubelet.ts";
export { startVps, type Vps, type VpsExecResult, type VpsOptions } from "./vps.ts";
