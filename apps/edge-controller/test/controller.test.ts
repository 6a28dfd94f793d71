// The edge controller against the real API server and a real VPS (sshd in its own network
// namespace and file system, fake-envoy installed as Envoy): enrollment, routes rendered and
// confirmed by Envoy's admin, conflicts, TLS material pushed and re-pushed, drift, host keys,
// teardown.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import { KubeClient, type Manager, PatchType, type KubeObject } from "@ktube/runtime";
import { createTestCa, createTestNamespace, deleteTestNamespace, eventually, kubectl, ktubeStatus, testKubeConfig, TestProcess, waitForKtubeCondition } from "@ktube/testenv";
import type { KubeConfig } from "@kubernetes/client-node";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ENVOY_ADMIN_PORT } from "../src/plugin.ts";
import { ENVOY_SDS_DIR } from "../src/provider/envoy/plan.ts";
import { FIREWALL_FILE } from "../src/provider/vps-files.ts";
import { wireGuardPublicKey } from "../src/provider/wireguard-keys.ts";
import { createEdgeProvider, startEdgeController } from "./edge-controller.ts";
import { envoyProcesses, startEdgeVps, trustCa, type EdgeVps } from "./provider/edge-vps.ts";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));
const id = randomBytes(3).toString("hex");
const PROVIDER = `edge-${id}`;

let kc: KubeConfig;
let client: KubeClient;
let manager: Manager;
let edge: EdgeVps;
let controllerNs: string;
let ns: string;
const scratch = mkdtempSync(join(tmpdir(), "ktube-edge-controller-"));

const tunnel = (name: string, vps: EdgeVps, provider = PROVIDER): KubeObject =>
  ({
    apiVersion: "ktube.dev/v1alpha1",
    kind: "Tunnel",
    metadata: { name, namespace: ns },
    spec: {
      providerRef: { name: provider },
      allowedBindings: { namespaces: { from: "Same" } },
      edge: {
        address: vps.vps.address,
        listenPorts: [{ from: 80 }, { from: 443 }, { from: 5353 }, { from: 9000, to: 9010 }],
        uplink: { replicas: 1 },
      },
    },
  }) as KubeObject;

const binding = (name: string, tunnelName: string, routes: unknown[]): KubeObject =>
  ({ apiVersion: "ktube.dev/v1alpha1", kind: "TunnelBinding", metadata: { name, namespace: ns }, spec: { tunnelRef: { name: tunnelName }, routes } }) as KubeObject;

const service = (name: string): KubeObject =>
  ({ apiVersion: "v1", kind: "Service", metadata: { name, namespace: ns }, spec: { ports: [{ name: "http", port: 80 }, { name: "tls", port: 443 }] } }) as KubeObject;

async function vpsFile(vps: EdgeVps, path: string): Promise<string> {
  return (await vps.vps.exec(`cat ${path}`)).stdout;
}

/** What Envoy on the VPS reports running, from its admin (loopback only, so asked on the VPS). */
async function envoyVersion(vps: EdgeVps): Promise<{ lds?: string; cds?: string }> {
  const stats = (await vps.vps.exec(`curl -fsS 'http://127.0.0.1:${ENVOY_ADMIN_PORT}/stats?filter=version_text'`)).stdout;
  const read = (name: string): string | undefined => new RegExp(`${name.replaceAll(".", "\\.")}: "([^"]*)"`).exec(stats)?.[1];
  return { lds: read("listener_manager.lds.version_text"), cds: read("cluster_manager.cds.version_text") };
}

beforeAll(async () => {
  kc = testKubeConfig();
  client = new KubeClient(kc);
  edge = await startEdgeVps();
  controllerNs = await createTestNamespace(kc, "ktube-system");
  ns = await createTestNamespace(kc, "edge");
  manager = await startEdgeController({ kc, edge, namespace: controllerNs, provider: PROVIDER, id, plugin: { resyncMs: 2_000, confirmTimeoutMs: 15_000, sshTimeoutMs: 5_000 } });
});

afterAll(async () => {
  await manager?.stop();
  await edge?.stop();
  if (kc) {
    await deleteTestNamespace(kc, ns);
    await deleteTestNamespace(kc, controllerNs);
    await client.delete(TunnelProviderResource, undefined, PROVIDER).catch(() => undefined);
  }
  rmSync(scratch, { recursive: true, force: true });
});

