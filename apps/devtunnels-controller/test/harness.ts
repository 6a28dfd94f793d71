// The Dev Tunnels controller against the test API server and the fake Dev Tunnels service
// (management API, relay, Entra), with the host connector run as a real process by a
// LocalKubelet (testenv has no nodes), under its own ServiceAccount's token.
import type { KubeConfig } from "@kubernetes/client-node";
import { Core } from "@ktube/api";
import { FakeDevTunnels } from "@ktube/fake-devtunnels";
import { CONNECTOR_ENV, registerProviderControllers, type ProviderKit } from "@ktube/provider-kit";
import { createLogger, KubeClient, Manager, type KubeObject } from "@ktube/runtime";
import { createTestNamespace, deleteTestNamespace, eventually, LocalKubelet, testKubeConfig, TestProcess, type LocalPod } from "@ktube/testenv";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { hostNames, MANAGED_BY } from "../src/manifests/host.ts";
import { devtunnelsPlugin, type DevTunnelsPluginOptions, type DevTunnelsSession } from "../src/plugin.ts";

export const TENANT = "contoso.onmicrosoft.com";
export const CLIENT_ID = "11111111-2222-3333-4444-555555555555";
export const CLIENT_SECRET = "s3cr3t~client~value~that~must~never~leak";

export interface Harness {
  kc: KubeConfig;
  client: KubeClient;
  fake: FakeDevTunnels;
  controllerNs: string;
  id: string;
  providerLabels: Record<string, string>;
  kit?: ProviderKit<DevTunnelsSession>;
  startController(options?: Partial<DevTunnelsPluginOptions>): Promise<Manager>;
  stopController(): Promise<void>;
  /** Runs the real program (src/main.ts) as a child process (for crash tests: killed with real signals). */
  startProcess(): TestProcess;
  /** Makes the host Deployment's Pod and runs it (a LocalKubelet); waits for the Deployment first. */
  runHost(namespace: string, tunnel: string): Promise<LocalPod>;
  /** Where Services are reached from this machine: `svc.ns.svc.cluster.local:80` -> `127.0.0.1:PORT`. */
  upstreams: Record<string, string>;
  namespace(prefix: string): Promise<string>;
  close(): Promise<void>;
}

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));

export async function createHarness(): Promise<Harness> {
  const kc = testKubeConfig();
  const client = new KubeClient(kc);
  const fake = new FakeDevTunnels();
  fake.addApp(TENANT, CLIENT_ID, CLIENT_SECRET);
  await fake.start();
  const id = randomBytes(3).toString("hex");
  const namespaces: string[] = [];
  let manager: Manager | undefined;
  const controllerNs = await createTestNamespace(kc, "ktube-system");
  namespaces.push(controllerNs);
  await client.create(Core.Secret, { metadata: { name: "devtunnels", namespace: controllerNs }, stringData: { clientSecret: CLIENT_SECRET } } as KubeObject);
  const kubelet = new LocalKubelet(kc, { command: () => [process.execPath, "--disable-warning=ExperimentalWarning", MAIN] });
  const upstreams: Record<string, string> = {};
  const processes: TestProcess[] = [];

  const h: Harness = {
    kc,
    client,
    fake,
    controllerNs,
    id,
    upstreams,
    providerLabels: { "ktube.dev/test-harness": id },
    async startController(options = {}) {
      manager = new Manager({
        kubeConfig: kc,
        name: "devtunnels-controller",
        logger: createLogger({ name: "devtunnels-controller", level: process.env.KTUBE_TEST_LOG ?? "silent", format: "text" }),
        probeAddress: false,
        metricsAddress: false,
      });
      h.kit = registerProviderControllers(
        manager,
        devtunnelsPlugin({ ownerId: `test-${id}`, hostImage: "ktube/devtunnels-controller:test", serviceUri: fake.serviceUrl, entraAuthority: fake.entra.authority, ...options }),
        { namespace: controllerNs, managedBy: MANAGED_BY, providerSelector: `ktube.dev/test-harness=${id}`, maxConcurrentReconciles: 4, configDelayMs: 200 },
      );
      await manager.start();
      return manager;
    },
    startProcess() {
      const args = [
        "--disable-warning=ExperimentalWarning",
        MAIN,
        `--kubeconfig=${process.env.KUBECONFIG}`,
        `--namespace=${controllerNs}`,
        `--provider-selector=ktube.dev/test-harness=${id}`,
        "--leader-elect=false",
        "--health-probe-bind-address=127.0.0.1:0",
        "--metrics-bind-address=127.0.0.1:0",
        `--owner-id=test-${id}`,
        "--host-image=ktube/devtunnels-controller:test",
        `--devtunnels-service-url=${fake.serviceUrl}`,
        `--entra-authority-url=${fake.entra.authority}`,
      ];
      const started = new TestProcess(spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOG_LEVEL: process.env.KTUBE_TEST_LOG ?? "info" } }));
      processes.push(started);
      return started;
    },
    async stopController() {
      await manager?.stop();
      manager = undefined;
    },
    async runHost(namespace, tunnel) {
      const name = hostNames({ metadata: { name: tunnel } } as never).name;
      await eventually(() => client.get(Core.Deployment, namespace, name), 30_000);
      return kubelet.addPod(namespace, name, {
        LOG_LEVEL: process.env.KTUBE_TEST_LOG ?? "info",
        [CONNECTOR_ENV.probeAddress]: "127.0.0.1:0",
        [CONNECTOR_ENV.upstreamOverrides]: JSON.stringify(upstreams),
      });
    },
    async namespace(prefix) {
      const ns = await createTestNamespace(kc, prefix);
      namespaces.push(ns);
      return ns;
    },
    async close() {
      await Promise.all(processes.map((p) => p.stop()));
      await kubelet.close();
      await h.stopController();
      await fake.stop();
      await Promise.all(namespaces.map((ns) => deleteTestNamespace(kc, ns)));
    },
  };
  return h;
}

/** A backend Service's stand-in on loopback (HTTP, or HTTPS with `tls`): answers with its name and path. */
export async function startBackend(name: string, tls?: { cert: string; key: string }): Promise<{ port: number; close(): Promise<void> }> {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => void res.writeHead(200, { "content-type": "text/plain" }).end(`${name} ${req.url}`);
  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

export const devtunnelsProvider = (h: Harness, name: string, clientSecretKey = "clientSecret") => ({
  apiVersion: "ktube.dev/v1alpha1",
  kind: "TunnelProvider",
  metadata: { name, labels: h.providerLabels },
  spec: { type: "devtunnels", devtunnels: { entra: { tenantId: TENANT, clientId: CLIENT_ID, clientSecretRef: { name: "devtunnels", key: clientSecretKey } } } },
});

export const tunnel = (namespace: string, name: string, providerName: string, devtunnels: Record<string, unknown> = {}) => ({
  apiVersion: "ktube.dev/v1alpha1",
  kind: "Tunnel",
  metadata: { name, namespace },
  spec: { providerRef: { name: providerName }, devtunnels },
});

export const binding = (namespace: string, name: string, tunnelName: string, routes: Array<Record<string, unknown>>) => ({
  apiVersion: "ktube.dev/v1alpha1",
  kind: "TunnelBinding",
  metadata: { name, namespace },
  spec: { tunnelRef: { name: tunnelName }, routes },
});

export const service = (namespace: string, name: string, port: number) => ({ metadata: { name, namespace }, spec: { ports: [{ name: "http", port, targetPort: port }] } });
