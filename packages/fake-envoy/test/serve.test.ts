// fake-envoy serving, as the edge controller drives it: one process started on a bootstrap
// in a temporary directory, LDS/CDS/SDS written by temporary file + rename, acceptance read
// from the admin's /stats. Each test waits for a stat to move (a barrier) before it asserts.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureEnvoyValidator } from "@ktube/envoy-validator";
import { FakeEnvoyProcess } from "../src/process.ts";
import {
  cds,
  certificateSecret,
  configDir,
  downstreamTls,
  lds,
  sds,
  selfSigned,
  staticCluster,
  tcpListener,
  TYPE,
  udpListener,
  writeAtomic,
} from "./support/fixtures.ts";

const LDS_CDS = String.raw`^(listener_manager\.lds|cluster_manager\.cds)\.`;
const count = (stats: Map<string, string>, name: string): number => Number(stats.get(name));
/** A log line in Envoy's default format. */
const LOG_LINE = String.raw`^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\]\[\d+\]\[(trace|debug|info|warning|error|critical)\]\[\w+\] \[[^\]]+:\d+\] `;
const REJECTED_SOURCE = String.raw`\[source/extensions/config_subscription/filesystem/filesystem_subscription_impl\.cc:63\]`;

let config: ReturnType<typeof configDir>;
let envoy: FakeEnvoyProcess;
let logDir: string;
let logPath: string;

const logLines = (): string[] => readFileSync(logPath, "utf8").split("\n");

/** Writes an LDS file and waits until Envoy has counted a rejection for it. */
async function expectLdsRejected(version: string, listeners: Parameters<typeof lds>[1]): Promise<Map<string, string>> {
  const before = await envoy.stats(LDS_CDS);
  writeAtomic(join(config.dir, "lds.json"), lds(version, listeners));
  const after = await envoy.waitForStats(LDS_CDS, (s) => count(s, "listener_manager.lds.update_rejected") > count(before, "listener_manager.lds.update_rejected"));
  expect(after.get("listener_manager.lds.version_text")).toBe(before.get("listener_manager.lds.version_text"));
  return after;
}

async function applyLds(version: string, listeners: Parameters<typeof lds>[1]): Promise<void> {
  writeAtomic(join(config.dir, "lds.json"), lds(version, listeners));
  await envoy.waitForStats(LDS_CDS, (s) => s.get("listener_manager.lds.version_text") === version);
}

async function applyCds(version: string, clusters: Parameters<typeof cds>[1]): Promise<void> {
  writeAtomic(join(config.dir, "cds.json"), cds(version, clusters));
  await envoy.waitForStats(LDS_CDS, (s) => s.get("cluster_manager.cds.version_text") === version);
}

const lastRejection = (): string | undefined => logLines().filter((line) => line.includes("Filesystem config update rejected:")).pop();

beforeAll(async () => {
  await ensureEnvoyValidator({ log: (line) => process.stderr.write(`${line}\n`) });
  config = configDir();
  // Outside the watched directory, as /var/log/ktube is: creating it there would count as a move in.
  logDir = mkdtempSync(join(tmpdir(), "fake-envoy-log-"));
  logPath = join(logDir, "envoy.log");
  envoy = await FakeEnvoyProcess.start({ args: ["-c", config.bootstrapPath, "--drain-time-s", "60", "--log-level", "info", "--log-path", logPath] });
}, 20 * 60_000);

afterAll(async () => {
  await envoy?.stop();
  config?.cleanup();
  if (logDir) rmSync(logDir, { recursive: true, force: true });
});

describe("start", () => {
  it("is LIVE on enrollment's empty LDS/CDS files, each read once with an empty version", async () => {
    expect(await envoy.admin("/ready")).toEqual({ status: 200, body: "LIVE\n" });
    const stats = await envoy.stats(LDS_CDS);
    for (const prefix of ["listener_manager.lds", "cluster_manager.cds"]) {
      expect(stats.get(`${prefix}.version_text`)).toBe("");
      expect(count(stats, `${prefix}.update_attempt`)).toBe(1);
      expect(count(stats, `${prefix}.update_success`)).toBe(1);
      expect(count(stats, `${prefix}.update_rejected`)).toBe(0);
      expect(count(stats, `${prefix}.update_failure`)).toBe(0);
      expect(stats.get(`${prefix}.version`)).toBe("17241709254077376921"); // xxHash64("")
    }
    expect((await envoy.stats("^server\\.state$")).get("server.state")).toBe("0");
  });

  it("answers /server_info with its state and command line, and 404 with the endpoint list", async () => {
    const info = JSON.parse((await envoy.admin("/server_info")).body);
    expect(info).toMatchObject({
      state: "LIVE",
      version: expect.stringMatching(/^fake-envoy\/\d+\.\d+\.\d+\/Clean\/RELEASE\/BoringSSL$/),
      command_line_options: { config_path: config.bootstrapPath, drain_time: "60s", log_level: "info", log_path: logPath, mode: "Serve" },
      node: { id: "edge/test", cluster: "ktube-edge" },
    });
    const missing = await envoy.admin("/nope");
    expect(missing.status).toBe(404);
    expect(missing.body).toContain("/stats");
  });
});

