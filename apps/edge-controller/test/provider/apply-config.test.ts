// Applying Envoy's configuration to an enrolled VPS and trusting only what Envoy's admin says:
// a rejected or never-seen version is never reported as applied.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { applyEnvoyConfig, confirmVersion, parseUpdateStats, readUpdateStats } from "../../src/provider/apply-config.ts";
import { enrollVps } from "../../src/provider/enroll.ts";
import { ENVOY_CONFIG_DIR, ENVOY_SDS_DIR, type EdgePlan, type EdgeRoute } from "../../src/provider/envoy/plan.ts";
import { renderEnvoyConfig } from "../../src/provider/envoy/render.ts";
import { connectVps, type VpsSession } from "../../src/provider/ssh.ts";
import { ENVOY_BOOTSTRAP } from "../../src/provider/vps-files.ts";
import { generateWireGuardKeyPair } from "../../src/provider/wireguard-keys.ts";
import { createTestCa } from "@ktube/testenv";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEdgeVps, type EdgeVps } from "./edge-vps.ts";

const ADMIN_PORT = 9901;
const LDS = `${ENVOY_CONFIG_DIR}/lds.json`;
const CDS = `${ENVOY_CONFIG_DIR}/cds.json`;

const plan = (routes: EdgeRoute[], secrets: EdgePlan["secrets"] = []): EdgePlan => ({
  nodeId: "team/edge",
  adminPort: ADMIN_PORT,
  uplinks: ["10.200.0.2", "10.200.0.3"],
  healthCheck: { intervalSeconds: 5, timeoutSeconds: 2, healthyThreshold: 2, unhealthyThreshold: 2, port: 40500 },
  routes,
  secrets,
});

const tcp: EdgeRoute = { key: "team/a/raw", protocol: "TCP", listenPort: 9000, tunnelPort: 20000 };
const sni: EdgeRoute = { key: "team/a/web", protocol: "TLS", listenPort: 443, tunnelPort: 20001, hostname: "a.example.com", tls: { mode: "passthrough" } };
const offload: EdgeRoute = { key: "team/b/secure", protocol: "TLS", listenPort: 443, tunnelPort: 20002, hostname: "b.example.com", tls: { mode: "offload", secret: "team.b-tls" } };

describe("parseUpdateStats", () => {
  it("reads Envoy's text stats: quoted text readouts and counters of LDS and CDS", () => {
    const stats = parseUpdateStats(
      ['cluster_manager.cds.update_rejected: 1', 'cluster_manager.cds.update_failure: 1', 'cluster_manager.cds.version_text: "abc"', 'listener_manager.lds.update_rejected: 2', 'listener_manager.lds.version_text: ""'].join("\n"),
    );
    expect(stats).toEqual({ ldsVersion: "", cdsVersion: "abc", rejected: 4 });
  });
});

describe("applyEnvoyConfig on an enrolled VPS", () => {
  let edge: EdgeVps;
  let session: VpsSession;
  let scratch: string;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), "ktube-apply-"));
    edge = await startEdgeVps();
    session = await connectVps(edge.target());
    const rendered = renderEnvoyConfig(plan([]));
    await enrollVps(session, {
      owner: "team/edge uid-1",
      envoy: { url: edge.envoy.url, sha256: edge.envoy.sha256 },
      wireguard: { privateKey: generateWireGuardKeyPair().privateKey, listenPort: 51821, address: "10.200.0.1/24", mtu: 1420, peers: [] },
      firewall: { sshPort: edge.vps.port, wireguardPort: 51821, listenPorts: [{ from: 443 }, { from: 9000, to: 9010 }] },
      bootstrap: rendered.files.find((file) => file.path === ENVOY_BOOTSTRAP)!.content,
    });
  });
  afterAll(async () => {
    session?.close();
    await edge?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("writes the files, and returns once Envoy reports running their version; the same config again writes nothing", async () => {
    const rendered = renderEnvoyConfig(plan([tcp, sni]));
    const result = await applyEnvoyConfig(session, rendered, { adminPort: ADMIN_PORT });
    expect(result.changed).toEqual([CDS, LDS]); // clusters first: the new listeners find theirs
    const stats = await readUpdateStats(session, ADMIN_PORT);
    expect(stats).toMatchObject({ ldsVersion: rendered.version, cdsVersion: rendered.version, rejected: 0 });
    expect(await applyEnvoyConfig(session, rendered, { adminPort: ADMIN_PORT })).toEqual({ version: rendered.version, changed: [] });
  });

  it("writes a secret before the listener that uses it, and LDS before CDS when routes only go away", async () => {
    const ca = await createTestCa(scratch);
    const cert = await ca.issue("b.example.com", { dnsNames: ["b.example.com"] });
    const withTls = renderEnvoyConfig(plan([tcp, sni, offload], [{ name: "team.b-tls", certificateChain: cert.cert, privateKey: cert.key }]));
    const added = await applyEnvoyConfig(session, withTls, { adminPort: ADMIN_PORT });
    expect(added.changed).toEqual([`${ENVOY_SDS_DIR}/team.b-tls.json`, CDS, LDS]);

    const without = renderEnvoyConfig(plan([tcp]));
    const removed = await applyEnvoyConfig(session, without, { adminPort: ADMIN_PORT });
    expect(removed.changed).toEqual([LDS, CDS, `${ENVOY_SDS_DIR}/team.b-tls.json`]);
    expect((await edge.vps.exec(`ls ${ENVOY_SDS_DIR}`)).stdout).toBe("");
    expect((await readUpdateStats(session, ADMIN_PORT)).ldsVersion).toBe(without.version);
  });

  it("reports a rejected update as EnvoyConfigRejected with Envoy's reason, and Envoy keeps the version it had", async () => {
    const good = renderEnvoyConfig(plan([tcp]));
    await applyEnvoyConfig(session, good, { adminPort: ADMIN_PORT });
    const next = renderEnvoyConfig(plan([tcp, sni]));
    // One field Envoy does not know, in the new listeners: the kind of mistake only Envoy's loader sees.
    const broken = {
      version: next.version,
      files: next.files.map((file) => (file.path === LDS ? { ...file, content: file.content.replace('"stat_prefix"', '"stat_prefx"') } : file)),
    };
    expect(broken.files.find((file) => file.path === LDS)!.content).toContain("stat_prefx");
    const error = await applyEnvoyConfig(session, broken, { adminPort: ADMIN_PORT, confirmTimeoutMs: 15_000 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ reason: "EnvoyConfigRejected" });
    expect((error as Error).message).toContain("stat_prefx");
    const stats = await readUpdateStats(session, ADMIN_PORT);
    expect(stats.ldsVersion).toBe(good.version);
    expect(stats.rejected).toBeGreaterThan(0);

    // Retried with the right files (the same version): Envoy reads them again and confirms.
    await expect(applyEnvoyConfig(session, next, { adminPort: ADMIN_PORT })).resolves.toMatchObject({ version: next.version });
  });

  it("reports a version Envoy never shows as EnvoyConfigNotConfirmed", async () => {
    const before = await readUpdateStats(session, ADMIN_PORT);
    const running = before.ldsVersion!;
    const error = await confirmVersion(session, "a-version-no-file-carries", before.rejected, { adminPort: ADMIN_PORT, confirmTimeoutMs: 1_500 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ reason: "EnvoyConfigNotConfirmed" });
    expect((error as Error).message).toContain(running);
  });
});
