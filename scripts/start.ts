// `npm start`: runs every KTube controller against the current cluster, or, with no
// kubeconfig, against a local control plane with fake Cloudflare, ngrok and Dev Tunnels
// services so the examples can be applied and watched end to end: the examples' namespaces
// and Services exist, a demo backend on loopback answers for every Service, and a
// LocalKubelet runs the connectors the controllers deploy (ngrok agents, Dev Tunnels hosts,
// and for cloudflared the fake's stand-in) as local processes, so those bindings become
// Ready and their URLs answer through the fakes' public sides. The dashboard runs beside
// the controllers; locally, a demo user's sign-in token is printed. Where this machine can
// make network namespaces (as root), examples/edge.yaml runs too, against a local VPS (see
// edge-demo.ts): its uplink Pods run in network namespaces of their own.
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { FakeCloudflare, type FakeCloudflareEdge } from "@ktube/fake-cloudflare";
import { FakeDevTunnels } from "@ktube/fake-devtunnels";
import { FakeNgrok } from "@ktube/fake-ngrok";
import { CONNECTOR_ENV } from "@ktube/provider-kit";
import { LocalKubelet, startWithCrds, type ControlPlane } from "@ktube/testenv";
import { createDemoServices, demoUpstreams, startDemoBackend, type DemoBackend } from "./demo-backend.ts";
import { EDGE_UPLINK_APP, edgeDemoUnavailable, startEdgeDemo, type EdgeDemo } from "./edge-demo.ts";
import { LocalServiceProxy } from "./service-proxy.ts";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..");
const CONTROLLERS: Array<{ name: string; main: string; probe: number; metrics: number; args: string[]; env?: NodeJS.ProcessEnv }> = [
  { name: "cloudflare-controller", main: "apps/cloudflare-controller/src/main.ts", probe: 8081, metrics: 8080, args: [] },
  { name: "ngrok-controller", main: "apps/ngrok-controller/src/main.ts", probe: 8083, metrics: 8082, args: [] },
  { name: "devtunnels-controller", main: "apps/devtunnels-controller/src/main.ts", probe: 8085, metrics: 8084, args: [] },
  // Enrolls the VPSes edge Tunnels name, over SSH (locally, as root: a VPS in a network namespace, see edge-demo.ts).
  { name: "edge-controller", main: "apps/edge-controller/src/main.ts", probe: 8087, metrics: 8086, args: [] },
];
const controller = (name: string) => CONTROLLERS.find((c) => c.name === name)!;
const NAMESPACE = process.env.KTUBE_NAMESPACE ?? "ktube-system";
const DASHBOARD_PORT = Number(process.env.KTUBE_DASHBOARD_PORT ?? 8088);
/** The local demo's dashboard user: sees everything KTube, writes bindings (what a platform team member would). */
const DEMO_USER = "ktube-demo";
// The connectors the local kubelet runs (the `app.kubernetes.io/name` of their Deployments, see
// each controller's manifests).
const CONNECTORS = ["ngrok-agent", "devtunnels-host", "cloudflared", "cloudflared-quick-tunnel", EDGE_UPLINK_APP];
// The namespaces the examples use; shop lets bindings use the Cloudflare Tunnel `home` (examples/cloudflare.yaml).
const DEMO_NAMESPACES: Array<{ name: string; labels?: Record<string, string> }> = [
  { name: "platform" },
  { name: "shop", labels: { "ktube.dev/tunnel-access": "home" } },
  { name: "demo" },
];
const DEMO_ACCOUNT = "0123456789abcdef0123456789abcdef"; // the account id examples/cloudflare.yaml uses
const say = (line: string): void => void process.stderr.write(`[ktube] ${line}\n`);

/**
 * The program an image runs: `…/<app>:tag` is apps/<app>/src/main.ts (its `connector`
 * subcommand for connectors); cloudflared, not a program of this repo, is the fake edge's stand-in.
 */
function programOf(image: string): string {
  if (/^(docker\.io\/)?cloudflare\/cloudflared([:@]|$)/.test(image)) return join("packages", "fake-cloudflare", "src", "cloudflared.ts");
  const app = /([a-z0-9-]+-controller)(?::[^/]*)?$/.exec(image)?.[1];
  if (!app || !existsSync(join(ROOT, "apps", app, "src", "main.ts"))) throw new Error(`no program of this repo for the image ${image}`);
  return join("apps", app, "src", "main.ts");
}

