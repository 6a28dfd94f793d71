#!/usr/bin/env node
// ktube-testenv: `up` starts a local control plane with the CRDs and stays up until
// interrupted; `build` only builds (or finds) the binaries.
import { ensureBinaries } from "./binaries.ts";
import type { ControlPlane } from "./control-plane.ts";
import { startWithCrds } from "./crds.ts";

const log = (line: string): void => void process.stderr.write(`[testenv] ${line}\n`);
const [command = "help"] = process.argv.slice(2);

async function up(): Promise<void> {
  let controlPlane: ControlPlane | undefined;
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log("stopping");
    await controlPlane?.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());
  controlPlane = await startWithCrds({ log });
  log(`API server ${controlPlane.server}; CRDs installed; Ctrl-C stops it`);
  console.log(`export KUBECONFIG=${controlPlane.kubeconfigPath}`);
}

switch (command) {
  case "up":
    await up();
    break;
  case "build": {
    const paths = await ensureBinaries(log);
    for (const [name, path] of Object.entries(paths)) console.log(`${name}\t${path}`);
    break;
  }
  default:
    console.log("usage: ktube-testenv up | build");
    process.exit(command === "help" || command === "--help" ? 0 : 2);
}
