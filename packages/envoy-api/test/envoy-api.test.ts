// The generated messages: committed output matches the checker's descriptor, the descriptor
// is pinned to the checker's go-control-plane, and the registry writes and strictly reads
// every `@type` KTube uses.
import { beforeAll, describe, expect, it } from "@jest/globals";
import { create, fromBinary, fromJson, toJson } from "@bufbuild/protobuf";
import { anyUnpack, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { pinnedVersions } from "@ktube/envoy-validator";
import { ANY_TYPES, createEnvoyRegistry, ENVOY_API_VERSION, envoyJsonReadOptions, envoyJsonWriteOptions, packAny, typeUrlOf } from "../src/index.ts";
import { ListenerSchema } from "../src/gen/envoy/config/listener/v3/listener_pb.ts";
import { TcpProxySchema } from "../src/gen/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy_pb.ts";
import { DiscoveryResponseSchema } from "../src/gen/envoy/service/discovery/v3/discovery_pb.ts";
import { dumpDescriptorSet, generate, ROOT_FILES, selectFiles, staleFiles } from "../scripts/codegen.ts";

let files: FileDescriptorProto[] = [];
let descriptor: Uint8Array;

beforeAll(async () => {
  // Builds the checker on a cold cache (minutes), else reuses it.
  descriptor = await dumpDescriptorSet();
  files = fromBinary(FileDescriptorSetSchema, descriptor).file;
}, 600_000);

describe("the descriptor (envoy-validate --descriptor-set)", () => {
  it("lists every linked file once, each after the files it imports", () => {
    const seen = new Set<string>();
    for (const file of files) {
      expect(seen.has(file.name)).toBe(false);
      for (const dependency of file.dependency) expect({ file: file.name, imports: dependency, seen: seen.has(dependency) }).toEqual({ file: file.name, imports: dependency, seen: true });
      seen.add(file.name);
    }
    expect(files.length).toBeGreaterThan(100);
  });

  it("holds every root file and every type in the registry", () => {
    const names = new Set(files.map((file) => file.name));
    for (const root of ROOT_FILES) expect(names).toContain(root);
    const selected = selectFiles(files, ROOT_FILES);
    const messages = new Set(selected.flatMap((file) => file.messageType.map((message) => `${file.package}.${message.name}`)));
    for (const schema of ANY_TYPES) expect(messages).toContain(schema.typeName);
  });

  it("is the Envoy API version the checker pins", () => {
    expect(ENVOY_API_VERSION).toBe(pinnedVersions().goControlPlane);
  });
});

describe("src/gen", () => {
  it("is what `npm run generate` writes from the current descriptor (else run it and commit)", async () => {
    const wanted = await generate(descriptor);
    expect(staleFiles(wanted)).toEqual([]);
    const header = [...wanted.values()][0]!.split("\n").slice(0, 3).join("\n");
    expect(header).toContain(`GENERATED FILE, DO NOT EDIT`);
    expect(header).toContain(`go-control-plane/envoy ${ENVOY_API_VERSION}`);
    expect(header).toContain("npm run generate -w @ktube/envoy-api");
  }, 120_000);
});

describe("createEnvoyRegistry", () => {
  const registry = createEnvoyRegistry();

  it("resolves every type KTube packs into an Any", () => {
    for (const schema of ANY_TYPES) expect(registry.getMessage(schema.typeName)).toBe(schema);
  });

  it("writes typed config as proto3 JSON with @type and reads it back strictly", () => {
    const listener = create(ListenerSchema, {
      name: "tcp-5432",
      address: { address: { case: "socketAddress", value: { address: "0.0.0.0", portSpecifier: { case: "portValue", value: 5432 } } } },
      filterChains: [
        {
          filters: [
            { name: "envoy.filters.network.tcp_proxy", configType: { case: "typedConfig", value: packAny(TcpProxySchema, { statPrefix: "db", clusterSpecifier: { case: "cluster", value: "db" } }) } },
          ],
        },
      ],
    });
    const response = create(DiscoveryResponseSchema, { versionInfo: "1", resources: [packAny(ListenerSchema, listener)], typeUrl: typeUrlOf(ListenerSchema) });
    const json = toJson(DiscoveryResponseSchema, response, envoyJsonWriteOptions(registry));
    expect(json).toMatchObject({
      version_info: "1",
      type_url: "type.googleapis.com/envoy.config.listener.v3.Listener",
      resources: [
        {
          "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
          name: "tcp-5432",
          filter_chains: [{ filters: [{ typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", stat_prefix: "db", cluster: "db" } }] }],
        },
      ],
    });
    const back = fromJson(DiscoveryResponseSchema, json, envoyJsonReadOptions(registry));
    const unpacked = anyUnpack(back.resources[0]!, registry);
    expect(unpacked).toEqual(listener);

    // Strict: a typo inside a typed_config is an error, as in Envoy.
    const typo = JSON.parse(JSON.stringify(json).replace('"stat_prefix"', '"stat_prefx"')) as typeof json;
    expect(() => fromJson(DiscoveryResponseSchema, typo, envoyJsonReadOptions(registry))).toThrow(/stat_prefx/);
  });
});