const existing = process.env.KUBECONFIG ?? join(homedir(), ".kube", "config");
const local = !existsSync(existing);
let controlPlane: ControlPlane | undefined;
let fake: FakeCloudflare | undefined;
let edge: FakeCloudflareEdge | undefined;
let ngrok: FakeNgrok | undefined;
let devtunnels: FakeDevTunnels | undefined;
let backend: DemoBackend | undefined;
let kubelet: LocalKubelet | undefined;
let serviceProxy: LocalServiceProxy | undefined;
let edgeDemo: EdgeDemo | undefined;
let edgeUnavailable: string | undefined;
const children: ChildProcess[] = [];
let kubeconfig = existing;
let dashboardToken: string | undefined;
const env: NodeJS.ProcessEnv = { ...process.env, LOG_FORMAT: process.env.LOG_FORMAT ?? "text" };

let stopping: Promise<never> | undefined;
function stop(code = 0): Promise<never> {
  stopping ??= stopAll(code);
  return stopping;
}
async function stopAll(code: number): Promise<never> {
  for (const child of children) child.kill("SIGTERM");
  // The kubelet stops replacing Pods first; the edge's node goes with its uplink Pods (SIGKILL:
  // no drain, the whole demo is going away), then the kubelet stops what is left.
  const kubeletClosed = kubelet?.close();
  await edgeDemo?.stop();
  await Promise.all([
    ...children.map((c) => new Promise((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve(null) : c.once("exit", resolve)))),
    kubeletClosed,
  ]);
  await backend?.close();
  await serviceProxy?.close();
  await fake?.stop();
  await ngrok?.stop();
  await devtunnels?.stop();
  await controlPlane?.stop();
  process.exit(code);
}
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());

if (local) {
  say("no kubeconfig found: starting a local control plane (the first run builds it, see README)");
  controlPlane = await startWithCrds({ log: say });
  const kc = controlPlane.kubeConfig();
  kubeconfig = controlPlane.kubeconfigPath;
  const core = kc.makeApiClient(CoreV1Api);
  for (const ns of [{ name: NAMESPACE }, ...DEMO_NAMESPACES]) await core.createNamespace({ body: { metadata: ns } });
  // Cloudflare cannot be reached from a sandbox; a fake account stands in for it.
  fake = new FakeCloudflare();
  fake.addAccount(DEMO_ACCOUNT, "Demo account");
  fake.addToken("demo-token", [DEMO_ACCOUNT]);
  fake.addZone("example.com", DEMO_ACCOUNT);
  env.CLOUDFLARE_BASE_URL = await fake.start();
  await kc.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: NAMESPACE, body: { metadata: { name: "cloudflare-api" }, stringData: { token: "demo-token" } } });
  // And its edge: cloudflared connectors register there, the public side follows the DNS records and ingress configuration.
  edge = await fake.startEdge();
  say(`fake Cloudflare API at ${env.CLOUDFLARE_BASE_URL} (account ${DEMO_ACCOUNT}, zone example.com, token in ${NAMESPACE}/cloudflare-api), its edge at ${edge.address}`);
  // So is ngrok's cloud: its agent ingress and REST API. (The agents themselves need a
  // kubelet to run as Pods; on this control plane their Tunnels wait in AgentsStarting.)
  ngrok = new FakeNgrok();
  const authtoken = ngrok.addAuthtoken();
  const apiKey = ngrok.addApiKey();
  ngrok.reserveDomain("api.ngrok.example.com");
  await ngrok.start();
  const ca = join(mkdtempSync(join(tmpdir(), "ktube-ngrok-")), "ca.pem");
  writeFileSync(ca, ngrok.caPem);
  controller("ngrok-controller").args.push(`--ngrok-server-addr=${ngrok.serverAddr}`, `--ngrok-ca-file=${ca}`, `--ngrok-api-url=${ngrok.apiUrl}`);
  await kc.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: NAMESPACE, body: { metadata: { name: "ngrok" }, stringData: { authtoken, apiKey } } });
  say(`fake ngrok cloud: agent ingress ${ngrok.serverAddr}, API ${ngrok.apiUrl} (authtoken and API key in ${NAMESPACE}/ngrok)`);
  // And the Dev Tunnels service (management API, relay, Entra), with the app examples/devtunnels.yaml names.
  devtunnels = new FakeDevTunnels({ clusterId: "euw" });
  devtunnels.addApp("contoso.onmicrosoft.com", "00000000-0000-0000-0000-000000000001", "demo-client-secret");
  await devtunnels.start();
  controller("devtunnels-controller").args.push(`--devtunnels-service-url=${devtunnels.serviceUrl}`, `--entra-authority-url=${devtunnels.entra.authority}`);
  await kc.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: NAMESPACE, body: { metadata: { name: "devtunnels" }, stringData: { clientSecret: "demo-client-secret" } } });
  say(`fake Dev Tunnels service at ${devtunnels.serviceUrl} (Entra app of examples/devtunnels.yaml; its secret in ${NAMESPACE}/devtunnels)`);
  // What the bindings route to: the examples' Services, all answered by one backend on loopback.
  backend = await startDemoBackend();
  await createDemoServices(core);
  say(`demo backend: HTTP on 127.0.0.1:${backend.httpPort}, HTTPS on 127.0.0.1:${backend.httpsPort}, TCP echo on 127.0.0.1:${backend.tcpPort}, behind the Services of examples/*.yaml (${DEMO_NAMESPACES.map((n) => n.name).join(", ")})`);
  // And a node of sorts: the connector Deployments' Pods run here, each an image's program,
  // with a proxy that stands in for cluster DNS and kube-proxy (see service-proxy.ts): the
  // Cloudflare controller reads quick tunnels' URLs from their Services.
  serviceProxy = new LocalServiceProxy(kc);
  controller("cloudflare-controller").env = { NODE_USE_ENV_PROXY: "1", HTTP_PROXY: await serviceProxy.start(), NO_PROXY: "127.0.0.1,localhost,::1" };
  // And a VPS for examples/edge.yaml, with a node whose Pod namespaces the uplinks run in, where this machine can make them.
  edgeUnavailable = edgeDemoUnavailable();
  if (!edgeUnavailable) {
    try {
      edgeDemo = await startEdgeDemo(kc, { example: join(ROOT, "examples", "edge.yaml"), controllerNamespace: NAMESPACE });
      say(
        `edge: a VPS at ${edgeDemo.vpsAddress} (network namespace ${edgeDemo.vpsNamespace}: a real sshd, fake-envoy offered as its Envoy), ` +
          `a node (network namespace ${edgeDemo.nodeNamespace}) with the backends of examples/edge.yaml's routes behind its Services, the uplinks' Pods in namespaces joined to it`,
      );
    } catch (error) {
      edgeUnavailable = `starting its VPS failed: ${(error as Error).message}`;
    }
  }
  kubelet = new LocalKubelet(kc, {
    podEnv: async (pod) => ({ ...(await serviceProxy!.podEnv(pod)), ...edgeDemo?.podEnv(pod) }),
    networkNamespace: (pod) => edgeDemo?.networkNamespace(pod),
    command: (image) => [process.execPath, "--disable-warning=ExperimentalWarning", join(ROOT, programOf(image))],
    env: {
      LOG_LEVEL: process.env.LOG_LEVEL ?? "warn", // kept in memory, the last lines said when a connector exits
      [CONNECTOR_ENV.upstreamOverrides]: JSON.stringify(demoUpstreams(backend)),
      // Where cloudflared (the stand-in) dials, and asks for quick tunnels.
      TUNNEL_EDGE: edge.address,
      TUNNEL_QUICK_SERVICE: edge.quickServiceUrl,
    },
  });
  kubelet.run({ labelSelector: `app.kubernetes.io/name in (${CONNECTORS.join(",")})`, log: (line) => say(`local kubelet: ${line}`) });
  dashboardToken = await demoUserToken(kc);
} else {
  const kc = new KubeConfig();
  kc.loadFromFile(existing);
  say(`using ${existing} (context ${kc.getCurrentContext()})`);
}

