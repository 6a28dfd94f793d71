// The test control plane itself: it starts, serves, stops, and leaves nothing behind.
import { describe, expect, it } from "@jest/globals";
import { CoreV1Api } from "@kubernetes/client-node";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cacheDir, ControlPlane, ensureBinaries, eventually, kubectl, testKubeConfig } from "../src/index.ts";

/** PIDs of processes whose command line mentions `text`. */
function processesMentioning(text: string): number[] {
  try {
    return execFileSync("pgrep", ["-f", text], { encoding: "utf8" }).trim().split("\n").filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

describe("binaries", () => {
  it("are reused from the cache after the first build", async () => {
    const started = Date.now();
    const paths = await ensureBinaries();
    expect(Date.now() - started).toBeLessThan(2000);
    if (!process.env.KUBEBUILDER_ASSETS && !process.env.KTUBE_TESTENV_BIN) {
      expect(paths["kube-apiserver"]).toBe(join(cacheDir(), "kube-apiserver"));
    }
    const version = execFileSync(paths["kube-apiserver"], ["--version"], { encoding: "utf8" });
    expect(version).toMatch(/Kubernetes v1\.(3[3-9]|[4-9]\d)\./);
  });
});

describe("the Jest global setup's control plane", () => {
  it("serves the API with the CRDs, and kubectl works against it", async () => {
    const core = testKubeConfig().makeApiClient(CoreV1Api);
    const namespaces = await core.listNamespace();
    expect(namespaces.items.map((n) => n.metadata?.name)).toContain("kube-system");
    const { stdout } = await kubectl(["get", "crd", "-o", "name"]);
    expect(stdout).toContain("tunnelbindings.ktube.dev");
  });

  it("runs the garbage collector (kube-controller-manager)", async () => {
    const core = testKubeConfig().makeApiClient(CoreV1Api);
    const owner = await core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { generateName: "gc-owner-" } } });
    await core.createNamespacedConfigMap({
      namespace: "default",
      body: {
        metadata: {
          name: `${owner.metadata!.name}-child`,
          ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: owner.metadata!.name!, uid: owner.metadata!.uid! }],
        },
      },
    });
    await core.deleteNamespacedConfigMap({ namespace: "default", name: owner.metadata!.name! });
    await eventually(async () => {
      await expect(core.readNamespacedConfigMap({ namespace: "default", name: `${owner.metadata!.name}-child` })).rejects.toThrow();
    }, 30_000);
  });
});

describe("ControlPlane", () => {
  it("stops every process it started and removes its work directory", async () => {
    const cp = new ControlPlane();
    await cp.start();
    expect(processesMentioning(cp.workDir).length).toBeGreaterThanOrEqual(3);
    await cp.stop();
    expect(processesMentioning(cp.workDir)).toEqual([]);
    expect(existsSync(cp.workDir)).toBe(false);
  }, 120_000);

  it("leaves nothing running when its owner is killed with SIGKILL", async () => {
    const cli = spawn(process.execPath, [join(import.meta.dirname, "..", "src", "cli.ts"), "up"], {
      env: { ...process.env, NODE_OPTIONS: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    cli.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    cli.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
    const kubeconfig = await eventually(() => {
      const match = /export KUBECONFIG=(\S+)/.exec(out);
      if (!match) throw new Error(`not up yet:\n${out.slice(-3000)}`);
      return match[1]!;
    }, 120_000, 200);
    const workDir = join(kubeconfig, "..");
    expect(readFileSync(kubeconfig, "utf8")).toContain("certificate-authority-data");
    expect(processesMentioning(workDir).length).toBeGreaterThanOrEqual(3);
    cli.kill("SIGKILL");
    await eventually(() => expect(processesMentioning(workDir)).toEqual([]), 10_000);
  }, 180_000);
});
