// Small helpers for tests that run against the control plane.
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { sleep } from "./process.ts";

const run = promisify(execFile);

/** The KubeConfig of the control plane the Jest global setup started. */
export function testKubeConfig(): KubeConfig {
  const path = process.env.KUBECONFIG;
  if (!path || !existsSync(path)) {
    throw new Error("KUBECONFIG is not set: run this test through jest with @ktube/testenv's globalSetup");
  }
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/** Creates a fresh namespace for one test file and returns its name. */
export async function createTestNamespace(kc: KubeConfig, prefix: string, labels: Record<string, string> = {}): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const ns = await core.createNamespace({ body: { metadata: { generateName: `${prefix}-`, labels } } });
  return ns.metadata!.name!;
}

export async function deleteTestNamespace(kc: KubeConfig, name: string): Promise<void> {
  await kc.makeApiClient(CoreV1Api).deleteNamespace({ name }).catch(() => undefined);
}

/** Retries `check` until it stops throwing, then returns its result; rethrows the last error after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 10_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(intervalMs);
    }
  }
}

/** Runs the real kubectl against the test control plane. */
export async function kubectl(args: string[], input?: string): Promise<{ stdout: string; stderr: string; code: number }> {
  const env = { ...process.env };
  try {
    const child = run("kubectl", args, { env, maxBuffer: 16 * 1024 * 1024 });
    if (input !== undefined) {
      child.child.stdin?.end(input);
    }
    const { stdout, stderr } = await child;
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string; code?: number | string };
    if (e.code === "ENOENT") {
      throw new Error("kubectl was not found on PATH: install kubectl 1.32 or newer (https://kubernetes.io/docs/tasks/tools/)");
    }
    return { stdout: e.stdout ?? "", stderr: e.stderr ?? "", code: typeof e.code === "number" ? e.code : 1 };
  }
}