for (const c of CONTROLLERS) {
  const child = spawn(
    process.execPath,
    [join(ROOT, c.main), `--kubeconfig=${kubeconfig}`, `--namespace=${NAMESPACE}`, "--leader-elect=false", `--health-probe-bind-address=127.0.0.1:${c.probe}`, `--metrics-bind-address=127.0.0.1:${c.metrics}`, ...c.args],
    { env: { ...env, ...c.env }, stdio: "inherit" },
  );
  children.push(child);
  child.once("exit", (code) => {
    if (stopping) return;
    say(`${c.name} exited with ${code}`);
    void stop(code ?? 1);
  });
}

// The dashboard: every Kubernetes call it makes is the signed-in user's.
const dashboard = spawn(process.execPath, [join(ROOT, "apps/dashboard/src/main.ts"), `--kubeconfig=${kubeconfig}`, `--listen=127.0.0.1:${DASHBOARD_PORT}`], { env, stdio: ["ignore", "ignore", "inherit"] });
children.push(dashboard);
dashboard.once("exit", (code) => {
  if (stopping) return;
  say(`the dashboard exited with ${code}`);
  void stop(code ?? 1);
});

say(`controllers running: ${CONTROLLERS.map((c) => `${c.name} (metrics http://127.0.0.1:${c.metrics}/metrics)`).join(", ")}`);
console.log(`export KUBECONFIG=${kubeconfig}`);
say(`dashboard: http://localhost:${DASHBOARD_PORT}/ (${dashboardToken ? `sign in as ${DEMO_USER} with the token on the next line, valid 8 h` : "sign in with a token of yours: kubectl create token <serviceaccount>"})`);
if (dashboardToken) console.log(`dashboard token: ${dashboardToken}`);
if (local) {
  const ngrokHttp = `http://127.0.0.1:${ngrok!.ingress.publicHttpPort}/`;
  const relayHttp = `http://127.0.0.1:${devtunnels!.relay.publicHttpPort}/`;
  const edgeHttp = `http://127.0.0.1:${edge!.publicHttpPort}/`;
  const url = (ns: string, binding: string, route: string): string => `kubectl -n ${ns} get tb ${binding} -o jsonpath='{.status.routes[?(@.name=="${route}")].url}'`;
  say("try it (in another shell, after the export above; the namespaces platform, shop and demo and the examples' Services exist):");
  say("  kubectl apply -f examples/ngrok.yaml && kubectl -n shop wait tb/api --for=condition=Ready --timeout=60s");
  say(`    # the fake ngrok's public side (${ngrokHttp}) serves https://api.ngrok.example.com:`);
  say(`    curl -H 'Host: api.ngrok.example.com' ${ngrokHttp}`);
  say(`    # its TCP route (tcp://127.0.0.1:PORT on the fake) reaches the backend's echo:`);
  say(`    echo hello | curl -s --max-time 1 $(${url("shop", "api", "postgres")} | sed 's/^tcp:/telnet:/')`);
  say("  kubectl apply -f examples/devtunnels.yaml && kubectl -n demo wait tb/preview --for=condition=Ready --timeout=60s");
  say(`    # the fake relay's web forwarding (${relayHttp}) serves https://<id>-3000.euw.devtunnels.ms/:`);
  say(`    curl -H "Host: $(${url("demo", "preview", "web")} | cut -d/ -f3)" ${relayHttp}`);
  say("  kubectl apply -f examples/cloudflare.yaml && kubectl -n shop wait tb/shop --for=condition=Ready --timeout=60s");
  say(`    # the fake Cloudflare edge (${edgeHttp}) serves https://shop.example.com through the tunnel's cloudflared (the fake's stand-in):`);
  say(`    curl -H 'Host: shop.example.com' ${edgeHttp}`);
  say("    # admin.shop.example.com is behind Cloudflare Access: the edge sends you to its login");
  say(`    curl -si -H 'Host: admin.shop.example.com' ${edgeHttp} | grep -i '^location'`);
  say("  kubectl apply -f examples/cloudflare-quick.yaml && kubectl -n demo wait tb/whoami --for=condition=Ready --timeout=60s");
  say(`    # a quick tunnel: its random https://<words>.trycloudflare.com URL answers on the same edge (${edgeHttp}):`);
  say(`    curl -H "Host: $(${url("demo", "whoami", "web")} | cut -d/ -f3)" ${edgeHttp}`);
  if (edgeDemo) {
    say(`  kubectl apply -f ${edgeDemo.manifest} && kubectl -n shop wait tb/edge-apps --for=condition=Ready --timeout=120s`);
    say(`    # examples/edge.yaml with the local VPS (${edgeDemo.vpsAddress}) and its Envoy download filled in; the controller enrolls it over SSH, the uplinks dial it over WireGuard`);
    for (const line of edgeDemo.tryIt) say(`    ${line}`);
  } else {
    say(`  examples/edge.yaml cannot run here: ${edgeUnavailable} (its Tunnel would stay Ready=False)`);
  }
}
say("Ctrl-C stops everything");

/** A ServiceAccount for the local demo's dashboard, allowed what the demo shows, and a token for it. */
async function demoUserToken(kc: KubeConfig): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  await core.createNamespacedServiceAccount({ namespace: NAMESPACE, body: { metadata: { name: DEMO_USER } } });
  await rbac.createClusterRole({
    body: {
      metadata: { name: DEMO_USER },
      rules: [
        { apiGroups: ["ktube.dev"], resources: ["tunnelproviders", "tunnels", "tunnelbindings"], verbs: ["get", "list", "watch"] },
        { apiGroups: ["ktube.dev"], resources: ["tunnelbindings"], verbs: ["create", "update", "patch", "delete"] },
        { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["get", "list", "watch"] },
        { apiGroups: [""], resources: ["namespaces", "services"], verbs: ["get", "list", "watch"] },
      ],
    },
  });
  await rbac.createClusterRoleBinding({
    body: { metadata: { name: DEMO_USER }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: DEMO_USER }, subjects: [{ kind: "ServiceAccount", name: DEMO_USER, namespace: NAMESPACE }] },
  });
  const request = await core.createNamespacedServiceAccountToken({ namespace: NAMESPACE, name: DEMO_USER, body: { spec: { expirationSeconds: 8 * 3600 } } as never });
  const token = request.status?.token;
  if (!token) throw new Error(`no token for ServiceAccount ${NAMESPACE}/${DEMO_USER}`);
  return token;
}
