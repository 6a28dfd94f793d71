// `npm start`: runs every KTube controller against the current cluster, or, with no
// kubeconfig, against a local control plane with a fake Cloudflare account so the
// examples can be applied and watched end to end.
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { FakeCloudflare } from "@ktube/fake-cloudflare";
import { startWithCrds, type ControlPlane } from "@ktube/testenv";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..");
const CONTROLLERS = [{ name: "cloudflare-controller", main: "apps/cloudflare-controller/src/main.ts", probe: 8081, metrics: 8080 }];
const NAMESPACE = process.env.KTUBE_NAMESPACE ?? "ktube-system";
const DEMO_ACCOUNT = "0123456789abcdef0123456789abcdef"; // the account id examples/cloudflare.yaml uses
const say = (line: string): void => void process.stderr.write(`[ktube] ${line}\n`);

const existing = process.env.KUBECONFIG ?? join(homedir(), ".kube", "config");
const local = !existsSync(existing);
let controlPlane: ControlPlane | undefined;
let fake: FakeCloudflare | undefined;
const children: ChildProcess[] = [];
let kubeconfig = existing;
const env: NodeJS.ProcessEnv = { ...process.env, LOG_FORMAT: process.env.LOG_FORMAT ?? "text" };

async function stop(code = 0): Promise<never> {
  for (const child of children) child.kill("SIGTERM");
  await Promise.all(children.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.once("exit", resolve)))));
  await fake?.stop();
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
} else {
  const kc = new KubeConfig();
  kc.loadFromFile(existing);
  say(`using ${existing} (context ${kc.getCurrentContext()})`);
}

for (const c of CONTROLLERS) {
  const child = spawn(
    process.execPath,
    [join(ROOT, c.main), `--kubeconfig=${kubeconfig}`, `--namespace=${NAMESPACE}`, "--leader-elect=false", `--health-probe-bind-address=127.0.0.1:${c.probe}`, `--metrics-bind-address=127.0.0.1:${c.metrics}`],
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
}
say("Ctrl-C stops everything");
