// Validates Envoy v3 configuration without an Envoy binary.
//
// The checker is the small Go program in go/ (strict protojson + protoc-gen-validate's
// ValidateAll over every message, Any bodies included), linked against the go-control-plane
// release pinned in go/go.mod. It is built once from the Go module proxy into a cache
// outside the repository, keyed by a hash of its sources, the way packages/testenv builds
// the control plane; $KTUBE_ENVOY_VALIDATOR points at a prebuilt binary instead.
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

const GO_DIR = join(import.meta.dirname, "..", "go");
/** The files whose content decides the binary; the cache directory is named by their hash. */
const SOURCES = ["go.mod", "go.sum", "main.go"] as const;
const BINARY = "envoy-validate";

/** What a document is, which decides the root message it is parsed into. */
export type EnvoyDocumentKind =
  | "bootstrap" // envoy.config.bootstrap.v3.Bootstrap
  | "listener" // envoy.config.listener.v3.Listener
  | "cluster" // envoy.config.cluster.v3.Cluster
  | "secret" // envoy.extensions.transport_sockets.tls.v3.Secret
  | "lds" // envoy.service.discovery.v3.DiscoveryResponse of Listeners (file-based xDS)
  | "cds" // … of Clusters
  | "sds"; // … of Secrets

/** Envoy config as its proto3 JSON mapping (what file-based xDS reads, YAML aside). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface EnvoyDocument {
  kind: EnvoyDocumentKind;
  json: JsonObject;
}

export interface EnvoyValidationResult {
  ok: boolean;
  /** "path: reason", the path leading into `json` (resources[0].filter_chains[1].filters[0].typed_config.stat_prefix). */
  errors: string[];
}

export class EnvoyValidatorSetupError extends Error {
  override name = "EnvoyValidatorSetupError";
}

export interface EnsureOptions {
  /** Progress lines (the first build takes minutes). */
  log?: (line: string) => void;
}

function cacheBase(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "ktube", "envoy-validator");
}

/** The pinned module versions, read from go/go.mod. */
export function pinnedVersions(): { goControlPlane: string; protobuf: string; cncfXds: string; protocGenValidate: string } {
  const goMod = readFileSync(join(GO_DIR, "go.mod"), "utf8");
  const version = (path: string): string => {
    const found = new RegExp(`^\\s*(?:require\\s+)?${path.replaceAll(".", "\\.")} (v\\S+)`, "m").exec(goMod)?.[1];
    if (!found) throw new EnvoyValidatorSetupError(`cannot read the pinned version of ${path} from ${join(GO_DIR, "go.mod")}`);
    return found;
  };
  return {
    goControlPlane: version("github.com/envoyproxy/go-control-plane/envoy"),
    protobuf: version("google.golang.org/protobuf"),
    cncfXds: version("github.com/cncf/xds/go"),
    protocGenValidate: version("github.com/envoyproxy/protoc-gen-validate"),
  };
}

/** Where the binary built from the current sources lives (whether or not it is built yet). */
export function cachedBinaryPath(): string {
  const hash = createHash("sha256");
  for (const file of SOURCES) hash.update(`${file}\0`).update(readFileSync(join(GO_DIR, file)));
  return join(cacheBase(), hash.digest("hex").slice(0, 16), BINARY);
}

function findGo(): string {
  const candidates = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean).map((p) => join(p, "go")), "/usr/local/go/bin/go"];
  const go = candidates.find((c) => existsSync(c));
  if (!go) {
    throw new EnvoyValidatorSetupError(
      "@ktube/envoy-validator builds its checker (packages/envoy-validator/go) with Go, and no `go` was found on $PATH " +
        "or at /usr/local/go/bin/go. Install Go 1.26 or newer (the official tarball unpacked to /usr/local/go, then " +
        "export PATH=/usr/local/go/bin:$PATH), or set $KTUBE_ENVOY_VALIDATOR to an envoy-validate binary built from that directory " +
        "(cd packages/envoy-validator/go && go build -o envoy-validate .).",
    );
  }
  return go;
}

