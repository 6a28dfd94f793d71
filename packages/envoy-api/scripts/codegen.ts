// Generates src/gen/ from the Envoy API descriptor that @ktube/envoy-validator's checker
// dumps (`envoy-validate --descriptor-set`: every .proto file it links from the pinned
// go-control-plane release), so the types KTube builds Envoy config with and the rules the
// checker applies come from one Envoy API version.
//
// The descriptor is cut down to the files KTube's edge config uses (ROOT_FILES) and the
// files they import, turned into a CodeGeneratorRequest and piped to protoc-gen-es, as protoc
// or buf would. google/protobuf/* are not generated: protoc-gen-es imports the well-known
// types from @bufbuild/protobuf/wkt.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  CodeGeneratorRequestSchema,
  CodeGeneratorResponseSchema,
  FileDescriptorSetSchema,
  type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import { ensureEnvoyValidator, pinnedVersions } from "@ktube/envoy-validator";
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const PACKAGE_DIR = join(import.meta.dirname, "..");
export const GEN_DIR = join(PACKAGE_DIR, "src", "gen");

/** The .proto files whose messages KTube emits or names in an `@type`; their imports come along. */
export const ROOT_FILES = [
  "envoy/config/bootstrap/v3/bootstrap.proto",
  "envoy/config/listener/v3/listener.proto",
  "envoy/config/cluster/v3/cluster.proto",
  "envoy/config/endpoint/v3/endpoint.proto",
  "envoy/config/core/v3/health_check.proto",
  "envoy/config/core/v3/config_source.proto",
  "envoy/config/core/v3/proxy_protocol.proto",
  "envoy/service/discovery/v3/discovery.proto",
  "envoy/extensions/transport_sockets/tls/v3/tls.proto",
  "envoy/extensions/transport_sockets/tls/v3/secret.proto",
  "envoy/extensions/transport_sockets/proxy_protocol/v3/upstream_proxy_protocol.proto",
  "envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto",
  "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto",
  "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto",
  "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
  "envoy/extensions/filters/http/router/v3/router.proto",
  "envoy/extensions/filters/udp/udp_proxy/v3/udp_proxy.proto",
  "envoy/extensions/filters/udp/udp_proxy/v3/route.proto", // the Route action udp_proxy's matcher names
  "xds/type/matcher/v3/matcher.proto",
] as const;

/** protoc-gen-es options: TypeScript with `.ts` imports, and no `enum` (the repo compiles with erasableSyntaxOnly). */
export const PLUGIN_PARAMETER = "target=ts,import_extension=ts,erasable_syntax=true";

/** Reads the FileDescriptorSet from the checker (building it first if needed). */
export async function dumpDescriptorSet(log: (line: string) => void = () => {}): Promise<Uint8Array> {
  const binary = await ensureEnvoyValidator({ log });
  const { stdout } = await run(binary, ["--descriptor-set"], { encoding: "buffer", maxBuffer: 256 * 1024 * 1024 });
  return new Uint8Array(stdout);
}

/** `roots` and everything they import, in the descriptor set's (topological) order. */
export function selectFiles(all: readonly FileDescriptorProto[], roots: readonly string[]): FileDescriptorProto[] {
  const byName = new Map(all.map((file) => [file.name, file]));
  const wanted = new Set<string>();
  const visit = (name: string): void => {
    if (wanted.has(name)) return;
    const file = byName.get(name);
    if (!file) throw new Error(`${name} is not in the descriptor set (is its Go package linked into packages/envoy-validator/go/main.go?)`);
    wanted.add(name);
    for (const dependency of file.dependency) visit(dependency);
  };
  for (const root of roots) visit(root);
  return all.filter((file) => wanted.has(file.name));
}

function header(file: string): string {
  const { goControlPlane, cncfXds } = pinnedVersions();
  return [
    `// GENERATED FILE, DO NOT EDIT. ${file} from github.com/envoyproxy/go-control-plane/envoy ${goControlPlane}`,
    `// (cncf/xds ${cncfXds}), as linked into packages/envoy-validator (envoy-validate --descriptor-set),`,
    `// by protoc-gen-es (${PLUGIN_PARAMETER}). Regenerate: npm run generate -w @ktube/envoy-api`,
    "",
  ].join("\n");
}

async function runPlugin(request: Uint8Array): Promise<Uint8Array> {
  const require = createRequire(import.meta.url);
  const pluginPackage = require.resolve("@bufbuild/protoc-gen-es/package.json");
  const plugin = join(dirname(pluginPackage), "bin", "protoc-gen-es");
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [plugin], { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
    child.once("error", reject);
    child.once("close", (code) => {
      if (code === 0) resolve(new Uint8Array(Buffer.concat(out)));
      else reject(new Error(`protoc-gen-es exited with ${code}: ${Buffer.concat(err).toString("utf8")}`));
    });
    child.stdin.end(request);
  });
}

/** The generated files, path relative to src/gen -> content. */
export async function generate(descriptorSet: Uint8Array): Promise<Map<string, string>> {
  const set = fromBinary(FileDescriptorSetSchema, descriptorSet);
  const files = selectFiles(set.file, ROOT_FILES);
  const request = create(CodeGeneratorRequestSchema, {
    fileToGenerate: files.map((file) => file.name).filter((name) => !name.startsWith("google/protobuf/")),
    parameter: PLUGIN_PARAMETER,
    protoFile: files,
  });
  const response = fromBinary(CodeGeneratorResponseSchema, await runPlugin(toBinary(CodeGeneratorRequestSchema, request)));
  if (response.error) throw new Error(`protoc-gen-es: ${response.error}`);
  const out = new Map<string, string>();
  for (const file of [...response.file].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const proto = file.name.replace(/_pb\.ts$/, ".proto");
    out.set(file.name, header(proto) + file.content);
  }
  return out;
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)));
}

/** Paths under src/gen that differ from `wanted` (changed, missing or extra). */
export function staleFiles(wanted: Map<string, string>, dir = GEN_DIR): string[] {
  const stale = new Set<string>();
  for (const [name, content] of wanted) {
    const path = join(dir, name);
    if (!existsSync(path) || readFileSync(path, "utf8") !== content) stale.add(name);
  }
  for (const name of listFiles(dir)) if (!wanted.has(name)) stale.add(name);
  return [...stale].sort();
}

/** Makes src/gen hold exactly `wanted`. */
export function writeFiles(wanted: Map<string, string>, dir = GEN_DIR): void {
  for (const name of listFiles(dir)) if (!wanted.has(name)) rmSync(join(dir, name));
  for (const [name, content] of wanted) {
    const path = join(dir, name);
    mkdirSync(dirname(path), { recursive: true });
    if (!existsSync(path) || readFileSync(path, "utf8") !== content) writeFileSync(path, content);
  }
  // Folders left empty by removed files.
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true }).reverse()) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isDirectory() && readdirSync(path).length === 0) rmSync(path, { recursive: true });
  }
}
