// `npm start`: runs every KTube controller against the current cluster, or, with no
// kubeconfig, against a local control plane with fake Cloudflare, ngrok and Dev Tunnels
// services so the examples can be applied and watched end to end.
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { FakeCloudflare } from "@ktube/fake-cloudflare";
import { FakeDevTunnels } from "@ktube/fake-devtunnels";
import { FakeNgrok } from "@ktube/fake-ngrok";
import { startWithCrds, type ControlPlane } from "@ktube/testenv";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..");
const CONTROLLERS: Array<{ name: string; main: string; probe: number; metrics: number; args: string[] }> = [
  { name: "cloudflare-controller", main: "apps/cloudflare-controller/src/main.ts", probe: 8081, metrics: 8080, args: [] },
  { name: "ngrok-controller", main: "apps/ngrok-controller/src/main.ts", probe: 8083, metrics: 8082, args: [] },
  { name: "devtunnels-controller", main: "apps/devtunnels-controller/src/main.ts", probe: 8085, metrics: 8084, args: [] },
  // Enrolls the VPSes edge Tunnels name, over SSH; the local demo has no VPS for it (yet).
  { name: "edge-controller", main: "apps/edge-controller/src/main.ts", probe: 8087, metrics: 8086, args: [] },
];
const NAMESPACE = process.env.KTUBE_NAMESPACE ?? "ktube-system";
const DEMO_ACCOUNT = "0123456789abcdef0123456789abcdef"; // the account id examples/cloudflare.yaml uses
const say = (line: string): void => void process.stderr.write(`[ktube] ${line}\n`);

const existing = process.env.KUBECONFIG ?? join(homedir(), ".kube", "config");
const local = !existsSync(existing);
let controlPlane: ControlPlane | undefined;
let fake: FakeCloudflare | undefined;
let ngrok: FakeNgrok | undefined;
let devtunnels: FakeDevTunnels | undefined;
const children: ChildProcess[] = [];
let kubeconfig = existing;
const env: NodeJS.ProcessEnv = { ...process.env, LOG_FORMAT: process.env.LOG_FORMAT ?? "text" };

async function stop(code = 0): Promise<never> {
  for (const child of children) child.kill("SIGTERM");
  await Promise.all(children.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.once("exit", resolve)))));
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
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NAMESPACE } } });
  // Cloudflare cannot be reached from a sandbox; a fake account stands in for it.
  fake = new FakeCloudflare();
  fake.addAccount(DEMO_ACCOUNT, "Demo account");
  fake.addToken("demo-token", [DEMO_ACCOUNT]);
  fake.addZone("example.com", DEMO_ACCOUNT);
  env.CLOUDFLARE_BASE_URL = await fake.start();
  await kc.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: NAMESPACE, body: { metadata: { name: "cloudflare-api" }, stringData: { token: "demo-token" } } });
  say(`fake Cloudflare API at ${env.CLOUDFLARE_BASE_URL} (account ${DEMO_ACCOUNT}, zone example.com, token in ${NAMESPACE}/cloudflare-api)`);
  // So is ngrok's cloud: its agent ingress and REST API. (The agents themselves need a
  // kubelet to run as Pods; on this control plane their Tunnels wait in AgentsStarting.)
  ngrok = new FakeNgrok();
  const authtoken = ngrok.addAuthtoken();
  const apiKey = ngrok.addApiKey();
  ngrok.reserveDomain("api.ngrok.example.com");
  await ngrok.start();
  const ca = join(mkdtempSync(join(tmpdir(), "ktube-ngrok-")), "ca.pem");
  writeFileSync(ca, ngrok.caPem);
  CONTROLLERS[1]!.args.push(`--ngrok-server-addr=${ngrok.serverAddr}`, `--ngrok-ca-file=${ca}`, `--ngrok-api-url=${ngrok.apiUrl}`);
  await kc.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: NAMESPACE, body: { metadata: { name: "ngrok" }, stringData: { authtoken, apiKey } } });
  say(`fake ngrok cloud: agent ingress ${ngrok.serverAddr}, API ${ngrok.apiUrl} (authtoken and API key in ${NAMESPACE}/ngrok)`);
  // And the Dev Tunnels service (management API, relay, Entra), with the app examples/devtunnels.yaml names.
  devtunnels = new FakeDevTunnels({ clusterId: "euw" });
  devtunnels.addApp("contoso.onmicrosoft.com", "00000000-0000-0000-0000-000000000001", "demo-client-secret");
  await devtunnels.start();
  CONTROLLERS[2]!.args.push(`--devtunnels-service-url=${devtunnels.serviceUrl}`, `--entra-authority-url=${devtunnels.entra.authority}`);
  await kc.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: NAMESPACE, body: { metadata: { name: "devtunnels" }, stringData: { clientSecret: "demo-client-secret" } } });
  say(`fake Dev Tunnels service at ${devtunnels.serviceUrl} (Entra app of examples/devtunnels.yaml; its secret in ${NAMESPACE}/devtunnels)`);
} else {
  const kc = new KubeConfig();
  kc.loadFromFile(existing);
  say(`using ${existing} (context ${kc.getCurrentContext()})`);
}

for (const c of CONTROLLERS) {
  const child = spawn(
    process.execPath,
    [join(ROOT, c.main), `--kubeconfig=${kubeconfig}`, `--namespace=${NAMESPACE}`, "--leader-elect=false", `--health-probe-bind-address=127.0.0.1:${c.probe}`, `--metrics-bind-address=127.0.0.1:${c.metrics}`, ...c.args],
    { env, stdio: "inherit" },
  );
  children.push(child);
  child.once("exit", (code) => {
    say(`${c.name} exited with ${code}`);
    void stop(code ?? 1);
  });
}

say(`controllers running: ${CONTROLLERS.map((c) => `${c.name} (metrics http://127.0.0.1:${c.metrics}/metrics)`).join(", ")}`);
console.log(`export KUBECONFIG=${kubeconfig}`);
if (local) {
  say("try it:  kubectl create namespace platform; kubectl create namespace shop; kubectl label namespace shop ktube.dev/tunnel-access=home");
  say("         kubectl apply -f examples/cloudflare.yaml && kubectl get ktube -A");
  say("         kubectl apply -f examples/ngrok.yaml       (the agents need a kubelet: the Tunnel waits in AgentsStarting)");
  say("         kubectl create namespace demo; kubectl apply -f examples/devtunnels.yaml   (likewise the host: HostStarting)");
}
say("Ctrl-C stops everything");
