// The Helm charts: lint, render, install server-side, and prove the controller runs
// with nothing but the RBAC the chart grants.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { KubeConfig } from "@kubernetes/client-node";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import { FakeCloudflare } from "@ktube/fake-cloudflare";
import { ApiError, createLogger, KubeClient, Manager, PatchType, type KubeObject } from "@ktube/runtime";
import { createTestNamespace, deleteTestNamespace, ensureHelm, eventually, kubectl, testKubeConfig } from "@ktube/testenv";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { kubeConfigAs } from "./service-account.ts";

const run = promisify(execFile);
const CHARTS = join(import.meta.dirname, "..", "..", "charts");
const UMBRELLA = join(CHARTS, "ktube");
const CLOUDFLARE = join(UMBRELLA, "charts", "cloudflare-controller");

let helm: string;
let kc: KubeConfig;
let admin: KubeClient;
let ns: string;

beforeAll(async () => {
  helm = await ensureHelm((line) => process.stderr.write(`[testenv] ${line}\n`));
  kc = testKubeConfig();
  admin = new KubeClient(kc);
  ns = await createTestNamespace(kc, "ktube-system");
}, 1_800_000);
afterAll(() => deleteTestNamespace(kc, ns));

async function helmRun(args: string[]): Promise<string> {
  const { stdout } = await run(helm, args, { maxBuffer: 32 * 1024 * 1024, env: { ...process.env, HELM_CACHE_HOME: "/tmp/ktube-helm-cache", HELM_CONFIG_HOME: "/tmp/ktube-helm-config" } });
  return stdout;
}

const render = async (chart: string, extra: string[] = []) =>
  parseAllDocuments(await helmRun(["template", "ktube", chart, "--namespace", ns, "--include-crds", ...extra]))
    .map((d) => d.toJS() as KubeObject & { spec?: Record<string, unknown>; rules?: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> })
    .filter(Boolean);

