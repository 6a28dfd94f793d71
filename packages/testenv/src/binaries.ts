// Finds the test tools, or builds them once from the Go module proxy.
//
// The control plane (etcd, kube-apiserver, kube-controller-manager) comes from
// $KUBEBUILDER_ASSETS, then $KTUBE_TESTENV_BIN (directories holding all three), then a
// cache outside the repository keyed by the pinned versions, filled by `go build` from
// the small modules in go/. Helm, for the chart tests, is built the same way.
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

/** One `go build` of packages of a module under go/. */
interface GoBuild {
  module: "kube" | "etcd" | "helm";
  packages: string[];
  /** A file path for one package, a directory (ending in /) for several. */
  output: string;
  ldflags: string;
}

/** A set of binaries built together into one cache directory. */
interface ToolSet<T extends string = string> {
  label: string;
  files: readonly T[];
  builds: GoBuild[];
  /** Directory name in the cache, before the content hash. */
  cacheName: string;
}

function moduleVersion(module: string, path: string): string {
  const goMod = readFileSync(join(GO_DIR, module, "go.mod"), "utf8");
  const version = new RegExp(`^\\s*(?:require\\s+)?${path.replaceAll(".", "\\.")} (v\\S+)`, "m").exec(goMod)?.[1];
  if (!version) throw new TestenvSetupError(`cannot read the pinned version of ${path} from ${join(GO_DIR, module, "go.mod")}`);
  return version;
}

/** The pinned versions, read from the Go modules that build them. */
export function pinnedVersions(): { kubernetes: string; etcd: string; helm: string } {
  return {
    kubernetes: moduleVersion("kube", "k8s.io/kubernetes"),
    etcd: moduleVersion("etcd", "go.etcd.io/etcd/server/v3"),
    helm: moduleVersion("helm", "helm.sh/helm/v4"),
  };
}

/**
 * Linker flags for Kubernetes: strip symbols, and stamp the version the way the release
 * build does; without it the API server reports v0.0.0, which clients such as Helm
 * (kubeVersion constraints) and kubectl's version skew check trip over.
 */
function kubeLdflags(kubernetes: string): string {
  const [major, minor] = kubernetes.replace(/^v/, "").split(".");
  const stamp = ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"].flatMap((pkg) => [
    `-X ${pkg}.gitVersion=${kubernetes}`,
    `-X ${pkg}.gitMajor=${major}`,
    `-X ${pkg}.gitMinor=${minor}`,
    `-X ${pkg}.gitTreeState=clean`,
  ]);
  return ["-s", "-w", ...stamp].join(" ");
}

function controlPlaneTools(): ToolSet<BinaryName> {
  const { kubernetes, etcd } = pinnedVersions();
  return {
    label: `kube-apiserver and kube-controller-manager ${kubernetes}, etcd ${etcd}`,
    files: BINARIES,
    cacheName: `kubernetes-${kubernetes}_etcd-${etcd}`,
    builds: [
      { module: "kube", packages: ["k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager"], output: "/", ldflags: kubeLdflags(kubernetes) },
      { module: "etcd", packages: ["go.etcd.io/etcd/server/v3"], output: "etcd", ldflags: "-s -w" },
    ],
  };
}

function helmTools(): ToolSet<"helm"> {
  const { helm } = pinnedVersions();
  return {
    label: `helm ${helm}`,
    files: ["helm"],
    cacheName: `helm-${helm}`,
    builds: [{ module: "helm", packages: ["helm.sh/helm/v4/cmd/helm"], output: "helm", ldflags: `-s -w -X helm.sh/helm/v4/internal/version.version=${helm}` }],
  };
}

function cacheBase(): string {
  return process.env.KTUBE_TESTENV_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "ktube", "testenv");
}

/** The cache directory of a tool set: its versions plus a hash of how it is built. */
function toolDir(tools: ToolSet): string {
  const hash = createHash("sha256").update(JSON.stringify(tools.builds));
  for (const module of new Set(tools.builds.map((b) => b.module))) {
    hash.update(readFileSync(join(GO_DIR, module, "go.mod")));
    hash.update(readFileSync(join(GO_DIR, module, "go.sum")));
  }
  return join(cacheBase(), `${tools.cacheName}_${hash.digest("hex").slice(0, 12)}`);
}

