// A one-file "envoy" binary for tests that install Envoy the way production does (download
// from a URL, check a pinned SHA-256, run it as another user):
//
//   #!/bin/sh
//   # fake-envoy ...
//   KTUBE_ENVOY_VALIDATOR='/…/envoy-validate' exec '/…/node' --disable-warning=ExperimentalWarning '/…/packages/fake-envoy/src/main.ts' "$@"
//
// Every path in it is absolute and the content depends only on them, so its SHA-256 is
// stable for a checkout and a test can serve the file and pin its hash. It runs from
// anywhere on this machine (a test VPS's overlays included) as long as the running user can
// read the checkout and Node and execute the config checker: the checker is cached under
// the builder's home (often /root, mode 0700), so unless that path is reachable by others
// it is copied next to this package (packages/fake-envoy/.cache/, mode 0755).
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { ensureEnvoyValidator } from "@ktube/envoy-validator";

const PACKAGE_DIR = resolve(import.meta.dirname, "..");
export const MAIN_SCRIPT = join(PACKAGE_DIR, "src", "main.ts");

export interface FakeEnvoyExecutableOptions {
  /** The Node 24 binary to run; default: the repository's node_modules/node, else this process's. */
  node?: string;
  /** The envoy-validate binary; default: the cached build, made reachable by every user. */
  validator?: string;
  /** More environment for the fake (exported in the script). */
  env?: Record<string, string>;
}

export interface FakeEnvoyExecutable {
  path: string;
  /** Hex SHA-256 of the file's bytes (what the edge controller pins). */
  sha256: string;
  content: string;
}

const shellQuote = (value: string): string => `'${value.replaceAll("'", `'\\''`)}'`;

/** The Node binary that runs main.ts: Node 22.18+ strips types by default; the repo pins 24. */
export function fakeEnvoyNode(): string {
  let dir = PACKAGE_DIR;
  for (;;) {
    const candidate = join(dir, "node_modules", "node", "bin", "node");
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return process.execPath;
    dir = parent;
  }
}

/** True when every directory above `path` is searchable and the file executable by others. */
function reachableByOthers(path: string): boolean {
  try {
    if ((statSync(path).mode & 0o005) !== 0o005) return false;
    for (let dir = dirname(path); ; dir = dirname(dir)) {
      if ((statSync(dir).mode & 0o001) === 0) return false;
      if (dirname(dir) === dir) return true;
    }
  } catch {
    return false;
  }
}

/** The config checker at a path every user may execute (a copy under .cache/ if needed). */
export async function sharedValidatorPath(): Promise<string> {
  const built = await ensureEnvoyValidator();
  if (reachableByOthers(built)) return built;
  const bytes = readFileSync(built);
  const hash = createHash("sha256").update(bytes).digest("hex").slice(0, 16);
  const dir = join(PACKAGE_DIR, ".cache", hash);
  const target = join(dir, "envoy-validate");
  if (!existsSync(target)) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(join(PACKAGE_DIR, ".cache"), 0o755);
    chmodSync(dir, 0o755);
    const staging = `${target}.${process.pid}`;
    copyFileSync(built, staging);
    chmodSync(staging, 0o755);
    renameSync(staging, target);
  }
  return target;
}

export function fakeEnvoyScript(options: { node: string; validator: string; env?: Record<string, string> }): string {
  const env = Object.entries({ KTUBE_ENVOY_VALIDATOR: options.validator, ...options.env })
    .map(([key, value]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`not an environment variable name: ${key}`);
      return `${key}=${shellQuote(value)}`;
    })
    .join(" ");
  return [
    "#!/bin/sh",
    "# fake-envoy: a test double of Envoy for KTube's edge (packages/fake-envoy). Takes Envoy's command line.",
    `${env} exec ${shellQuote(options.node)} --disable-warning=ExperimentalWarning ${shellQuote(MAIN_SCRIPT)} "$@"`,
    "",
  ].join("\n");
}

/** Writes the executable to `path` (mode 0755, atomically) and returns its SHA-256. */
export async function writeFakeEnvoyExecutable(path: string, options: FakeEnvoyExecutableOptions = {}): Promise<FakeEnvoyExecutable> {
  const content = fakeEnvoyScript({
    node: options.node ?? fakeEnvoyNode(),
    validator: options.validator ?? (await sharedValidatorPath()),
    ...(options.env ? { env: options.env } : {}),
  });
  const staging = `${path}.${process.pid}.tmp`;
  writeFileSync(staging, content, { mode: 0o755 });
  chmodSync(staging, 0o755);
  renameSync(staging, path);
  return { path, sha256: createHash("sha256").update(content).digest("hex"), content };
}
