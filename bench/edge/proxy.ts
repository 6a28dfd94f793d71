// The VPS's proxy: the files the edge controller renders for a plan (`renderEnvoyConfig`),
// served by fake-envoy, or by a real Envoy when ENVOY_BIN names one, inside the VPS
// namespace. The files go to a scratch folder instead of /etc/ktube/envoy; their content is
// the rendered one with that folder in place of the VPS's path.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ENVOY_CONFIG_DIR, type EdgePlan } from "@ktube/edge-controller/envoy/plan";
import { renderEnvoyConfig } from "@ktube/edge-controller/envoy/render";
import { writeFakeEnvoyExecutable } from "@ktube/fake-envoy";
import type { Topology } from "./topology.ts";

export interface ProxyBinary {
  /** `fake-envoy` or `envoy`. */
  kind: "fake-envoy" | "envoy";
  path: string;
  /** What `--version` says (fake-envoy: the Envoy release it stands in for). */
  version: string;
  /** For the table: "fake-envoy (Envoy 1.x API)" or "Envoy 1.x". */
  label: string;
}

export interface RunningProxy {
  child: ChildProcess;
  pid: number;
  stderr: () => string;
}

/** The proxy to run: $ENVOY_BIN when set, else a fake-envoy executable written to `scratch`. */
export async function proxyBinary(scratch: string): Promise<ProxyBinary> {
  const envoyBin = process.env.ENVOY_BIN;
  const kind = envoyBin ? "envoy" : "fake-envoy";
  const path = envoyBin ?? (await writeFakeEnvoyExecutable(join(scratch, "fake-envoy"))).path;
  const text = execFileSync(path, ["--version"], { encoding: "utf8" });
  const version = /version:\s*\S*?\/(\d+\.\d+\.\d+)\//.exec(text)?.[1] ?? text.trim();
  return { kind, path, version, label: kind === "envoy" ? `Envoy ${version}` : `fake-envoy (for Envoy ${version})` };
}

/** Writes the plan's files below `dir` and starts the proxy on them in the VPS namespace. */
export async function startProxy(binary: ProxyBinary, topology: Topology, plan: EdgePlan, dir: string): Promise<RunningProxy> {
  let bootstrap = "";
  for (const file of renderEnvoyConfig(plan).files) {
    const path = file.path.replace(ENVOY_CONFIG_DIR, dir);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, file.content.replaceAll(`"${ENVOY_CONFIG_DIR}`, `"${dir}`));
    if (path.endsWith("/bootstrap.json")) bootstrap = path;
  }
  // --base-id: Envoy's shared memory is not per network namespace; a real Envoy elsewhere on the host must not collide with this one.
  const args = ["-c", bootstrap, "--drain-time-s", "1", "--log-level", "warn", "--base-id", String(4000 + Math.floor(Math.random() * 1000))];
  const child = spawn("ip", ["netns", "exec", topology.ns.vps, binary.path, ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  return { child, pid: child.pid!, stderr: () => stderr };
}

/** SIGTERM, then SIGKILL after 5 s. */
export async function stopProxy(proxy: RunningProxy): Promise<void> {
  if (proxy.child.exitCode !== null || proxy.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proxy.child.once("exit", () => resolve()));
  proxy.child.kill("SIGTERM");
  const timer = setTimeout(() => proxy.child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}