/**
 * Returns the path of the envoy-validate binary: $KTUBE_ENVOY_VALIDATOR if set, else the
 * cached build for the current sources, building it first if needed (minutes, once).
 */
export async function ensureEnvoyValidator(options: EnsureOptions = {}): Promise<string> {
  const override = process.env.KTUBE_ENVOY_VALIDATOR;
  if (override) {
    if (!existsSync(override)) throw new EnvoyValidatorSetupError(`$KTUBE_ENVOY_VALIDATOR=${override} does not exist`);
    return override;
  }
  const binary = cachedBinaryPath();
  if (existsSync(binary)) return binary;
  const dir = dirname(binary);
  await withBuildLock(dir, async () => {
    if (!existsSync(binary)) await build(dir, options.log ?? (() => {}));
  });
  if (!existsSync(binary)) throw new EnvoyValidatorSetupError(`the build finished but ${binary} is missing`);
  return binary;
}

async function build(dir: string, log: (line: string) => void): Promise<void> {
  const go = findGo();
  const staging = `${dir}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const env = {
    ...process.env,
    CGO_ENABLED: "0",
    // go.sum is committed and complete: a build never rewrites the package's go.mod/go.sum.
    GOFLAGS: "-mod=readonly -buildvcs=false",
    PATH: `${dirname(go)}${delimiter}${process.env.PATH ?? ""}`,
  };
  const { goControlPlane } = pinnedVersions();
  const started = Date.now();
  log(`building envoy-validate (go-control-plane ${goControlPlane}) into ${dir} (first run only: 1–2 minutes on 2 cores, module downloads included)`);
  try {
    await run(go, ["build", "-trimpath", "-ldflags=-s -w", "-o", join(staging, BINARY), "."], { cwd: GO_DIR, env, maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    const stderr = (error as { stderr?: string }).stderr || String(error);
    throw new EnvoyValidatorSetupError(`go build in ${GO_DIR} failed:\n${stderr.slice(-4000)}`);
  }
  mkdirSync(dirname(dir), { recursive: true });
  rmSync(dir, { recursive: true, force: true });
  renameSync(staging, dir);
  log(`built envoy-validate in ${Math.round((Date.now() - started) / 1000)} s`);
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Serialises builds between processes (Jest workers, nx projects): the lock file holds the builder's pid. */
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
      if (existsSync(join(dir, BINARY))) return;
    }
  }
  try {
    await body();
  } finally {
    rmSync(lock, { force: true });
  }
}

function isResult(value: unknown): value is EnvoyValidationResult {
  if (typeof value !== "object" || value === null) return false;
  const { ok, errors } = value as Record<string, unknown>;
  return typeof ok === "boolean" && Array.isArray(errors) && errors.every((e) => typeof e === "string");
}

/** Validates a batch of documents with one run of the checker; results are in input order. */
export async function validateEnvoy(docs: readonly EnvoyDocument[], options: EnsureOptions = {}): Promise<EnvoyValidationResult[]> {
  if (docs.length === 0) return [];
  const binary = await ensureEnvoyValidator(options);
  const input = docs.map((doc) => JSON.stringify({ kind: doc.kind, json: doc.json })).join("\n") + "\n";
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(binary, [], { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
    child.once("error", reject);
    child.once("close", (exitCode) => resolve({ code: exitCode, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") }));
    child.stdin.on("error", () => {}); // EPIPE if it exits early; the exit code tells
    child.stdin.end(input);
  });
  if (code !== 0) throw new EnvoyValidatorSetupError(`${binary} exited with ${code}: ${stderr.trim()}`);
  const results = stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line): unknown => JSON.parse(line));
  if (results.length !== docs.length || !results.every(isResult)) {
    throw new EnvoyValidatorSetupError(`${binary} answered ${results.length} results for ${docs.length} documents:\n${stdout.slice(0, 2000)}`);
  }
  return results;
}

/** Validates one document. */
export async function validateEnvoyDocument(doc: EnvoyDocument, options: EnsureOptions = {}): Promise<EnvoyValidationResult> {
  const [result] = await validateEnvoy([doc], options);
  if (!result) throw new EnvoyValidatorSetupError("no result");
  return result;
}