/** Where the control-plane binaries are cached. */
export const cacheDir = (): string => toolDir(controlPlaneTools());

function filesIn<T extends string>(dir: string, files: readonly T[]): Record<T, string> | undefined {
  const paths = Object.fromEntries(files.map((f) => [f, join(dir, f)])) as Record<T, string>;
  return files.every((f) => existsSync(paths[f])) ? paths : undefined;
}

async function ensureBuilt<T extends string>(tools: ToolSet<T>, log: (line: string) => void): Promise<Record<T, string>> {
  const dir = toolDir(tools);
  const cached = filesIn(dir, tools.files);
  if (cached) return cached;
  await withBuildLock(dir, async () => {
    if (!filesIn(dir, tools.files)) await buildInto(dir, tools, log);
  });
  const built = filesIn(dir, tools.files);
  if (!built) throw new TestenvSetupError(`the build finished but ${dir} lacks some of ${tools.files.join(", ")}`);
  return built;
}

/** Returns usable control-plane binaries, building them first if no directory provides them. */
export async function ensureBinaries(log: (line: string) => void = () => {}): Promise<BinaryPaths> {
  for (const variable of ["KUBEBUILDER_ASSETS", "KTUBE_TESTENV_BIN"]) {
    const dir = process.env[variable];
    if (!dir) continue;
    const found = filesIn(dir, BINARIES);
    if (found) return found;
    throw new TestenvSetupError(`$${variable}=${dir} does not hold all of ${BINARIES.join(", ")}`);
  }
  return ensureBuilt(controlPlaneTools(), log);
}

/** Returns the path of helm ($KTUBE_HELM if set), building the pinned version once if needed. */
export async function ensureHelm(log: (line: string) => void = () => {}): Promise<string> {
  if (process.env.KTUBE_HELM) {
    if (!existsSync(process.env.KTUBE_HELM)) throw new TestenvSetupError(`$KTUBE_HELM=${process.env.KTUBE_HELM} does not exist`);
    return process.env.KTUBE_HELM;
  }
  return (await ensureBuilt(helmTools(), log)).helm;
}

export function findGo(): string {
  const candidates = [...(process.env.PATH ?? "").split(delimiter).map((p) => join(p, "go")), "/usr/local/go/bin/go"];
  const go = candidates.find((c) => c !== "go" && existsSync(c));
  if (!go) {
    throw new TestenvSetupError(
      "packages/testenv builds etcd, kube-apiserver and helm with Go, and no `go` was found. Install Go 1.26 " +
        "(e.g. to /usr/local/go) or point $KTUBE_TESTENV_BIN at a directory with etcd, kube-apiserver and kube-controller-manager.",
    );
  }
  return go;
}

async function buildInto(dir: string, tools: ToolSet, log: (line: string) => void): Promise<void> {
  const go = findGo();
  const staging = `${dir}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const env = { ...process.env, CGO_ENABLED: "0", GOFLAGS: "-mod=readonly -buildvcs=false", PATH: `${dirname(go)}${delimiter}${process.env.PATH ?? ""}` };
  const started = Date.now();
  log(`building ${tools.label} into ${dir} (first run only: about 6 minutes for the control plane and 2 for helm on 2 cores)`);
  for (const build of tools.builds) {
    const cwd = join(GO_DIR, build.module);
    const output = build.output === "/" ? `${staging}/` : join(staging, build.output);
    try {
      await run(go, ["build", "-trimpath", `-ldflags=${build.ldflags}`, "-o", output, ...build.packages], { cwd, env, maxBuffer: 64 * 1024 * 1024 });
    } catch (error) {
      rmSync(staging, { recursive: true, force: true });
      const stderr = (error as { stderr?: string }).stderr ?? String(error);
      throw new TestenvSetupError(`go build in ${cwd} failed:\n${stderr.slice(-4000)}`);
    }
  }
  mkdirSync(dirname(dir), { recursive: true });
  renameSync(staging, dir);
  log(`built ${tools.label} in ${Math.round((Date.now() - started) / 1000)} s`);
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
      if (existsSync(dir)) return;
    }
  }
  try {
    await body();
  } finally {
    rmSync(lock, { force: true });
  }
}
