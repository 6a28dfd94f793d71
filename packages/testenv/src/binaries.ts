// Finds the control-plane binaries, or builds them once from the Go module proxy.
//
// Order: $KUBEBUILDER_ASSETS, then $KTUBE_TESTENV_BIN (directories holding etcd,
// kube-apiserver and kube-controller-manager), then a cache outside the repository
// keyed by the pinned versions, filled by `go build` from go/kube and go/etcd.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { promisify } from "node:util";
import { isProcessAlive, sleep } from "./process.ts";

const run = promisify(execFile);

export const BINARIES = ["etcd", "kube-apiserver", "kube-controller-manager"] as const;
export type BinaryName = (typeof BINARIES)[number];
export type BinaryPaths = Record<BinaryName, string>;

const GO_DIR = join(import.meta.dirname, "..", "go");

export class TestenvSetupError extends Error {
  override name = "TestenvSetupError";
}

/** The pinned versions, read from the Go modules that build them. */
export function pinnedVersions(): { kubernetes: string; etcd: string } {
  const kube = readFileSync(join(GO_DIR, "kube", "go.mod"), "utf8");
  const etcd = readFileSync(join(GO_DIR, "etcd", "go.mod"), "utf8");
  const kubernetes = /^\s*(?:require\s+)?k8s\.io\/kubernetes (v\S+)/m.exec(kube)?.[1];
  const etcdVersion = /go\.etcd\.io\/etcd\/server\/v3 (v\S+)/.exec(etcd)?.[1];
  if (!kubernetes || !etcdVersion) throw new TestenvSetupError(`cannot read the pinned versions from ${GO_DIR}`);
  return { kubernetes, etcd: etcdVersion };
}

export function cacheDir(): string {
  const base =
    process.env.KTUBE_TESTENV_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "ktube", "testenv");
  const { kubernetes, etcd } = pinnedVersions();
  const hash = createHash("sha256");
  hash.update(JSON.stringify(ldflags(kubernetes)));
  for (const mod of ["kube", "etcd"]) {
    hash.update(readFileSync(join(GO_DIR, mod, "go.mod")));
    hash.update(readFileSync(join(GO_DIR, mod, "go.sum")));
  }
  return join(base, `kubernetes-${kubernetes}_etcd-${etcd}_${hash.digest("hex").slice(0, 12)}`);
}

/**
 * Linker flags: strip symbols, and stamp the Kubernetes version the way the release
 * build does; without it the API server reports v0.0.0, which clients such as Helm
 * (kubeVersion constraints) and kubectl's version skew check trip over.
 */
function ldflags(kubernetes: string): { kube: string; etcd: string } {
  const [major, minor] = kubernetes.replace(/^v/, "").split(".");
  const stamp = ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"].flatMap((pkg) => [
    `-X ${pkg}.gitVersion=${kubernetes}`,
    `-X ${pkg}.gitMajor=${major}`,
    `-X ${pkg}.gitMinor=${minor}`,
    `-X ${pkg}.gitTreeState=clean`,
  ]);
  return { kube: ["-s", "-w", ...stamp].join(" "), etcd: "-s -w" };
}

function binariesIn(dir: string): BinaryPaths | undefined {
  const paths = Object.fromEntries(BINARIES.map((b) => [b, join(dir, b)])) as BinaryPaths;
  return BINARIES.every((b) => existsSync(paths[b])) ? paths : undefined;
}

/** Returns usable binaries, building them first if no directory provides them. */
export async function ensureBinaries(log: (line: string) => void = () => {}): Promise<BinaryPaths> {
  for (const variable of ["KUBEBUILDER_ASSETS", "KTUBE_TESTENV_BIN"]) {
    const dir = process.env[variable];
    if (!dir) continue;
    const found = binariesIn(dir);
    if (found) return found;
    throw new TestenvSetupError(`$${variable}=${dir} does not hold all of ${BINARIES.join(", ")}`);
  }
  const dir = cacheDir();
  const cached = binariesIn(dir);
  if (cached) return cached;
  await withBuildLock(dir, async () => {
    if (binariesIn(dir)) return;
    await buildInto(dir, log);
  });
  const built = binariesIn(dir);
  if (!built) throw new TestenvSetupError(`the build finished but ${dir} lacks some binaries`);
  return built;
}

export function findGo(): string {
  const candidates = [
    ...(process.env.PATH ?? "").split(delimiter).map((p) => join(p, "go")),
    "/usr/local/go/bin/go",
  ];
  const go = candidates.find((c) => c !== "go" && existsSync(c));
  if (!go) {
    throw new TestenvSetupError(
      "packages/testenv builds etcd and kube-apiserver with Go, and no `go` was found. Install Go 1.26 " +
        "(e.g. to /usr/local/go) or point $KTUBE_TESTENV_BIN at a directory with etcd, kube-apiserver and kube-controller-manager.",
    );
  }
  return go;
}

async function buildInto(dir: string, log: (line: string) => void): Promise<void> {
  const go = findGo();
  const { kubernetes, etcd } = pinnedVersions();
  const staging = `${dir}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const env = { ...process.env, CGO_ENABLED: "0", GOFLAGS: "-mod=readonly -buildvcs=false", PATH: `${dirname(go)}${delimiter}${process.env.PATH ?? ""}` };
  const started = Date.now();
  log(`building kube-apiserver and kube-controller-manager ${kubernetes}, etcd ${etcd} into ${dir} (first run only; ~10-20 min on 2 cores)`);
  const flags = ldflags(kubernetes);
  const jobs: Array<[string, string, string, string[]]> = [
    [join(GO_DIR, "kube"), flags.kube, `${staging}/`, ["k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager"]],
    [join(GO_DIR, "etcd"), flags.etcd, join(staging, "etcd"), ["go.etcd.io/etcd/server/v3"]],
  ];
  for (const [cwd, linkerFlags, output, packages] of jobs) {
    try {
      await run(go, ["build", "-trimpath", `-ldflags=${linkerFlags}`, "-o", output, ...packages], {
        cwd,
        env,
        maxBuffer: 64 * 1024 * 1024,
      });
    } catch (error) {
      rmSync(staging, { recursive: true, force: true });
      const stderr = (error as { stderr?: string }).stderr ?? String(error);
      throw new TestenvSetupError(`go build in ${cwd} failed:\n${stderr.slice(-4000)}`);
    }
  }
  mkdirSync(dirname(dir), { recursive: true });
  renameSync(staging, dir);
  log(`built the control plane in ${Math.round((Date.now() - started) / 1000)} s`);
}

/**
 * Serialises builds between processes (nx runs several test projects at once):
 * the lock file holds the builder's pid, and a lock whose builder died is taken over.
 */
async function withBuildLock(dir: string, body: () => Promise<void>): Promise<void> {
  mkdirSync(dirname(dir), { recursive: true });
  const lock = `${dir}.lock`;
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: "wx" });
      break;
    } catch {
      let owner: number;
      try {
        owner = Number(readFileSync(lock, "utf8"));
      } catch {
        continue; // released between our attempt and the read
      }
      if (owner > 0 && !isProcessAlive(owner)) rmSync(lock, { force: true });
      else await sleep(2000);
      if (binariesIn(dir)) return;
    }
  }
  try {
    await body();
  } finally {
    rmSync(lock, { force: true });
  }
}