describe("an edge Tunnel", () => {
  it("enrolls its VPS, applies the routes and reports ConfigApplied only with the version Envoy runs", async () => {
    await client.create(Core.Service, service("web"));
    await client.create(TunnelResource, tunnel("vps", edge));
    await client.create(
      TunnelBindingResource,
      binding("apps", "vps", [
        { name: "raw", protocol: "TCP", listenPort: 9000, service: { name: "web", port: "http" } },
        { name: "sni-a", protocol: "TLS", hostname: "a.example.com", tls: { mode: "passthrough" }, service: { name: "web", port: "tls" } },
        { name: "sni-b", protocol: "TLS", hostname: "b.example.com", service: { name: "web", port: "tls" } },
        { name: "site", protocol: "HTTP", hostname: "a.example.com", path: "/", service: { name: "web", port: "http" } },
        { name: "dns", protocol: "UDP", listenPort: 5353, service: { name: "web", port: "http" } },
      ]),
    );
    const status = await waitForKtubeCondition(kc, "Tunnel", ns, "vps", "ConfigApplied", { status: "True", reason: "EnvoyConfirmed" }, 90_000);
    expect(status.hostKeyFingerprint).toBe(edge.vps.hostKeyFingerprint);
    expect(status.tunnelId).toBe(edge.vps.address);
    // Not Ready without an uplink to carry the traffic (the data-path tests run them).
    const ready = await waitForKtubeCondition(kc, "Tunnel", ns, "vps", "Ready", { status: "False", reason: "UplinksStarting" });
    expect(ready.conditions?.find((c) => c.type === "Ready")?.message).toContain("no uplink forwards yet");
    expect(ready.conditions?.find((c) => c.type === "Enrolled")).toMatchObject({ status: "True", reason: "Enrolled" });

    // Envoy itself runs the version the status names.
    // Envoy itself runs the version the status names, with every route's listener.
    await eventually(async () => {
      const now = await ktubeStatus(kc, "Tunnel", ns, "vps");
      const lds = JSON.parse(await vpsFile(edge, "/etc/ktube/envoy/lds.json")) as { resources?: Array<{ name?: string }> };
      expect(lds.resources?.length).toBe(4); // :9000, :443 (two SNI chains), :80, :5353/udp
      expect(await envoyVersion(edge)).toEqual({ lds: now.configVersion, cds: now.configVersion });
    }, 30_000);

    // Envoy (unprivileged, with CAP_NET_BIND_SERVICE) listens on the public ports, 80 and 443 included.
    await eventually(async () => {
      const listening = (await edge.vps.exec("ss -Hltn")).stdout;
      for (const port of [80, 443, 9000]) expect(listening).toContain(`0.0.0.0:${port} `);
      expect((await edge.vps.exec("ss -Hlun")).stdout).toContain("0.0.0.0:5353 ");
    }, 30_000);

    // Routes are served by Envoy but wait for an uplink to reach their targets (none runs
    // here; test/data-path runs them): not ready.
    const bound = await eventually(async () => {
      const s = await ktubeStatus(kc, "TunnelBinding", ns, "apps");
      expect(s.routes?.find((r) => r.name === "raw")?.message).toContain(`Envoy serves tcp://${edge.vps.address}:9000; waiting for an uplink`);
      return s;
    }, 30_000);
    expect(bound.routes?.find((r) => r.name === "sni-a")).toMatchObject({ ready: false, message: expect.stringContaining("tls://a.example.com:443") });
    expect(bound.routes?.find((r) => r.name === "site")?.message).toContain("http://a.example.com/");
    expect(bound.routes?.find((r) => r.name === "dns")?.message).toContain(`udp://${edge.vps.address}:5353`);
    expect(bound.routes?.find((r) => r.name === "raw")?.reservation).toMatchObject({ id: "tunnelPort" });

    // The WireGuard keys: derived from the seed the controller made in its own namespace; the
    // uplinks' Secret holds only theirs, the VPS's key is only on the VPS, whose peer is the uplink.
    const seed = (await client.get<KubeObject & { data: Record<string, string> }>(Core.Secret, controllerNs, "ktube-edge-wireguard-seed")).data;
    expect(Buffer.from(seed.seed!, "base64").length).toBe(32);
    const wireguardConf = await vpsFile(edge, "/etc/ktube/wireguard.conf");
    const vpsKey = /PrivateKey = (\S+)/.exec(wireguardConf)![1]!;

    // The uplinks: a StatefulSet with NET_ADMIN only, their own keys (never the VPS's), and a
    // route table naming each route's tunnel port and the Service's cluster IP.
    const set = await client.get<KubeObject & { spec: { replicas: number; template: { spec: { containers: Array<{ args: string[]; securityContext: unknown }>; volumes: Array<{ name: string; secret?: { secretName: string } }> } } } }>(Core.StatefulSet, ns, "vps-edge-uplink");
    expect(set.spec.replicas).toBe(1);
    expect(set.spec.template.spec.containers[0]!.args).toEqual(["connector"]);
    expect(set.spec.template.spec.containers[0]!.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"], add: ["NET_ADMIN"] } });
    const mounted = set.spec.template.spec.volumes.find((v) => v.secret)!.secret!.secretName;
    const uplinkKeys = (await client.get<KubeObject & { data: Record<string, string> }>(Core.Secret, ns, mounted)).data;
    expect(Object.keys(uplinkKeys)).toEqual(["uplink-0.key"]);
    const uplinkKey = Buffer.from(uplinkKeys["uplink-0.key"]!, "base64").toString().trim();
    expect(wireguardConf).toContain(`PublicKey = ${wireGuardPublicKey(uplinkKey)}`);
    // No key in the Tunnel's status or events.
    const tunnelJson = (await kubectl(["-n", ns, "get", "tunnel", "vps", "-o", "json"])).stdout;
    const eventsJson = (await kubectl(["-n", ns, "get", "events", "-o", "json"])).stdout;
    for (const key of [uplinkKey, vpsKey]) {
      expect(tunnelJson).not.toContain(key);
      expect(eventsJson).not.toContain(key);
    }
    const web = await client.get<KubeObject & { spec: { clusterIP: string } }>(Core.Service, ns, "web");
    const table = JSON.parse((await client.get<KubeObject & { data: Record<string, string> }>(Core.ConfigMap, ns, "vps-edge-uplink")).data["routes.json"]!) as {
      vps: { publicKey: string; endpoint: string };
      routes: Array<{ key: string; protocol: string; tunnelPort: number; target: { ip: string; port: number } }>;
    };
    expect(table.vps).toMatchObject({ publicKey: wireGuardPublicKey(vpsKey), endpoint: `${edge.vps.address}:51821` });
    expect(table.routes.find((r) => r.key.endsWith("/raw"))).toEqual({
      key: `${ns}/apps/raw`,
      protocol: "TCP",
      tunnelPort: Number(bound.routes!.find((r) => r.name === "raw")!.reservation!.address),
      target: { ip: web.spec.clusterIP, port: 80 },
    });
    expect(table.routes.find((r) => r.key.endsWith("/dns"))).toMatchObject({ protocol: "UDP", target: { ip: web.spec.clusterIP, port: 80 } });
  });

  it("gives a port to the older binding: a younger route wanting it another way gets ListenPortConflict and the tunnel's configuration stays applied", async () => {
    await client.create(TunnelBindingResource, binding("late", "vps", [{ name: "raw443", protocol: "TCP", listenPort: 443, service: { name: "web", port: "http" } }]));
    await eventually(async () => {
      const s = await ktubeStatus(kc, "TunnelBinding", ns, "late");
      const ready = s.conditions?.find((c) => c.type === "Ready");
      expect(ready?.status).toBe("False");
      expect(`${ready?.reason} ${ready?.message} ${s.routes?.[0]?.message}`).toContain("port TCP/443 already serves TLS routes");
    }, 30_000);
    // The tunnel's own WireGuard port is never a listen port.
    await client.create(TunnelBindingResource, binding("wg", "vps", [{ name: "wg", protocol: "UDP", listenPort: 51821, service: { name: "web", port: "http" } }]));
    await eventually(async () => {
      const s = await ktubeStatus(kc, "TunnelBinding", ns, "wg");
      const ready = s.conditions?.find((c) => c.type === "Ready");
      expect(`${ready?.status} ${ready?.message} ${s.routes?.[0]?.message}`).toContain("51821/UDP is the tunnel's WireGuard port");
    }, 30_000);
    expect((await ktubeStatus(kc, "Tunnel", ns, "vps")).conditions?.find((c) => c.type === "ConfigApplied")?.status).toBe("True");
    await client.delete(TunnelBindingResource, ns, "late");
    await client.delete(TunnelBindingResource, ns, "wg");
  });

  it("pushes a terminated route's certificate as an SDS file, warns once that the key is on the VPS, and re-pushes it on rotation", async () => {
    const ca = await createTestCa(scratch);
    const first = await ca.issue("secure.example.com", { dnsNames: ["secure.example.com"] });
    await client.create(Core.Secret, {
      metadata: { name: "secure-tls", namespace: ns },
      type: "kubernetes.io/tls",
      stringData: { "tls.crt": first.cert, "tls.key": first.key },
    } as KubeObject);
    await client.create(
      TunnelBindingResource,
      binding("secure", "vps", [{ name: "https", protocol: "HTTPS", hostname: "secure.example.com", tls: { mode: "offload", secretRef: { name: "secure-tls" } }, service: { name: "web", port: "http" } }]),
    );
    const sds = `${ENVOY_SDS_DIR}/${ns}.secure-tls.json`;
    await eventually(async () => expect(await vpsFile(edge, sds)).toContain(JSON.stringify(first.cert).slice(1, 60)), 60_000);
    expect((await edge.vps.exec(`stat -c '%a %U:%G' ${sds}`)).stdout.trim()).toBe("640 root:ktube-envoy");
    await eventually(async () => {
      const events = JSON.parse((await kubectl(["-n", ns, "get", "events", "--field-selector", "reason=PrivateKeyOnEdge", "-o", "json"])).stdout) as { items: Array<{ type: string; count?: number; series?: unknown }> };
      expect(events.items).toHaveLength(1);
      expect(events.items[0]!.type).toBe("Warning");
    }, 30_000);

    const second = await ca.issue("secure.example.com", { dnsNames: ["secure.example.com"] });
    await client.patch(Core.Secret, ns, "secure-tls", { stringData: { "tls.crt": second.cert, "tls.key": second.key } }, PatchType.merge);
    await eventually(async () => expect(await vpsFile(edge, sds)).toContain(JSON.stringify(second.cert).slice(1, 60)), 60_000);
    await waitForKtubeCondition(kc, "Tunnel", ns, "vps", "ConfigApplied", { status: "True" });
  });

  it("puts back, on the periodic check, a firewall and listener file edited on the VPS", async () => {
    const firewall = await vpsFile(edge, FIREWALL_FILE);
    const lds = await vpsFile(edge, "/etc/ktube/envoy/lds.json");
    await edge.vps.exec(`echo '# edited' >> ${FIREWALL_FILE}; nft delete table inet ktube; echo '{}' > /etc/ktube/envoy/lds.json.new && mv /etc/ktube/envoy/lds.json.new /etc/ktube/envoy/lds.json`);
    await eventually(async () => {
      expect(await vpsFile(edge, FIREWALL_FILE)).toBe(firewall);
      expect((await edge.vps.exec("nft list table inet ktube")).code).toBe(0);
      expect(await vpsFile(edge, "/etc/ktube/envoy/lds.json")).toBe(lds);
    }, 30_000);
  });

  it("removes everything from the VPS when the Tunnel is deleted", async () => {
    await client.delete(TunnelResource, ns, "vps");
    await eventually(async () => {
      expect((await edge.vps.exec("ls -d /etc/ktube /usr/local/lib/ktube 2>/dev/null; nft list table inet ktube 2>/dev/null; true")).stdout).toBe("");
    }, 60_000);
  });
});

describe("an edge Tunnel and its VPS's SSH keys", () => {
  it("refuses an unknown host key naming its fingerprint, then a client key the VPS does not accept, enrolls once both are right, and refuses a changed host key", async () => {
    const other = await startEdgeVps();
    try {
      // The provider's Envoy comes from the first VPS's download server: this one trusts its CA too.
      await trustCa(other.vps, edge.caCert);
      await client.create(TunnelResource, tunnel("second", other));
      const refused = await waitForKtubeCondition(kc, "Tunnel", ns, "second", "Enrolled", { status: "False", reason: "HostKeyUnknown" }, 60_000);
      expect(refused.conditions?.find((c) => c.type === "Enrolled")?.message).toContain(other.vps.hostKeyFingerprint);
      expect(refused.hostKeyFingerprint).toBe(other.vps.hostKeyFingerprint);
      expect(refused.conditions?.find((c) => c.type === "Ready")).toMatchObject({ status: "False", reason: "HostKeyUnknown" });
      expect((await other.vps.exec("ls -d /etc/ktube 2>/dev/null; true")).stdout).toBe("");

      // Pinned, but this VPS does not know the provider's client key.
      await client.patch(Core.Secret, controllerNs, "vps-ssh", {
        stringData: { privateKey: edge.vps.clientPrivateKey, knownHosts: `${edge.vps.hostPublicKey}\n${other.vps.hostPublicKey}\n` },
      }, PatchType.merge);
      await waitForKtubeCondition(kc, "Tunnel", ns, "second", "Enrolled", { status: "False", reason: "SSHAuthenticationFailed" }, 60_000);

      other.vps.authorize(edge.vps.clientPublicKey);
      await waitForKtubeCondition(kc, "Tunnel", ns, "second", "Enrolled", { status: "True" }, 90_000);
      await waitForKtubeCondition(kc, "Tunnel", ns, "second", "ConfigApplied", { status: "True" }, 60_000);

      const pinned = other.vps.hostKeyFingerprint;
      await other.vps.rotateHostKey();
      const changed = await waitForKtubeCondition(kc, "Tunnel", ns, "second", "Enrolled", { status: "False", reason: "HostKeyChanged" }, 60_000);
      expect(changed.hostKeyFingerprint).toBe(other.vps.hostKeyFingerprint);
      expect(changed.hostKeyFingerprint).not.toBe(pinned);

      // Deleting it cannot reach the VPS safely; abandoned on purpose, the VPS keeps what it has.
      await client.patch(TunnelResource, ns, "second", { metadata: { annotations: { "ktube.dev/abandon-on-delete": "true" } } }, PatchType.merge);
      await client.delete(TunnelResource, ns, "second");
      await eventually(async () => expect(await client.get(TunnelResource, ns, "second").then(() => "present", () => "gone")).toBe("gone"), 60_000);
      expect((await other.vps.exec("cat /etc/ktube/owner")).stdout).toContain(`${ns}/second `);
    } finally {
      await client.delete(TunnelResource, ns, "second").catch(() => undefined);
      await other.stop();
    }
  });
});

describe("the edge controller killed in the middle of enrolling", () => {
  it("converges when it starts again: enrolled once, one Envoy, nothing of the cut download left", async () => {
    const vps = await startEdgeVps();
    const label = `${id}-kill`;
    const provider = `edge-kill-${id}`;
    // The first download hangs, so the kill lands mid-enrollment; the next one is served at once.
    const slow = vps.offer(vps.envoyExecutable, { delayMs: 120_000, delayOnce: true });
    const processes: TestProcess[] = [];
    const start = (): TestProcess => {
      const child = spawn(
        process.execPath,
        [
          "--disable-warning=ExperimentalWarning",
          MAIN,
          `--kubeconfig=${process.env.KUBECONFIG}`,
          `--namespace=${controllerNs}`,
          `--provider-selector=ktube.dev/test-harness=${label}`,
          "--leader-elect=false",
          "--health-probe-bind-address=127.0.0.1:0",
          "--metrics-bind-address=127.0.0.1:0",
          "--resync-interval=2",
        ],
        { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOG_LEVEL: process.env.KTUBE_TEST_LOG ?? "info" } },
      );
      const started = new TestProcess(child);
      processes.push(started);
      return started;
    };
    try {
      await createEdgeProvider(kc, { edge: vps, namespace: controllerNs, provider, id: label, secret: "vps-ssh-kill", envoy: slow });
      await client.create(TunnelResource, tunnel("killed", vps, provider));

      const first = start();
      await slow.requested; // the VPS is downloading Envoy for the first controller
      expect((await vps.vps.exec("cat /etc/ktube/owner")).stdout).toContain(`${ns}/killed `);
      await first.kill();

      const second = start();
      const status = await waitForKtubeCondition(kc, "Tunnel", ns, "killed", "ConfigApplied", { status: "True" }, 90_000);
      expect(status.conditions?.find((c) => c.type === "Enrolled")?.status).toBe("True");
      expect(await envoyProcesses(vps)).toHaveLength(1);
      expect((await vps.vps.exec("ls -d /usr/local/lib/ktube/.download.* 2>/dev/null | wc -l")).stdout.trim()).toBe("0");
      expect(second.output).not.toContain("Error:");

      await client.delete(TunnelResource, ns, "killed");
      await eventually(async () => expect((await vps.vps.exec("ls -d /etc/ktube 2>/dev/null; true")).stdout).toBe(""), 60_000);
    } finally {
      await Promise.all(processes.map((p) => p.stop()));
      await client.delete(TunnelResource, ns, "killed").catch(() => undefined);
      await client.delete(TunnelProviderResource, undefined, provider).catch(() => undefined);
      await vps.stop();
    }
  });
});