describe("charts", () => {
  it("pass helm lint (umbrella and subchart), with default values and with every option set", async () => {
    const options = ["quickTunnels.enabled=true", "providerSelector=shard=a", "leaderElection.id=cloudflare-shard-a", "admissionPolicy.enabled=false"];
    const set = (prefix: string) => options.flatMap((o) => ["--set", `${prefix}${o}`]);
    for (const [chart, values] of [
      [UMBRELLA, []],
      [UMBRELLA, set("cloudflare-controller.")],
      [CLOUDFLARE, []],
      [CLOUDFLARE, set("")],
    ] as const) {
      const out = await helmRun(["lint", "--strict", chart, ...values]);
      expect(out).toContain("0 chart(s) failed");
    }
  });

  it("render the controller, its least-privilege RBAC and the CRDs", async () => {
    const objects = await render(UMBRELLA);
    const kinds = objects.map((o) => `${o.kind}/${o.metadata?.name}`);
    expect(kinds).toEqual(
      expect.arrayContaining([
        "CustomResourceDefinition/tunnelbindings.ktube.dev",
        "CustomResourceDefinition/tunnels.ktube.dev",
        "CustomResourceDefinition/tunnelproviders.ktube.dev",
        "ServiceAccount/ktube-cloudflare-controller",
        "ClusterRole/ktube-cloudflare-controller",
        "Role/ktube-cloudflare-controller",
        "Deployment/ktube-cloudflare-controller",
        "ValidatingAdmissionPolicy/ktube-cloudflare-controller-managed-objects",
        "ValidatingAdmissionPolicyBinding/ktube-cloudflare-controller-managed-objects",
        "ValidatingAdmissionPolicy/ktube-cloudflare-controller-connector-pods",
        "ValidatingAdmissionPolicyBinding/ktube-cloudflare-controller-connector-pods",
      ]),
    );
    const clusterRole = objects.find((o) => o.kind === "ClusterRole")!;
    const rules = clusterRole.rules!;
    const verbsOn = (resource: string) => [...new Set(rules.filter((r) => r.resources.includes(resource)).flatMap((r) => r.verbs))].sort();
    expect(rules.some((r) => r.verbs.includes("*") || r.resources.includes("*") || r.apiGroups.includes("*"))).toBe(false);
    // Secrets cluster-wide: write the connector token, never read (reads only in its namespace, in the Role).
    expect(verbsOn("secrets")).toEqual(["create", "patch", "update"]);
    // Status only through patch.
    for (const status of ["tunnelproviders/status", "tunnels/status", "tunnelbindings/status"]) expect(verbsOn(status)).toEqual(["patch"]);
    expect(rules.filter((r) => r.resources.some((res) => res.endsWith("/status"))).flatMap((r) => r.verbs)).toEqual(["patch"]);
    // Services: read only, unless quick tunnels are enabled (below).
    expect(verbsOn("services")).toEqual(["get", "list", "watch"]);
    expect(verbsOn("deployments")).toEqual(["create", "delete", "get", "list", "patch", "update", "watch"]);
    expect(verbsOn("poddisruptionbudgets")).toEqual(["create", "delete", "get", "list", "patch", "update", "watch"]);
    const role = objects.find((o) => o.kind === "Role")!;
    expect(role.rules).toEqual([
      { apiGroups: [""], resources: ["secrets"], verbs: ["get", "list", "watch"] },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
    ]);
    const deployment = objects.find((o) => o.kind === "Deployment")! as unknown as {
      spec: { template: { spec: { securityContext: Record<string, unknown>; containers: Array<{ securityContext: Record<string, unknown>; args: string[] }> } } };
    };
    const pod = deployment.spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true });
    expect(pod.containers[0]!.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    expect(pod.containers[0]!.args).toContain("--leader-elect=true");
  });

  it("take values: a provider selector, owner id and Lease name reach the controller's flags", async () => {
    const argsOf = (objects: KubeObject[]) =>
      (objects.find((o) => o.kind === "Deployment") as unknown as { spec: { template: { spec: { containers: Array<{ args: string[] }> } } } }).spec.template.spec.containers[0]!.args;
    const args = argsOf(await render(CLOUDFLARE, ["--set", "providerSelector=shard=a", "--set", "ownerId=blue", "--set", "leaderElection.id=cloudflare-shard-a"]));
    expect(args).toEqual(expect.arrayContaining(["--provider-selector=shard=a", "--owner-id=blue", "--leader-election-id=cloudflare-shard-a"]));
    // No id: the controller derives the Lease name from its provider selector.
    expect(argsOf(await render(CLOUDFLARE)).filter((a) => a.startsWith("--leader-election-id"))).toEqual([]);
  });

  it("take values: quickTunnels.enabled grants writes on Services; admissionPolicy.enabled=false drops the policies", async () => {
    const objects = await render(CLOUDFLARE, ["--set", "quickTunnels.enabled=true"]);
    const rules = objects.find((o) => o.kind === "ClusterRole")!.rules!;
    expect(rules.filter((r) => r.resources.includes("services")).flatMap((r) => r.verbs).sort()).toEqual(["create", "delete", "get", "list", "patch", "update", "watch"]);
    const kinds = (await render(CLOUDFLARE, ["--set", "admissionPolicy.enabled=false"])).map((o) => o.kind);
    expect(kinds).toContain("ClusterRole");
    expect(kinds.filter((k) => k?.startsWith("ValidatingAdmissionPolicy"))).toEqual([]);
  });

  it("apply to the API server (server-side dry run)", async () => {
    const manifest = await helmRun(["template", "ktube", UMBRELLA, "--namespace", ns, "--include-crds"]);
    const result = await kubectl(["apply", "--server-side", "--dry-run=server", "--field-manager=helm-test", "-f", "-"], manifest);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("deployment.apps/ktube-cloudflare-controller serverside-applied (server dry run)");
    expect(result.stdout).toContain("validatingadmissionpolicy.admissionregistration.k8s.io/ktube-cloudflare-controller-managed-objects serverside-applied (server dry run)");
    expect(result.stdout).toContain("validatingadmissionpolicybinding.admissionregistration.k8s.io/ktube-cloudflare-controller-connector-pods serverside-applied (server dry run)");
  });
});