describe("LDS and CDS", () => {
  it("applies CDS then LDS written by rename: versions, counters, /listeners, /config_dump", async () => {
    const before = await envoy.stats(LDS_CDS);
    await applyCds("plan-1", [staticCluster("a"), staticCluster("b", ["10.77.0.2", "10.77.0.3"]), staticCluster("dns", ["10.77.0.2"], 5353)]);
    await applyLds("plan-1", [
      tcpListener("tcp-443", 443, [
        { name: "a", serverNames: ["a.example.com"], cluster: "a" },
        { name: "b", serverNames: ["*.b.example.com"], cluster: "b" },
      ]),
      udpListener("udp-5353", 5353, "dns"),
    ]);
    const stats = await envoy.stats(LDS_CDS);
    expect(count(stats, "listener_manager.lds.update_success")).toBeGreaterThan(count(before, "listener_manager.lds.update_success"));
    expect(count(stats, "cluster_manager.cds.update_success")).toBeGreaterThan(count(before, "cluster_manager.cds.update_success"));
    expect(count(stats, "listener_manager.lds.update_rejected")).toBe(0);
    expect(count(stats, "cluster_manager.cds.update_rejected")).toBe(0);
    expect((await envoy.admin("/listeners")).body).toBe("tcp-443::0.0.0.0:443\nudp-5353::0.0.0.0:5353\n");
    expect((await envoy.stats("^(listener_manager\\.total_listeners_active|cluster_manager\\.active_clusters)$")).get("listener_manager.total_listeners_active")).toBe("2");

    const dump = JSON.parse((await envoy.admin("/config_dump")).body) as { configs: Array<Record<string, unknown>> };
    expect(dump.configs.map((c) => c["@type"])).toEqual([
      `${TYPE}envoy.admin.v3.BootstrapConfigDump`,
      `${TYPE}envoy.admin.v3.ClustersConfigDump`,
      `${TYPE}envoy.admin.v3.ListenersConfigDump`,
      `${TYPE}envoy.admin.v3.SecretsConfigDump`,
    ]);
    const listeners = dump.configs[2] as { version_info: string; dynamic_listeners: Array<{ name: string; active_state: { version_info: string; listener: { name: string } } }> };
    expect(listeners.version_info).toBe("plan-1");
    expect(listeners.dynamic_listeners.map((l) => [l.name, l.active_state.version_info, l.active_state.listener.name])).toEqual([
      ["tcp-443", "plan-1", "tcp-443"],
      ["udp-5353", "plan-1", "udp-5353"],
    ]);
    const clusters = JSON.parse((await envoy.admin("/config_dump?resource=dynamic_active_clusters")).body) as { configs: Array<{ "@type": string; cluster: { name: string } }> };
    expect(clusters.configs.map((c) => [c["@type"], c.cluster.name])).toEqual([
      [`${TYPE}envoy.admin.v3.ClustersConfigDump.DynamicCluster`, "a"],
      [`${TYPE}envoy.admin.v3.ClustersConfigDump.DynamicCluster`, "b"],
      [`${TYPE}envoy.admin.v3.ClustersConfigDump.DynamicCluster`, "dns"],
    ]);
  });

  it("rejects a typo'd field: update_rejected moves, version_text stays, Envoy's warning is logged", async () => {
    await expectLdsRejected("plan-2", [tcpListener("tcp-443", 443, [{ name: "a", serverNames: ["a.example.com"], cluster: "a", proxy: { idle_timout: "1h" } }])]);
    const line = lastRejection();
    expect(line).toMatch(new RegExp(`${LOG_LINE.replace(String.raw`(trace|debug|info|warning|error|critical)`, "warning").replace(String.raw`\w+`, "config")}`));
    expect(line).toMatch(new RegExp(REJECTED_SOURCE));
    expect(line).toContain(
      'Filesystem config update rejected: Protobuf message (type envoy.service.discovery.v3.DiscoveryResponse reason INVALID_ARGUMENT:resources[0].filter_chains[0].filters[0].typed_config.idle_timout: unknown field "idle_timout") has unknown fields',
    );
    // Nothing of a file that does not load is applied.
    expect((await envoy.admin("/listeners")).body).toBe("tcp-443::0.0.0.0:443\nudp-5353::0.0.0.0:5353\n");
  });

  it("rejects tcp_proxy without stat_prefix, but applies the file's other listeners as Envoy does", async () => {
    const noStatPrefix = tcpListener("tcp-8443", 8443, [{ name: "x", cluster: "a" }]);
    (((noStatPrefix.filter_chains as Array<Record<string, unknown>>)[0]!.filters as Array<{ typed_config: Record<string, unknown> }>)[0]!.typed_config).stat_prefix = undefined;
    const listener443 = tcpListener("tcp-443", 443, [
      { name: "a", serverNames: ["a.example.com"], cluster: "a" },
      { name: "b", serverNames: ["*.b.example.com"], cluster: "b" },
    ]);
    await expectLdsRejected("plan-3", [listener443, udpListener("udp-5353", 5353, "dns"), JSON.parse(JSON.stringify(noStatPrefix)), tcpListener("tcp-9000", 9000, [{ name: "c", cluster: "a" }])]);
    expect(lastRejection()).toMatch(
      /Filesystem config update rejected: Error adding\/updating listener\(s\) tcp-8443: Proto constraint validation failed \(filter_chains\[0\]\.filters\[0\]\.typed_config\.stat_prefix: value length must be at least 1 runes\)$/,
    );
    expect((await envoy.admin("/listeners")).body).toBe("tcp-443::0.0.0.0:443\nudp-5353::0.0.0.0:5353\ntcp-9000::0.0.0.0:9000\n");
    const dump = JSON.parse((await envoy.admin("/config_dump?resource=dynamic_listeners")).body) as { configs: Array<{ name: string; error_state?: { details: string } }> };
    // LDS's version_info moves with what applied; version_text (what the controller reads) does not.
    expect(dump.configs.find((l) => l.name === "tcp-8443")?.error_state?.details).toContain("stat_prefix: value length must be at least 1 runes");
    expect(JSON.parse((await envoy.admin("/config_dump")).body).configs[2].version_info).toBe("plan-3");
    expect((await envoy.stats(LDS_CDS)).get("listener_manager.lds.version_text")).toBe("plan-1");
  });

  it("rejects a second listener on an address another listener has", async () => {
    await expectLdsRejected("plan-4", [tcpListener("tcp-443", 443, [{ name: "a", serverNames: ["a.example.com"], cluster: "a" }]), tcpListener("also-443", 443, [{ name: "z", cluster: "b" }])]);
    expect(lastRejection()).toContain(
      "Error adding/updating listener(s) also-443: error adding listener: 'also-443' has duplicate address '0.0.0.0:443' as existing listener, to check if the listener has duplicated addresses with other listeners or 'enable_reuse_port' is set to 'false' for the listener",
    );
  });

  it("rejects two filter chains with the same server names, and overlapping ones", async () => {
    await expectLdsRejected("plan-5", [
      tcpListener("tcp-443", 443, [
        { name: "a", serverNames: ["a.example.com"], cluster: "a" },
        { name: "a-again", serverNames: ["a.example.com"], cluster: "b" },
      ]),
    ]);
    expect(lastRejection()).toContain(
      `tcp-443: error adding listener '0.0.0.0:443': filter chain 'a-again' has the same matching rules defined as 'a'. duplicate matcher is: {"server_names":["a.example.com"]}`,
    );
    await expectLdsRejected("plan-6", [
      tcpListener("tcp-443", 443, [
        { name: "a", serverNames: ["a.example.com", "c.example.com"], cluster: "a" },
        { name: "c", serverNames: ["c.example.com"], cluster: "b" },
      ]),
    ]);
    expect(lastRejection()).toContain("tcp-443: error adding listener '0.0.0.0:443': multiple filter chains with overlapping matching rules are defined");
  });

  it("rejects an inline HTTP route to a cluster that does not exist", async () => {
    const listener = tcpListener("tcp-80", 80, [{ name: "web", cluster: "a" }]);
    (listener.filter_chains as Array<Record<string, unknown>>)[0]!.filters = [
      {
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type": `${TYPE}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
          stat_prefix: "web",
          route_config: { name: "web", virtual_hosts: [{ name: "web", domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: "nope" } }] }] },
          http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": `${TYPE}envoy.extensions.filters.http.router.v3.Router` } }],
        },
      },
    ];
    await expectLdsRejected("plan-7", [listener]);
    expect(lastRejection()).toContain("Error adding/updating listener(s) tcp-80: route: unknown cluster 'nope'");
  });

  it("refuses config it does not implement, counted apart from Envoy's own rejections", async () => {
    const before = await envoy.stats("^fake_envoy\\.");
    await expectLdsRejected("plan-8", [tcpListener("tcp-443", 443, [{ name: "a", cluster: "a", proxy: { max_connect_attempts: 3 } }])]);
    expect(lastRejection()).toContain(
      "tcp-443: filter_chains[0].filters[0].typed_config.max_connect_attempts: envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.max_connect_attempts is not implemented by fake-envoy",
    );
    expect(count(await envoy.stats("^fake_envoy\\."), "fake_envoy.unimplemented_rejected")).toBe(count(before, "fake_envoy.unimplemented_rejected") + 1);
    expect(logLines().some((line) => line.includes("[error][config]") && line.includes("does not implement"))).toBe(true);
  });

  it("counts a file that does not parse as update_failure, not a rejection", async () => {
    const before = await envoy.stats(LDS_CDS);
    writeAtomic(join(config.dir, "lds.json"), "{ not json");
    const after = await envoy.waitForStats(LDS_CDS, (s) => count(s, "listener_manager.lds.update_failure") > count(before, "listener_manager.lds.update_failure"));
    expect(count(after, "listener_manager.lds.update_rejected")).toBe(count(before, "listener_manager.lds.update_rejected"));
    expect(after.get("listener_manager.lds.version_text")).toBe("plan-1");
    expect(logLines().filter((line) => line.includes("Filesystem config update failure:")).pop()).toContain(`Filesystem config update failure: in ${join(config.dir, "lds.json")}, Unable to parse JSON as proto`);
  });

  it("rejects a duplicate cluster name and a STATIC endpoint that is not an IP address", async () => {
    const before = await envoy.stats(LDS_CDS);
    writeAtomic(join(config.dir, "cds.json"), cds("plan-9", [staticCluster("a"), staticCluster("a"), staticCluster("bad", ["10.77.0.300"])]));
    await envoy.waitForStats(LDS_CDS, (s) => count(s, "cluster_manager.cds.update_rejected") > count(before, "cluster_manager.cds.update_rejected"));
    expect(lastRejection()).toContain(
      "Filesystem config update rejected: Error adding/updating cluster(s) a: duplicate cluster a found, bad: malformed IP address: 10.77.0.300. Consider setting resolver_name or setting cluster type to 'STRICT_DNS' or 'LOGICAL_DNS'",
    );
    expect((await envoy.stats(LDS_CDS)).get("cluster_manager.cds.version_text")).toBe("plan-1");
  });

  it("takes a good update after rejections", async () => {
    await applyCds("plan-10", [staticCluster("a"), staticCluster("b"), staticCluster("dns", ["10.77.0.2"], 5353)]);
    await applyLds("plan-10", [tcpListener("tcp-443", 443, [{ name: "a", serverNames: ["a.example.com"], cluster: "a" }])]);
    expect((await envoy.admin("/listeners")).body).toBe("tcp-443::0.0.0.0:443\n");
  });
});

