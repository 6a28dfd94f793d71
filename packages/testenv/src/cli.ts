#!/usr/bin/env node
// ktube-testenv: `up` starts a local control plane with the CRDs and stays up until
// interrupted; `build` only builds (or finds) the binaries.
import { ensureBinaries } from "./binaries.ts";
import { ControlPlane } from "./control-plane.ts";
import { installCrds } from "./crds.ts";

const log = (line: string): void => void process.stderr.write(`[testenv] ${line}\n`);
const [command = "help"] = process.argv.slice(2);

async function up(): Promise<void> {
  const controlPlane = new ControlPlane({ log });
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log("stopping");
    await controlPlane.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());
  try {
    await controlPlane.start();
    await installCrds(controlPlane.kubeConfig());
  } catch (error) {
    await controlPlane.stop();
    throw error;
  }
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