describe("the controller with only the chart's RBAC", () => {
  it("serves a tunnel and a binding, and cannot read Secrets outside its namespace", async () => {
    // Imported here, not at the top: the chart tests above must not depend on the app loading.
    const { cloudflarePlugin } = await import("@ktube/cloudflare-controller/plugin");
    const { registerProviderControllers } = await import("@ktube/provider-kit");
    // Install the chart's RBAC and admission policies for real (the Deployment cannot run here: no nodes).
    const manifest = await helmRun([
      "template", "ktube", CLOUDFLARE, "--namespace", ns,
      "--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml", "--show-only", "templates/admission-policy.yaml",
    ]);
    const applied = await kubectl(["apply", "--server-side", "--field-manager=helm-test", "-f", "-"], manifest);
    expect(applied.code).toBe(0);
    const sa = `system:serviceaccount:${ns}:ktube-cloudflare-controller`;
    expect((await kubectl(["auth", "can-i", "get", "secrets", "-n", "default", `--as=${sa}`])).stdout.trim()).toBe("no");
    expect((await kubectl(["auth", "can-i", "list", "secrets", "-n", ns, `--as=${sa}`])).stdout.trim()).toBe("yes");
    expect((await kubectl(["auth", "can-i", "update", "tunnelbindings.ktube.dev", "-n", "default", `--as=${sa}`])).stdout.trim()).toBe("no");

    const asController = await kubeConfigAs(kc, admin, ns, "ktube-cloudflare-controller");

    // Barrier: the policies are enforced (a write the controller must never make is refused)
    // before the controller runs, so "no 403" below also proves they never refuse its real writes.
    const asControllerClient = new KubeClient(asController);
    await eventually(async () => {
      const refused = await asControllerClient
        .request("POST", `/apis/apps/v1/namespaces/${ns}/deployments`, {
          query: { dryRun: "All" },
          body: { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "unmarked" }, spec: { selector: { matchLabels: { a: "b" } }, template: { metadata: { labels: { a: "b" } }, spec: { containers: [{ name: "c", image: "x" }] } } } },
        })
        .then(() => false, (e: unknown) => e instanceof ApiError && e.status === 403);
      if (!refused) throw new Error("the admission policy does not refuse unmanaged writes yet");
    }, 30_000);

    const fake = new FakeCloudflare();
    const account = fake.addAccount();
    fake.addToken("rbac-token", [account]);
    fake.addZone("rbac.example", account);
    await fake.start();
    await admin.create(Core.Secret, { metadata: { name: "cloudflare-api", namespace: ns }, stringData: { token: "rbac-token" } } as KubeObject);
    const manager = new Manager({
      kubeConfig: asController,
      name: "cloudflare-controller",
      logger: createLogger({ level: process.env.KTUBE_TEST_LOG ?? "silent", format: "text" }),
      probeAddress: false,
      metricsAddress: false,
      leaderElection: { namespace: ns },
    });
    registerProviderControllers(manager, cloudflarePlugin({ ownerId: "rbac", cloudflaredImage: "cloudflared:test", apiUrl: fake.baseUrl }), {
      namespace: ns,
      managedBy: "ktube-cloudflare-controller",
      maxConcurrentReconciles: 2,
      configDelayMs: 100,
    });
    const apps = await createTestNamespace(kc, "rbac-apps");
    try {
      await manager.start();
      const providerName = `rbac-${ns}`;
      await admin.create(TunnelProviderResource, { metadata: { name: providerName }, spec: { type: "cloudflare", cloudflare: { accountId: account, apiTokenSecretRef: { name: "cloudflare-api", key: "token" } } } } as KubeObject);
      await admin.create(TunnelResource, { metadata: { name: "t", namespace: apps }, spec: { providerRef: { name: providerName }, cloudflare: { replicas: 1 } } } as KubeObject);
      await admin.create(Core.Service, { metadata: { name: "web", namespace: apps }, spec: { ports: [{ name: "http", port: 80 }] } } as KubeObject);
      await admin.create(TunnelBindingResource, { metadata: { name: "b", namespace: apps }, spec: { tunnelRef: { name: "t" }, routes: [{ name: "web", hostname: "app.rbac.example", service: { name: "web", port: "http" } }] } } as KubeObject);
      const tunnelId = await eventually(async () => {
        const t = await admin.get<KubeObject & { status?: { tunnelId?: string } }>(TunnelResource, apps, "t");
        if (!t.status?.tunnelId) throw new Error("no tunnel yet");
        return t.status.tunnelId;
      }, 30_000);
      fake.setConnections(tunnelId, 1);
      await eventually(() => admin.get(Core.Deployment, apps, "t-cloudflared"), 20_000);
      await admin.patch(Core.Deployment, apps, "t-cloudflared", { status: { replicas: 1, readyReplicas: 1, availableReplicas: 1 } }, PatchType.merge, { subresource: "status" });
      await eventually(async () => {
        const b = await admin.get<KubeObject & { status?: { routes?: Array<{ url?: string; ready: boolean }> } }>(TunnelBindingResource, apps, "b");
        expect(b.status?.routes).toEqual([{ name: "web", url: "https://app.rbac.example/", ready: true }]);
      }, 30_000);
      // Nothing the controller did was refused.
      expect(await manager.metrics.count("rest_client_requests_total", { code: "403" })).toBe(0);
      expect(fake.schemaViolations).toEqual([]);
    } finally {
      await manager.stop();
      await fake.stop();
      await deleteTestNamespace(kc, apps);
    }
  });
});