describe("SDS", () => {
  it("loads the secrets a TLS listener names, follows their rotation, rejects material that does not load", async () => {
    const sdsDir = join(config.dir, "sds");
    mkdirSync(sdsDir);
    const first = selfSigned("b.example.com");
    writeAtomic(join(sdsDir, "b-cert.json"), sds("s1", [certificateSecret("b-cert", first)]));
    // Mutual TLS whose CA file is written only later: the listener is accepted, the secret's first read fails.
    await applyLds("plan-11", [
      tcpListener("tcp-443", 443, [
        { name: "a", serverNames: ["a.example.com"], cluster: "a" },
        { name: "b", serverNames: ["b.example.com"], cluster: "b", transportSocket: downstreamTls(sdsDir, "b-cert", "b-ca") },
      ]),
    ]);
    const SDS = String.raw`^sds\.`;
    let stats = await envoy.stats(SDS);
    expect(stats.get("sds.b-cert.version_text")).toBe("s1");
    expect(count(stats, "sds.b-cert.update_success")).toBe(1);
    expect(count(stats, "sds.b-ca.update_failure")).toBe(1);
    expect(stats.get("sds.b-ca.version_text")).toBe("");

    const ca = selfSigned("clients");
    writeAtomic(join(sdsDir, "b-ca.json"), sds("c1", [{ name: "b-ca", validation_context: { trusted_ca: { inline_string: ca.cert } } }]));
    await envoy.waitForStats(SDS, (s) => s.get("sds.b-ca.version_text") === "c1");

    const second = selfSigned("b.example.com");
    writeAtomic(join(sdsDir, "b-cert.json"), sds("s2", [certificateSecret("b-cert", second)]));
    stats = await envoy.waitForStats(SDS, (s) => s.get("sds.b-cert.version_text") === "s2");
    expect(count(stats, "sds.b-cert.update_rejected")).toBe(0);

    writeAtomic(join(sdsDir, "b-cert.json"), sds("s3", [certificateSecret("b-cert", { cert: second.cert, key: "not a key" })]));
    stats = await envoy.waitForStats(SDS, (s) => count(s, "sds.b-cert.update_rejected") === 1);
    expect(stats.get("sds.b-cert.version_text")).toBe("s2");
    expect(lastRejection()).toContain("Filesystem config update rejected: Failed to load private key from <inline>");

    writeAtomic(join(sdsDir, "b-cert.json"), sds("s4", [certificateSecret("other-name", second)]));
    await envoy.waitForStats(SDS, (s) => count(s, "sds.b-cert.update_rejected") === 2);
    expect(lastRejection()).toContain("Filesystem config update rejected: Unexpected SDS secret (expecting b-cert): other-name");

    const dump = JSON.parse((await envoy.admin("/config_dump?resource=dynamic_active_secrets")).body) as {
      configs: Array<{ name: string; version_info: string; secret: { tls_certificate?: { private_key: unknown } } }>;
    };
    const certificate = dump.configs.find((s) => s.name === "b-cert");
    expect(certificate?.version_info).toBe("s2");
    expect(certificate?.secret.tls_certificate?.private_key).toEqual({ inline_bytes: Buffer.from("[redacted]").toString("base64") });
    expect(JSON.stringify(dump)).not.toContain("PRIVATE KEY");
  });
});

describe("watching without watched_directory", () => {
  it("reloads on a rename onto the path, not on an in-place write or a rename of another file", async () => {
    const own = configDir({ watchedDirectory: false });
    const proc = await FakeEnvoyProcess.start({ args: ["-c", own.bootstrapPath] });
    try {
      const lds1 = join(own.dir, "lds.json");
      writeAtomic(join(own.dir, "cds.json"), cds("c1", [staticCluster("a")]));
      writeAtomic(lds1, lds("v1", [tcpListener("l", 7000, [{ name: "a", cluster: "a" }])]));
      const before = await proc.waitForStats(LDS_CDS, (s) => s.get("listener_manager.lds.version_text") === "v1" && s.get("cluster_manager.cds.version_text") === "c1");

      writeFileSync(lds1, JSON.stringify(lds("in-place", [tcpListener("l", 7001, [{ name: "a", cluster: "a" }])]))); // ignored, as by Envoy
      writeAtomic(join(own.dir, "cds.json"), cds("c2", [staticCluster("a")])); // not LDS's path
      writeAtomic(lds1, lds("v3", [tcpListener("l", 7000, [{ name: "a", cluster: "a" }])])); // the barrier
      const after = await proc.waitForStats(LDS_CDS, (s) => s.get("listener_manager.lds.version_text") === "v3" && s.get("cluster_manager.cds.version_text") === "c2");
      expect(count(after, "listener_manager.lds.update_attempt")).toBe(count(before, "listener_manager.lds.update_attempt") + 1);
      expect(count(after, "cluster_manager.cds.update_attempt")).toBe(count(before, "cluster_manager.cds.update_attempt") + 1);
    } finally {
      await proc.stop();
      own.cleanup();
    }
  });
});
