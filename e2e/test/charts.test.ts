// The Helm charts: lint, render, install server-side, and prove the controller runs
// with nothing but the RBAC the chart grants.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { KubeConfig } from "@kubernetes/client-node";
import { Core, TunnelBindingResource, TunnelProviderResource, TunnelResource } from "@ktube/api";
import { FakeCloudflare } from "@ktube/fake-cloudflare";
import { FakeNgrok } from "@ktube/fake-ngrok";
import { ApiError, createLogger, KubeClient, Manager, PatchType, type KubeObject } from "@ktube/runtime";
import type { NgrokPluginOptions } from "@ktube/ngrok-controller/plugin";
import type { DevTunnelsPluginOptions } from "@ktube/devtunnels-controller/plugin";
import { createTestNamespace, deleteTestNamespace, ensureHelm, eventually, freePort, kubectl, testKubeConfig } from "@ktube/testenv";
import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { kubeConfigAs } from "@ktube/testenv";

const run = promisify(execFile);
const CHARTS = join(import.meta.dirname, "..", "..", "charts");
const UMBRELLA = join(CHARTS, "ktube");
const CLOUDFLARE = join(UMBRELLA, "charts", "cloudflare-controller");
const NGROK = join(UMBRELLA, "charts", "ngrok-controller");
/** The umbrella with the opt-in ngrok controller turned on too. */
const WITH_NGROK = ["--set", "ngrok-controller.enabled=true"];
const DEVTUNNELS = join(UMBRELLA, "charts", "devtunnels-controller");
/** The umbrella with the opt-in Dev Tunnels controller turned on too. */
const WITH_DEVTUNNELS = ["--set", "devtunnels-controller.enabled=true"];
/** Every option of the Dev Tunnels chart set (lint and flags). */
const DEVTUNNELS_OPTIONS = [
  "hostImage=registry.example/host:1",
  "ownerId=blue",
  "devtunnels.serviceUrl=https://tunnels.example/",
  "devtunnels.entraAuthorityUrl=https://login.example",
  "devtunnels.maxPorts=4",
  "providerSelector=shard=a",
  "leaderElection.id=devtunnels-shard-a",
];
const EDGE = join(UMBRELLA, "charts", "edge-controller");
const DASHBOARD = join(UMBRELLA, "charts", "dashboard");
/** The umbrella with the opt-in dashboard turned on too. */
const WITH_DASHBOARD = ["--set", "dashboard.enabled=true"];
/** Every option of the dashboard chart set (lint and flags). */
const DASHBOARD_OPTIONS = [
  "image.repository=registry.example/dashboard",
  "image.tag=1.2.3",
  "replicas=2",
  "maxSessionHours=2",
  "port=9090",
  "service.port=8443",
  "ingress.enabled=true",
  "ingress.className=nginx",
  "ingress.host=ktube.example.com",
  "ingress.tls.secretName=ktube-dashboard-tls",
];
/** The umbrella with the opt-in edge controller turned on too. */
const WITH_EDGE = ["--set", "edge-controller.enabled=true"];
/** Every option of the edge chart set (lint and flags). */
const EDGE_OPTIONS = [
  "uplinkImage=registry.example/uplink:1",
  "resyncInterval=60",
  "confirmTimeout=45",
  "providerSelector=shard=a",
  "leaderElection.id=edge-shard-a",
  "tlsTermination.enabled=true",
  "tlsTermination.namespaces={apps-a,apps-b}",
];

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

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
type ContainerSpec = { image: string; args: string[]; securityContext: Record<string, unknown>; volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }> };
type PodSpec = { securityContext: Record<string, unknown>; containers: ContainerSpec[]; volumes?: Array<Record<string, unknown>> };
const podOf = (objects: KubeObject[], name: string) =>
  (objects.find((o) => o.kind === "Deployment" && o.metadata?.name === name) as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
/** `kubectl auth can-i …` as the ServiceAccount `sa` of `namespace`: "yes" or "no". */
const canAs = (namespace: string, sa: string) => async (...args: string[]): Promise<string> =>
  (await kubectl(["auth", "can-i", ...args, `--as=system:serviceaccount:${namespace}:${sa}`])).stdout.trim();

/**
 * The ServiceAccount's kubeconfig, once the chart's admission policies are enforced: a dry-run
 * write of an object without the controller's mark (`probe`, by default a ConfigMap) is
 * refused by `<sa>-managed-objects`. A barrier before the controller runs, so that "no 403"
 * later also proves the policies never refuse its real writes.
 */
async function asControllerOncePoliciesEnforced(namespace: string, sa: string, probe = { path: `/api/v1/namespaces/${namespace}/configmaps`, body: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "unmarked" } } as Record<string, unknown> }): Promise<KubeConfig> {
  const asController = await kubeConfigAs(kc, namespace, sa);
  const client = new KubeClient(asController);
  await eventually(async () => {
    const refused = await client
      .request("POST", probe.path, { query: { dryRun: "All" }, body: probe.body })
      .then(() => undefined, (e: unknown) => (e instanceof ApiError && e.status === 403 ? e.message : undefined));
    if (!refused?.includes(`${sa}-managed-objects`)) throw new Error("the admission policy does not refuse unmanaged writes yet");
  }, 30_000);
  return asController;
}

/** The verbs the ClusterRole `name` grants on `resource`, sorted. */
const verbsIn = (objects: KubeObject[], kind: string, name: string) => {
  const rules = (objects.find((o) => o.kind === kind && o.metadata?.name === name) as unknown as { rules: Rule[] }).rules;
  return (resource: string) => [...new Set(rules.filter((r) => r.resources.includes(resource)).flatMap((r) => r.verbs))].sort();
};

describe("charts", () => {
  it("pass helm lint (umbrella and subchart), with default values and with every option set", async () => {
    const options = ["quickTunnels.enabled=true", "providerSelector=shard=a", "leaderElection.id=cloudflare-shard-a", "admissionPolicy.enabled=false"];
    const set = (prefix: string) => options.flatMap((o) => ["--set", `${prefix}${o}`]);
    const ngrokOptions = [
      "connectorImage=registry.example/agent:1",
      "ngrok.serverAddr=ingress.example:443",
      "ngrok.apiUrl=https://api.example",
      "ngrok.ca.configMapName=ngrok-ca",
      "providerSelector=shard=a",
      "leaderElection.id=ngrok-shard-a",
      "admissionPolicy.enabled=false",
    ];
    const setNgrok = (prefix: string) => ngrokOptions.flatMap((o) => ["--set", `${prefix}${o}`]);
    for (const [chart, values] of [
      [UMBRELLA, []],
      [UMBRELLA, set("cloudflare-controller.")],
      [UMBRELLA, WITH_NGROK],
      [UMBRELLA, [...WITH_NGROK, ...setNgrok("ngrok-controller.")]],
      [CLOUDFLARE, []],
      [CLOUDFLARE, set("")],
      [NGROK, []],
      [NGROK, setNgrok("")],
      [UMBRELLA, WITH_DEVTUNNELS],
      [UMBRELLA, [...WITH_DEVTUNNELS, ...[...DEVTUNNELS_OPTIONS, "admissionPolicy.enabled=false"].flatMap((o) => ["--set", `devtunnels-controller.${o}`])]],
      [DEVTUNNELS, []],
      [DEVTUNNELS, [...DEVTUNNELS_OPTIONS, "admissionPolicy.enabled=false", "metrics.service.enabled=false"].flatMap((o) => ["--set", o])],
      [UMBRELLA, WITH_EDGE],
      [UMBRELLA, [...WITH_EDGE, ...[...EDGE_OPTIONS, "admissionPolicy.enabled=false"].flatMap((o) => ["--set", `edge-controller.${o}`])]],
      [EDGE, []],
      [EDGE, [...EDGE_OPTIONS, "admissionPolicy.enabled=false", "metrics.service.enabled=false"].flatMap((o) => ["--set", o])],
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
    const clusterRole = objects.find((o) => o.kind === "ClusterRole" && o.metadata?.name === "ktube-cloudflare-controller")!;
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

  it("render the ngrok controller only when enabled (opt-in), with its least-privilege RBAC", async () => {
    expect((await render(UMBRELLA)).filter((o) => o.metadata?.name?.includes("ngrok"))).toEqual([]);
    const objects = await render(UMBRELLA, WITH_NGROK);
    const kinds = objects.map((o) => `${o.kind}/${o.metadata?.name}`);
    expect(kinds).toEqual(
      expect.arrayContaining([
        "ServiceAccount/ktube-ngrok-controller",
        "ClusterRole/ktube-ngrok-controller",
        "ClusterRoleBinding/ktube-ngrok-controller",
        "Role/ktube-ngrok-controller",
        "RoleBinding/ktube-ngrok-controller",
        "Deployment/ktube-ngrok-controller",
        "Service/ktube-ngrok-controller-metrics",
        ...["managed-objects", "agent-rbac", "agent-pods"].flatMap((p) => [
          `ValidatingAdmissionPolicy/ktube-ngrok-controller-${p}`,
          `ValidatingAdmissionPolicyBinding/ktube-ngrok-controller-${p}`,
        ]),
        // Both controllers side by side: Cloudflare keeps its default (on).
        "Deployment/ktube-cloudflare-controller",
      ]),
    );
    const rules = (objects.find((o) => o.kind === "ClusterRole" && o.metadata?.name === "ktube-ngrok-controller") as unknown as { rules: Rule[] }).rules;
    expect(rules.some((r) => r.verbs.includes("*") || r.resources.includes("*") || r.apiGroups.includes("*"))).toBe(false);
    // Never escalate or bind: it grants the agents' Role only verbs it holds itself.
    expect(rules.flatMap((r) => r.verbs).filter((v) => ["escalate", "bind", "impersonate", "deletecollection"].includes(v))).toEqual([]);
    const verbsOn = verbsIn(objects, "ClusterRole", "ktube-ngrok-controller");
    // Secrets cluster-wide: write the agents' authtoken, never read (reads only in its namespace).
    expect(verbsOn("secrets")).toEqual(["create", "patch"]);
    for (const status of ["tunnelproviders/status", "tunnels/status", "tunnelbindings/status"]) expect(verbsOn(status)).toEqual(["patch"]);
    expect(rules.filter((r) => r.resources.some((res) => res.endsWith("/status"))).flatMap((r) => r.verbs)).toEqual(["patch"]);
    expect(verbsOn("services")).toEqual(["get", "list", "watch"]);
    expect(verbsOn("namespaces")).toEqual(["get", "list", "watch"]);
    expect(verbsOn("pods")).toEqual(["get", "list", "watch"]);
    // What the agents' Role grants (get/list/watch, get/patch on ConfigMaps) it must hold itself.
    expect(verbsOn("configmaps")).toEqual(["create", "get", "list", "patch", "watch"]);
    for (const resource of ["serviceaccounts", "roles", "rolebindings"]) expect(verbsOn(resource)).toEqual(["create", "get", "list", "patch", "watch"]);
    // delete only where the controller deletes (the garbage collector removes the rest after the Tunnel).
    for (const resource of ["deployments", "poddisruptionbudgets"]) expect(verbsOn(resource)).toEqual(["create", "delete", "get", "list", "patch", "watch"]);
    expect(verbsOn("events")).toEqual(["create", "patch"]);
    const role = objects.find((o) => o.kind === "Role" && o.metadata?.name === "ktube-ngrok-controller") as unknown as { rules: Rule[] };
    expect(role.rules).toEqual([
      { apiGroups: [""], resources: ["secrets"], verbs: ["get", "list", "watch"] },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
    ]);
    const pod = podOf(objects, "ktube-ngrok-controller");
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    const [container] = pod.containers;
    expect(container!.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    expect(container).toMatchObject({ livenessProbe: { httpGet: { path: "/healthz" } }, readinessProbe: { httpGet: { path: "/readyz" } } });
    // The agents run the controller's own image by default.
    expect(container!.image).toBe("ghcr.io/ktube-dev/ngrok-controller:0.1.0");
    expect(container!.args).toEqual(expect.arrayContaining(["--leader-elect=true", "--connector-image=ghcr.io/ktube-dev/ngrok-controller:0.1.0"]));
    expect(container!.args.filter((a) => a.startsWith("--ngrok-"))).toEqual([]);
  });

  it("take values (ngrok): the agents' image follows the controller's; ingress, API, CA, selector and Lease reach the flags", async () => {
    const argsOf = (objects: KubeObject[]) => podOf(objects, "ktube-ngrok-controller").containers[0]!.args;
    expect(argsOf(await render(NGROK, ["--set", "image.repository=registry.example/ktube/ngrok", "--set", "image.tag=1.2.3"]))).toContain(
      "--connector-image=registry.example/ktube/ngrok:1.2.3",
    );
    const objects = await render(NGROK, [
      "--set", "connectorImage=registry.example/agent:1",
      "--set", "ngrok.serverAddr=ingress.example:443",
      "--set", "ngrok.apiUrl=https://api.example",
      "--set", "ngrok.ca.configMapName=ngrok-ca",
      "--set", "providerSelector=shard=a",
      "--set", "leaderElection.id=ngrok-shard-a",
    ]);
    expect(argsOf(objects)).toEqual(
      expect.arrayContaining([
        "--connector-image=registry.example/agent:1",
        "--ngrok-server-addr=ingress.example:443",
        "--ngrok-api-url=https://api.example",
        "--ngrok-ca-file=/etc/ktube/ngrok-ingress-ca/ca.pem",
        "--provider-selector=shard=a",
        "--leader-election-id=ngrok-shard-a",
      ]),
    );
    const pod = podOf(objects, "ktube-ngrok-controller");
    expect(pod.volumes).toEqual([{ name: "ngrok-ingress-ca", configMap: { name: "ngrok-ca", items: [{ key: "ca.pem", path: "ca.pem" }] } }]);
    expect(pod.containers[0]!.volumeMounts).toEqual([{ name: "ngrok-ingress-ca", mountPath: "/etc/ktube/ngrok-ingress-ca", readOnly: true }]);
    expect(argsOf(await render(NGROK)).filter((a) => a.startsWith("--leader-election-id") || a.startsWith("--provider-selector"))).toEqual([]);
    const kinds = (await render(NGROK, ["--set", "admissionPolicy.enabled=false", "--set", "metrics.service.enabled=false"])).map((o) => o.kind);
    expect(kinds).toContain("ClusterRole");
    expect(kinds.filter((k) => k?.startsWith("ValidatingAdmissionPolicy") || k === "Service")).toEqual([]);
  });

  it("render the Dev Tunnels controller only when enabled (opt-in), with its least-privilege RBAC", async () => {
    expect((await render(UMBRELLA)).filter((o) => o.metadata?.name?.includes("devtunnels"))).toEqual([]);
    const objects = await render(UMBRELLA, WITH_DEVTUNNELS);
    const kinds = objects.map((o) => `${o.kind}/${o.metadata?.name}`);
    expect(kinds).toEqual(
      expect.arrayContaining([
        "ServiceAccount/ktube-devtunnels-controller",
        "ClusterRole/ktube-devtunnels-controller",
        "ClusterRoleBinding/ktube-devtunnels-controller",
        "Role/ktube-devtunnels-controller",
        "RoleBinding/ktube-devtunnels-controller",
        "Deployment/ktube-devtunnels-controller",
        "Service/ktube-devtunnels-controller-metrics",
        ...["managed-objects", "host-rbac", "host-pods"].flatMap((p) => [
          `ValidatingAdmissionPolicy/ktube-devtunnels-controller-${p}`,
          `ValidatingAdmissionPolicyBinding/ktube-devtunnels-controller-${p}`,
        ]),
        "Deployment/ktube-cloudflare-controller",
      ]),
    );
    // The CRDs ship in the subchart too (installable alone).
    expect((await render(DEVTUNNELS)).filter((o) => o.kind === "CustomResourceDefinition").map((o) => o.metadata?.name).sort()).toEqual([
      "tunnelbindings.ktube.dev",
      "tunnelproviders.ktube.dev",
      "tunnels.ktube.dev",
    ]);
    const rules = (objects.find((o) => o.kind === "ClusterRole" && o.metadata?.name === "ktube-devtunnels-controller") as unknown as { rules: Rule[] }).rules;
    expect(rules.some((r) => r.verbs.includes("*") || r.resources.includes("*") || r.apiGroups.includes("*"))).toBe(false);
    // Never update (it patches), escalate or bind (it grants the hosts' Role only verbs it holds itself).
    expect(rules.flatMap((r) => r.verbs).filter((v) => ["update", "escalate", "bind", "impersonate", "deletecollection"].includes(v))).toEqual([]);
    const verbsOn = verbsIn(objects, "ClusterRole", "ktube-devtunnels-controller");
    // Secrets cluster-wide: write the host token, never read (reads only in its namespace).
    expect(verbsOn("secrets")).toEqual(["create", "patch"]);
    for (const status of ["tunnelproviders/status", "tunnels/status", "tunnelbindings/status"]) expect(verbsOn(status)).toEqual(["patch"]);
    expect(rules.filter((r) => r.resources.some((res) => res.endsWith("/status"))).flatMap((r) => r.verbs)).toEqual(["patch"]);
    expect(verbsOn("tunnelproviders")).toEqual(["get", "list", "watch"]);
    for (const resource of ["tunnels", "tunnelbindings"]) expect(verbsOn(resource)).toEqual(["get", "list", "patch", "watch"]);
    for (const resource of ["services", "namespaces", "pods"]) expect(verbsOn(resource)).toEqual(["get", "list", "watch"]);
    // What the host's Role grants (get/list/watch, get/patch on ConfigMaps) it must hold itself.
    expect(verbsOn("configmaps")).toEqual(["create", "get", "list", "patch", "watch"]);
    for (const resource of ["serviceaccounts", "roles", "rolebindings"]) expect(verbsOn(resource)).toEqual(["create", "get", "list", "patch", "watch"]);
    // delete only on the host Deployment; PodDisruptionBudgets are watched, never written (one host replica).
    expect(verbsOn("deployments")).toEqual(["create", "delete", "get", "list", "patch", "watch"]);
    expect(verbsOn("poddisruptionbudgets")).toEqual(["get", "list", "watch"]);
    expect(verbsOn("events")).toEqual(["create", "patch"]);
    const role = objects.find((o) => o.kind === "Role" && o.metadata?.name === "ktube-devtunnels-controller") as unknown as { rules: Rule[] };
    expect(role.rules).toEqual([
      { apiGroups: [""], resources: ["secrets"], verbs: ["get", "list", "watch"] },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
    ]);
    const pod = podOf(objects, "ktube-devtunnels-controller");
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    const [container] = pod.containers;
    expect(container!.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    expect(container).toMatchObject({ livenessProbe: { httpGet: { path: "/healthz" } }, readinessProbe: { httpGet: { path: "/readyz" } } });
    expect(pod.volumes).toBeUndefined();
    // The hosts run the controller's own image by default; Microsoft's endpoints unless told otherwise.
    expect(container!.image).toBe("ghcr.io/ktube-dev/devtunnels-controller:0.1.0");
    expect(container!.args).toEqual(
      expect.arrayContaining(["--leader-elect=true", "--owner-id=default", "--host-image=ghcr.io/ktube-dev/devtunnels-controller:0.1.0", "--max-ports=10"]),
    );
    expect(container!.args.filter((a) => /^--(devtunnels-service-url|entra-authority-url|provider-selector|leader-election-id)/.test(a))).toEqual([]);
  });

  it("take values (Dev Tunnels): the hosts' image follows the controller's; owner id, endpoints, ports, selector and Lease reach the flags", async () => {
    const argsOf = (objects: KubeObject[]) => podOf(objects, "ktube-devtunnels-controller").containers[0]!.args;
    expect(argsOf(await render(DEVTUNNELS, ["--set", "image.repository=registry.example/ktube/devtunnels", "--set", "image.tag=1.2.3"]))).toContain(
      "--host-image=registry.example/ktube/devtunnels:1.2.3",
    );
    expect(argsOf(await render(DEVTUNNELS, DEVTUNNELS_OPTIONS.flatMap((o) => ["--set", o])))).toEqual(
      expect.arrayContaining([
        "--host-image=registry.example/host:1",
        "--owner-id=blue",
        "--devtunnels-service-url=https://tunnels.example/",
        "--entra-authority-url=https://login.example",
        "--max-ports=4",
        "--provider-selector=shard=a",
        "--leader-election-id=devtunnels-shard-a",
      ]),
    );
    // An owner id the controller would refuse fails at install time, not in a crash loop.
    await expect(render(DEVTUNNELS, ["--set", "ownerId=Team_A"])).rejects.toThrow(/ownerId must be lowercase/);
    const kinds = (await render(DEVTUNNELS, ["--set", "admissionPolicy.enabled=false", "--set", "metrics.service.enabled=false"])).map((o) => o.kind);
    expect(kinds).toContain("ClusterRole");
    expect(kinds.filter((k) => k?.startsWith("ValidatingAdmissionPolicy") || k === "Service")).toEqual([]);
  });

  it("render the edge controller only when enabled (opt-in), with its least-privilege RBAC", async () => {
    expect((await render(UMBRELLA)).filter((o) => o.metadata?.name?.includes("edge"))).toEqual([]);
    const objects = await render(UMBRELLA, WITH_EDGE);
    const kinds = objects.map((o) => `${o.kind}/${o.metadata?.name}`);
    expect(kinds).toEqual(expect.arrayContaining(["Deployment/ktube-edge-controller", "Deployment/ktube-cloudflare-controller"]));
    // The subchart alone: exactly these objects (no TLS Secret reads unless tlsTermination asks for them).
    expect((await render(EDGE)).map((o) => `${o.kind}/${o.metadata?.name}`).sort()).toEqual(
      [
        "CustomResourceDefinition/tunnelbindings.ktube.dev",
        "CustomResourceDefinition/tunnelproviders.ktube.dev",
        "CustomResourceDefinition/tunnels.ktube.dev",
        "ServiceAccount/ktube-edge-controller",
        "ClusterRole/ktube-edge-controller",
        "ClusterRoleBinding/ktube-edge-controller",
        "Role/ktube-edge-controller",
        "RoleBinding/ktube-edge-controller",
        "Deployment/ktube-edge-controller",
        "Service/ktube-edge-controller-metrics",
        ...["managed-objects", "uplink-rbac", "uplink-pods"].flatMap((p) => [
          `ValidatingAdmissionPolicy/ktube-edge-controller-${p}`,
          `ValidatingAdmissionPolicyBinding/ktube-edge-controller-${p}`,
        ]),
      ].sort(),
    );
    const rules = (objects.find((o) => o.kind === "ClusterRole" && o.metadata?.name === "ktube-edge-controller") as unknown as { rules: Rule[] }).rules;
    expect(rules.some((r) => r.verbs.includes("*") || r.resources.includes("*") || r.apiGroups.includes("*"))).toBe(false);
    // Never update (it patches), escalate or bind (it grants the uplinks' Role only verbs it holds itself).
    expect(rules.flatMap((r) => r.verbs).filter((v) => ["update", "escalate", "bind", "impersonate", "deletecollection"].includes(v))).toEqual([]);
    const verbsOn = verbsIn(objects, "ClusterRole", "ktube-edge-controller");
    // Secrets cluster-wide: write the WireGuard keys, never read (reads only in its namespace;
    // TLS Secrets only with tlsTermination, below).
    expect(verbsOn("secrets")).toEqual(["create", "patch"]);
    for (const status of ["tunnelproviders/status", "tunnels/status", "tunnelbindings/status"]) expect(verbsOn(status)).toEqual(["patch"]);
    expect(rules.filter((r) => r.resources.some((res) => res.endsWith("/status"))).flatMap((r) => r.verbs)).toEqual(["patch"]);
    expect(verbsOn("tunnelproviders")).toEqual(["get", "list", "watch"]);
    for (const resource of ["tunnels", "tunnelbindings"]) expect(verbsOn(resource)).toEqual(["get", "list", "patch", "watch"]);
    for (const resource of ["services", "namespaces", "pods"]) expect(verbsOn(resource)).toEqual(["get", "list", "watch"]);
    // What the uplinks' Role grants (get/list/watch, get/patch on ConfigMaps) it must hold itself.
    expect(verbsOn("configmaps")).toEqual(["create", "get", "list", "patch", "watch"]);
    for (const resource of ["serviceaccounts", "roles", "rolebindings"]) expect(verbsOn(resource)).toEqual(["create", "get", "list", "patch", "watch"]);
    // The uplinks are a StatefulSet, not a Deployment; delete only where the controller deletes.
    expect(verbsOn("statefulsets")).toEqual(["create", "get", "list", "patch", "watch"]);
    expect(verbsOn("poddisruptionbudgets")).toEqual(["create", "delete", "get", "list", "patch", "watch"]);
    expect(verbsOn("deployments")).toEqual([]);
    expect(verbsOn("events")).toEqual(["create", "patch"]);
    const role = objects.find((o) => o.kind === "Role" && o.metadata?.name === "ktube-edge-controller") as unknown as { rules: Rule[] };
    expect(role.rules).toEqual([
      { apiGroups: [""], resources: ["secrets"], verbs: ["get", "list", "watch"] },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
    ]);
    // The controller itself: non-root, read-only, no capability (NET_ADMIN is the uplinks', in their own Pods).
    const pod = podOf(objects, "ktube-edge-controller");
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    const [container] = pod.containers;
    expect(container!.securityContext).toEqual({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    expect(container).toMatchObject({ livenessProbe: { httpGet: { path: "/healthz" } }, readinessProbe: { httpGet: { path: "/readyz" } } });
    expect(pod.volumes).toBeUndefined();
    // The uplinks run the controller's own image by default.
    expect(container!.image).toBe("ghcr.io/ktube-dev/edge-controller:0.1.0");
    expect(container!.args).toEqual(
      expect.arrayContaining(["--leader-elect=true", "--resync-interval=300", "--confirm-timeout=20", "--uplink-image=ghcr.io/ktube-dev/edge-controller:0.1.0"]),
    );
    expect(container!.args.filter((a) => /^--(provider-selector|leader-election-id)/.test(a))).toEqual([]);
  });

  it("take values (edge): the uplinks' image follows the controller's; resync, confirm timeout, selector and Lease reach the flags; tlsTermination grants get on Secrets, cluster-wide or only where listed", async () => {
    const argsOf = (objects: KubeObject[]) => podOf(objects, "ktube-edge-controller").containers[0]!.args;
    expect(argsOf(await render(EDGE, ["--set", "image.repository=registry.example/ktube/edge", "--set", "image.tag=1.2.3"]))).toContain(
      "--uplink-image=registry.example/ktube/edge:1.2.3",
    );
    expect(argsOf(await render(EDGE, EDGE_OPTIONS.flatMap((o) => ["--set", o])))).toEqual(
      expect.arrayContaining([
        "--uplink-image=registry.example/uplink:1",
        "--resync-interval=60",
        "--confirm-timeout=45",
        "--provider-selector=shard=a",
        "--leader-election-id=edge-shard-a",
      ]),
    );
    const tlsObjects = (objects: KubeObject[]) => objects.filter((o) => o.metadata?.name === "ktube-edge-controller-tls-secrets").map((o) => `${o.kind}/${o.metadata?.namespace ?? ""}`);
    const getOnly = [{ apiGroups: [""], resources: ["secrets"], verbs: ["get"] }];
    const subject = [{ kind: "ServiceAccount", name: "ktube-edge-controller", namespace: ns }];

    // Cluster-wide: one GET per Secret a terminated route names, never list or watch.
    const clusterWide = await render(EDGE, ["--set", "tlsTermination.enabled=true"]);
    expect(tlsObjects(clusterWide).sort()).toEqual(["ClusterRole/", "ClusterRoleBinding/"]);
    expect(clusterWide.find((o) => o.kind === "ClusterRole" && o.metadata?.name === "ktube-edge-controller-tls-secrets")!.rules).toEqual(getOnly);
    expect(clusterWide.find((o) => o.kind === "ClusterRoleBinding" && o.metadata?.name === "ktube-edge-controller-tls-secrets")).toMatchObject({
      roleRef: { kind: "ClusterRole", name: "ktube-edge-controller-tls-secrets" },
      subjects: subject,
    });
    // Listed namespaces: the same ClusterRole, bound only there.
    const listed = await render(EDGE, ["--set", "tlsTermination.enabled=true", "--set", "tlsTermination.namespaces={apps-a,apps-b}"]);
    expect(tlsObjects(listed).sort()).toEqual(["ClusterRole/", "RoleBinding/apps-a", "RoleBinding/apps-b"]);
    expect(listed.find((o) => o.kind === "ClusterRole" && o.metadata?.name === "ktube-edge-controller-tls-secrets")!.rules).toEqual(getOnly);
    for (const binding of listed.filter((o) => o.kind === "RoleBinding" && o.metadata?.name === "ktube-edge-controller-tls-secrets")) {
      expect(binding).toMatchObject({ roleRef: { kind: "ClusterRole", name: "ktube-edge-controller-tls-secrets" }, subjects: subject });
    }
    // In no case may any role of the controller list or watch Secrets outside its namespace.
    for (const objects of [clusterWide, listed]) {
      const reads = objects
        .filter((o) => o.kind === "ClusterRole" && o.metadata?.name?.startsWith("ktube-edge-controller"))
        .flatMap((o) => o.rules!.filter((r) => r.resources.includes("secrets")).flatMap((r) => r.verbs));
      expect(reads.filter((v) => v === "list" || v === "watch")).toEqual([]);
    }
    // Namespaces without enabled would grant nothing: refused at install time rather than silently ignored.
    await expect(render(EDGE, ["--set", "tlsTermination.namespaces={apps-a}"])).rejects.toThrow(/tlsTermination.namespaces is set but tlsTermination.enabled is false/);
    expect(argsOf(await render(EDGE)).filter((a) => a.startsWith("--leader-election-id") || a.startsWith("--provider-selector"))).toEqual([]);
    const kinds = (await render(EDGE, ["--set", "admissionPolicy.enabled=false", "--set", "metrics.service.enabled=false"])).map((o) => o.kind);
    expect(kinds).toContain("ClusterRole");
    expect(kinds.filter((k) => k?.startsWith("ValidatingAdmissionPolicy") || k === "Service")).toEqual([]);
  });

  it("apply to the API server (server-side dry run)", async () => {
    const manifest = await helmRun([
      "template", "ktube", UMBRELLA, "--namespace", ns, "--include-crds", ...WITH_NGROK, ...WITH_DEVTUNNELS,
      ...WITH_EDGE, "--set", "edge-controller.tlsTermination.enabled=true", "--set", `edge-controller.tlsTermination.namespaces={${ns}}`,
    ]);
    const result = await kubectl(["apply", "--server-side", "--dry-run=server", "--field-manager=helm-test", "-f", "-"], manifest);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("deployment.apps/ktube-cloudflare-controller serverside-applied (server dry run)");
    expect(result.stdout).toContain("validatingadmissionpolicy.admissionregistration.k8s.io/ktube-cloudflare-controller-managed-objects serverside-applied (server dry run)");
    expect(result.stdout).toContain("validatingadmissionpolicybinding.admissionregistration.k8s.io/ktube-cloudflare-controller-connector-pods serverside-applied (server dry run)");
    expect(result.stdout).toContain("deployment.apps/ktube-ngrok-controller serverside-applied (server dry run)");
    for (const role of ["ktube-view", "ktube-edit"]) expect(result.stdout).toContain(`clusterrole.rbac.authorization.k8s.io/${role} serverside-applied (server dry run)`);
    expect(result.stdout).toContain("clusterrole.rbac.authorization.k8s.io/ktube-ngrok-controller serverside-applied (server dry run)");
    for (const policy of ["managed-objects", "agent-rbac", "agent-pods"]) {
      expect(result.stdout).toContain(`validatingadmissionpolicy.admissionregistration.k8s.io/ktube-ngrok-controller-${policy} serverside-applied (server dry run)`);
      expect(result.stdout).toContain(`validatingadmissionpolicybinding.admissionregistration.k8s.io/ktube-ngrok-controller-${policy} serverside-applied (server dry run)`);
    }
    for (const object of ["deployment.apps", "clusterrole.rbac.authorization.k8s.io", "role.rbac.authorization.k8s.io", "serviceaccount", "service"]) {
      const name = object === "service" ? "ktube-devtunnels-controller-metrics" : "ktube-devtunnels-controller";
      expect(result.stdout).toContain(`${object}/${name} serverside-applied (server dry run)`);
    }
    for (const policy of ["managed-objects", "host-rbac", "host-pods"]) {
      expect(result.stdout).toContain(`validatingadmissionpolicy.admissionregistration.k8s.io/ktube-devtunnels-controller-${policy} serverside-applied (server dry run)`);
      expect(result.stdout).toContain(`validatingadmissionpolicybinding.admissionregistration.k8s.io/ktube-devtunnels-controller-${policy} serverside-applied (server dry run)`);
    }
    for (const object of ["deployment.apps", "clusterrole.rbac.authorization.k8s.io", "role.rbac.authorization.k8s.io", "serviceaccount", "service"]) {
      const name = object === "service" ? "ktube-edge-controller-metrics" : "ktube-edge-controller";
      expect(result.stdout).toContain(`${object}/${name} serverside-applied (server dry run)`);
    }
    for (const object of ["clusterrole.rbac.authorization.k8s.io", "rolebinding.rbac.authorization.k8s.io"]) {
      expect(result.stdout).toContain(`${object}/ktube-edge-controller-tls-secrets serverside-applied (server dry run)`);
    }
    for (const policy of ["managed-objects", "uplink-rbac", "uplink-pods"]) {
      expect(result.stdout).toContain(`validatingadmissionpolicy.admissionregistration.k8s.io/ktube-edge-controller-${policy} serverside-applied (server dry run)`);
      expect(result.stdout).toContain(`validatingadmissionpolicybinding.admissionregistration.k8s.io/ktube-edge-controller-${policy} serverside-applied (server dry run)`);
    }
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
    const can = canAs(ns, "ktube-cloudflare-controller");
    expect(await can("get", "secrets", "-n", "default")).toBe("no");
    expect(await can("list", "secrets", "-n", ns)).toBe("yes");
    expect(await can("update", "tunnelbindings.ktube.dev", "-n", "default")).toBe("no");

    // The cloudflare controller writes no ConfigMaps: the probe is an unmarked Deployment.
    const asController = await asControllerOncePoliciesEnforced(ns, "ktube-cloudflare-controller", {
      path: `/apis/apps/v1/namespaces/${ns}/deployments`,
      body: { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "unmarked" }, spec: { selector: { matchLabels: { a: "b" } }, template: { metadata: { labels: { a: "b" } }, spec: { containers: [{ name: "c", image: "x" }] } } } },
    });

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

type Condition = { type: string; status: string; reason: string; message?: string };
type WithStatus = KubeObject & { status?: { observedGeneration?: number; conditions?: Condition[]; routes?: Array<{ name: string; ready: boolean; reason?: string }> } };

/** The object's condition `type` once it has the wanted status and reason. */
async function conditionOf(read: () => Promise<WithStatus>, type: string, status: string, reason: string, timeoutMs = 20_000): Promise<Condition> {
  return eventually(async () => {
    const condition = (await read()).status?.conditions?.find((c) => c.type === type);
    if (condition?.status !== status || condition.reason !== reason) throw new Error(`${type} is ${JSON.stringify(condition)}, want ${status}/${reason}`);
    return condition;
  }, timeoutMs);
}

describe("the ngrok controller with only the chart's RBAC", () => {
  it("verifies its credentials, holds its Lease, and makes a Tunnel's agent objects (and their RBAC) with nothing refused", async () => {
    const { ngrokPlugin } = await import("@ktube/ngrok-controller/plugin");
    const { registerProviderControllers } = await import("@ktube/provider-kit");
    const SA = "ktube-ngrok-controller";
    const MANAGED_BY = "ktube-ngrok-controller";
    const manifest = await helmRun([
      "template", "ktube", NGROK, "--namespace", ns,
      "--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml", "--show-only", "templates/admission-policy.yaml",
    ]);
    const applied = await kubectl(["apply", "--server-side", "--field-manager=helm-test", "-f", "-"], manifest);
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
    const can = canAs(ns, SA);
    expect(await can("get", "secrets", "-n", "default")).toBe("no");
    expect(await can("create", "secrets", "-n", "default")).toBe("yes");
    expect(await can("list", "secrets", "-n", ns)).toBe("yes");
    expect(await can("escalate", "roles.rbac.authorization.k8s.io", "-n", "default")).toBe("no");
    expect(await can("bind", "clusterroles.rbac.authorization.k8s.io")).toBe("no");
    expect(await can("update", "tunnelbindings.ktube.dev", "-n", "default")).toBe("no");
    expect(await can("create", "pods", "-n", "default")).toBe("no");

    const asController = await asControllerOncePoliciesEnforced(ns, SA);

    // ngrok's cloud at the wire level: the real @ngrok/ngrok SDK verifies the authtoken against it.
    const fake = new FakeNgrok();
    const authtoken = fake.addAuthtoken();
    const apiKey = fake.addApiKey();
    await fake.start();
    await admin.create(Core.Secret, { metadata: { name: "ngrok", namespace: ns }, stringData: { authtoken, apiKey } } as KubeObject);
    const start = async (options: Partial<NgrokPluginOptions> & { serverAddr: string }) => {
      const manager = new Manager({
        kubeConfig: asController,
        name: "ngrok-controller",
        logger: createLogger({ level: process.env.KTUBE_TEST_LOG ?? "silent", format: "text" }),
        probeAddress: false,
        metricsAddress: false,
        leaderElection: { namespace: ns },
      });
      registerProviderControllers(manager, ngrokPlugin({ connectorImage: "ktube/ngrok-controller:test", ...options }), {
        namespace: ns,
        managedBy: MANAGED_BY,
        maxConcurrentReconciles: 2,
      });
      await manager.start();
      return manager;
    };
    const forbidden = (manager: Manager) => manager.metrics.count("rest_client_requests_total", { code: "403" });
    const providerName = `ngrok-rbac-${ns}`;
    const provider = () => admin.get<WithStatus>(TunnelProviderResource, undefined, providerName);
    const apps = await createTestNamespace(kc, "ngrok-rbac-apps");
    let manager: Manager | undefined;
    try {
      // Phase 1, no ingress listening: the credentials Secret is read (a missing one would say
      // SecretNotFound), the real SDK fails fast, the provider's status says why; the Lease is held.
      manager = await start({ serverAddr: `127.0.0.1:${await freePort()}` });
      await admin.create(TunnelProviderResource, {
        metadata: { name: providerName },
        spec: { type: "ngrok", ngrok: { authtokenSecretRef: { name: "ngrok", key: "authtoken" }, apiKeySecretRef: { name: "ngrok", key: "apiKey" } } },
      } as KubeObject);
      const unreachable = await conditionOf(provider, "Ready", "False", "Unreachable");
      expect(unreachable.message).toContain("ngrok refused the agent session");
      expect(unreachable.message).not.toContain(authtoken);
      const lease = await admin.get<KubeObject & { spec?: { holderIdentity?: string } }>({ apiVersion: "coordination.k8s.io/v1", kind: "Lease", plural: "leases", namespaced: true }, ns, "ngrok-controller.ktube.dev");
      expect(lease.spec?.holderIdentity).toBeTruthy();
      expect(manager.isLeader).toBe(true);
      expect(await forbidden(manager)).toBe(0);
      await manager.stop();

      // Phase 2, the fake ingress and REST API: a successor takes over the released Lease and
      // verifies both credentials.
      manager = await start({ serverAddr: fake.serverAddr, caPem: fake.caPem, api: { baseUrl: fake.apiUrl } });
      const verified = await conditionOf(provider, "Ready", "True", "CredentialsVerified");
      expect(verified.message).toBe("authtoken and API key verified");

      const tunnel = await admin.create<WithStatus>(TunnelResource, { metadata: { name: "t", namespace: apps }, spec: { providerRef: { name: providerName }, ngrok: { replicas: 2 } } } as KubeObject);
      await admin.create(Core.Service, { metadata: { name: "web", namespace: apps }, spec: { ports: [{ name: "http", port: 80 }] } } as KubeObject);
      await admin.create(TunnelBindingResource, {
        metadata: { name: "b", namespace: apps },
        spec: { tunnelRef: { name: "t" }, routes: [{ name: "web", protocol: "HTTP", hostname: "app.ngrok-rbac.example", service: { name: "web", port: "http" } }] },
      } as KubeObject);
      // The route table carries the accepted binding; no agent runs here, so the route waits.
      const table = await eventually(async () => {
        const cm = await admin.get<KubeObject & { data?: Record<string, string> }>(Core.ConfigMap, apps, "t-ngrok");
        if (!cm.data?.["routes.json"]?.includes("app.ngrok-rbac.example")) throw new Error("route table without the binding's route");
        return cm;
      }, 20_000);
      expect(table.metadata?.labels).toMatchObject({ "app.kubernetes.io/managed-by": MANAGED_BY });
      await conditionOf(() => admin.get<WithStatus>(TunnelResource, apps, "t"), "Ready", "False", "AgentsStarting");
      // Every object the Tunnel needs, controlled by it and marked as the controller's.
      const kinds = [Core.Secret, Core.ConfigMap, Core.ServiceAccount, Core.Role, Core.RoleBinding, Core.Deployment, Core.PodDisruptionBudget];
      for (const [type, name] of [...kinds.map((k) => [k, "t-ngrok"] as const), [Core.ConfigMap, "t-ngrok-status"] as const]) {
        const object = await eventually(() => admin.get<KubeObject>(type, apps, name), 10_000);
        expect(object.metadata?.labels?.["app.kubernetes.io/managed-by"]).toBe(MANAGED_BY);
        expect(object.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: "Tunnel", uid: tunnel.metadata!.uid, controller: true })]);
      }
      const agents = await admin.get<KubeObject & { spec: { template: { spec: { serviceAccountName: string; containers: Array<{ image: string; args: string[] }> } } } }>(Core.Deployment, apps, "t-ngrok");
      expect(agents.spec.template.spec.serviceAccountName).toBe("t-ngrok");
      expect(agents.spec.template.spec.containers[0]).toMatchObject({ image: "ktube/ngrok-controller:test", args: ["connector"] });
      // The fake ingress's CA travels to the agents in the route table ConfigMap (public data).
      expect(table.data?.["ca.pem"]).toBe(fake.caPem);
      // The agents' Role, which the controller could grant only because it holds those verbs itself.
      const agent = `--as=system:serviceaccount:${apps}:t-ngrok`;
      const agentCan = async (...args: string[]) => (await kubectl(["auth", "can-i", ...args, "-n", apps, agent])).stdout.trim();
      expect(await agentCan("watch", "configmaps/t-ngrok")).toBe("yes");
      expect(await agentCan("patch", "configmaps/t-ngrok-status")).toBe("yes");
      expect(await agentCan("patch", "configmaps/t-ngrok")).toBe("no");
      expect(await agentCan("get", "secrets/t-ngrok")).toBe("no");

      // Down to one replica: the PodDisruptionBudget goes (a delete the controller makes itself).
      await admin.patch(TunnelResource, apps, "t", { spec: { ngrok: { replicas: 1 } } }, PatchType.merge);
      await eventually(async () => {
        const gone = await admin.get(Core.PodDisruptionBudget, apps, "t-ngrok").then(() => false, (e: unknown) => e instanceof ApiError && e.status === 404);
        if (!gone) throw new Error("the PodDisruptionBudget is still there");
      }, 20_000);
      // Deleted: cleanup removes the agents' Deployment, then the finalizer.
      await admin.delete(TunnelResource, apps, "t");
      await eventually(async () => {
        const gone = await admin.get(TunnelResource, apps, "t").then(() => false, (e: unknown) => e instanceof ApiError && e.status === 404);
        if (!gone) throw new Error("the Tunnel is still there");
      }, 20_000);
      // Nothing the controller did was refused (RBAC or admission policies).
      expect(await forbidden(manager)).toBe(0);
    } finally {
      await manager?.stop();
      await fake.stop();
      await deleteTestNamespace(kc, apps);
    }
  });
});

describe("the Dev Tunnels controller with only the chart's RBAC", () => {
  it("verifies its Entra credentials, holds its Lease, and makes a Tunnel's host objects (and their RBAC) with nothing refused", async () => {
    // Imported here: the chart tests above must not depend on the app or the fake loading.
    const { devtunnelsPlugin } = await import("@ktube/devtunnels-controller/plugin");
    const { registerProviderControllers } = await import("@ktube/provider-kit");
    const SA = "ktube-devtunnels-controller";
    const MANAGED_BY = "ktube-devtunnels-controller";
    const manifest = await helmRun([
      "template", "ktube", DEVTUNNELS, "--namespace", ns,
      "--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml", "--show-only", "templates/admission-policy.yaml",
    ]);
    const applied = await kubectl(["apply", "--server-side", "--field-manager=helm-test", "-f", "-"], manifest);
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
    const can = canAs(ns, SA);
    expect(await can("get", "secrets", "-n", "default")).toBe("no");
    expect(await can("create", "secrets", "-n", "default")).toBe("yes");
    expect(await can("list", "secrets", "-n", ns)).toBe("yes");
    expect(await can("create", "poddisruptionbudgets.policy", "-n", "default")).toBe("no");
    expect(await can("delete", "configmaps", "-n", "default")).toBe("no");
    expect(await can("update", "deployments.apps", "-n", "default")).toBe("no");
    expect(await can("escalate", "roles.rbac.authorization.k8s.io", "-n", "default")).toBe("no");
    expect(await can("bind", "clusterroles.rbac.authorization.k8s.io")).toBe("no");
    expect(await can("update", "tunnelbindings.ktube.dev", "-n", "default")).toBe("no");
    expect(await can("create", "pods", "-n", "default")).toBe("no");

    const asController = await asControllerOncePoliciesEnforced(ns, SA);

    const clientSecret = "rbac-client-secret-7f3a";
    await admin.create(Core.Secret, { metadata: { name: "devtunnels", namespace: ns }, stringData: { clientSecret } } as KubeObject);
    const start = async (options: Partial<DevTunnelsPluginOptions>) => {
      const manager = new Manager({
        kubeConfig: asController,
        name: "devtunnels-controller",
        logger: createLogger({ level: process.env.KTUBE_TEST_LOG ?? "silent", format: "text" }),
        probeAddress: false,
        metricsAddress: false,
        leaderElection: { namespace: ns },
      });
      registerProviderControllers(manager, devtunnelsPlugin({ ownerId: "rbac", hostImage: "ktube/devtunnels-controller:test", ...options }), {
        namespace: ns,
        managedBy: MANAGED_BY,
        maxConcurrentReconciles: 2,
      });
      await manager.start();
      return manager;
    };
    const forbidden = (manager: Manager) => manager.metrics.count("rest_client_requests_total", { code: "403" });
    const providerName = `devtunnels-rbac-${ns}`;
    const provider = () => admin.get<WithStatus>(TunnelProviderResource, undefined, providerName);
    const apps = await createTestNamespace(kc, "devtunnels-rbac-apps");
    let manager: Manager | undefined;
    let fake: { stop(): Promise<void> } | undefined;
    try {
      // Phase 1, nothing listening at Entra or the service: the credentials Secret is read (a
      // missing one would say SecretNotFound), the token request fails, the status says why.
      const closed = `http://127.0.0.1:${await freePort()}`;
      manager = await start({ entraAuthority: closed, serviceUri: `${closed}/` });
      await admin.create(TunnelProviderResource, {
        metadata: { name: providerName },
        spec: { type: "devtunnels", devtunnels: { entra: { tenantId: "contoso.example", clientId: "ktube-rbac", clientSecretRef: { name: "devtunnels", key: "clientSecret" } } } },
      } as KubeObject);
      const unreachable = await conditionOf(provider, "Ready", "False", "Unreachable");
      expect(unreachable.message).toContain("Microsoft Entra ID could not be reached");
      expect(unreachable.message).not.toContain(clientSecret);
      const lease = await admin.get<KubeObject & { spec?: { holderIdentity?: string } }>({ apiVersion: "coordination.k8s.io/v1", kind: "Lease", plural: "leases", namespaced: true }, ns, "devtunnels-controller.ktube.dev");
      expect(lease.spec?.holderIdentity).toBeTruthy();
      expect(manager.isLeader).toBe(true);
      expect(await forbidden(manager)).toBe(0);
      await manager.stop();

      // Phase 2, the fake service (management API, relay, Entra token endpoint): a successor
      // takes over the released Lease and gets a token with the client credentials.
      const { FakeDevTunnels } = await import("@ktube/fake-devtunnels");
      const service = new FakeDevTunnels();
      fake = service;
      service.addApp("contoso.example", "ktube-rbac", clientSecret);
      await service.start();
      manager = await start({ entraAuthority: service.entra.authority, serviceUri: service.serviceUrl });
      const verified = await conditionOf(provider, "Ready", "True", "CredentialsVerified");
      expect(verified.message).toContain("preview service without an SLA");

      const tunnel = await admin.create<WithStatus>(TunnelResource, { metadata: { name: "t", namespace: apps }, spec: { providerRef: { name: providerName } } } as KubeObject);
      await admin.create(Core.Service, { metadata: { name: "web", namespace: apps }, spec: { ports: [{ name: "http", port: 80 }] } } as KubeObject);
      await admin.create(TunnelBindingResource, {
        metadata: { name: "b", namespace: apps },
        spec: { tunnelRef: { name: "t" }, routes: [{ name: "web", protocol: "HTTP", service: { name: "web", port: "http" } }] },
      } as KubeObject);
      // The route table carries the accepted binding's port; no host runs here, so the Tunnel waits for it.
      const table = await eventually(async () => {
        const cm = await admin.get<KubeObject & { data?: Record<string, string> }>(Core.ConfigMap, apps, "t-devtunnel");
        if (!cm.data?.["routes.json"]?.includes(`${apps}/b/web`)) throw new Error("route table without the binding's route");
        return cm;
      }, 20_000);
      expect(table.metadata?.labels).toMatchObject({ "app.kubernetes.io/managed-by": MANAGED_BY });
      const devTunnelId = (await conditionOf(() => admin.get<WithStatus>(TunnelResource, apps, "t"), "Ready", "False", "HostStarting").then(() =>
        admin.get<KubeObject & { status?: { tunnelId?: string } }>(TunnelResource, apps, "t"),
      )).status?.tunnelId;
      expect(devTunnelId).toBeTruthy();
      expect(service.service.tunnels.has(devTunnelId!)).toBe(true);
      // Every object the Tunnel needs, controlled by it and marked as the controller's.
      const kinds = [Core.Secret, Core.ConfigMap, Core.ServiceAccount, Core.Role, Core.RoleBinding, Core.Deployment];
      for (const [type, name] of [...kinds.map((k) => [k, "t-devtunnel"] as const), [Core.ConfigMap, "t-devtunnel-status"] as const]) {
        const object = await eventually(() => admin.get<KubeObject>(type, apps, name), 10_000);
        expect(object.metadata?.labels?.["app.kubernetes.io/managed-by"]).toBe(MANAGED_BY);
        expect(object.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: "Tunnel", uid: tunnel.metadata!.uid, controller: true })]);
      }
      // One host: no PodDisruptionBudget.
      expect((await admin.get(Core.PodDisruptionBudget, apps, "t-devtunnel").then(() => 200, (e: unknown) => (e instanceof ApiError ? e.status : 0)))).toBe(404);
      const host = await admin.get<KubeObject & { spec: { replicas: number; template: { spec: { serviceAccountName: string; containers: Array<{ image: string; args: string[] }> } } } }>(Core.Deployment, apps, "t-devtunnel");
      expect(host.spec.replicas).toBe(1);
      expect(host.spec.template.spec.serviceAccountName).toBe("t-devtunnel");
      expect(host.spec.template.spec.containers[0]).toMatchObject({ image: "ktube/devtunnels-controller:test", args: ["connector"] });
      // The host token (written, never read back by the controller) is in its Secret; no secret in the route table.
      const token = await admin.get<KubeObject & { data?: Record<string, string> }>(Core.Secret, apps, "t-devtunnel");
      expect(Buffer.from(token.data?.token ?? "", "base64").length).toBeGreaterThan(0);
      expect(JSON.stringify(table.data)).not.toContain(Buffer.from(token.data!.token!, "base64").toString());
      // The host's Role, which the controller could grant only because it holds those verbs itself.
      const hostAs = `--as=system:serviceaccount:${apps}:t-devtunnel`;
      const hostCan = async (...args: string[]) => (await kubectl(["auth", "can-i", ...args, "-n", apps, hostAs])).stdout.trim();
      expect(await hostCan("watch", "configmaps/t-devtunnel")).toBe("yes");
      expect(await hostCan("patch", "configmaps/t-devtunnel-status")).toBe("yes");
      expect(await hostCan("patch", "configmaps/t-devtunnel")).toBe("no");
      expect(await hostCan("get", "secrets/t-devtunnel")).toBe("no");
      // The binding's route holds its port (a reservation) and waits for the host.
      await eventually(async () => {
        const b = await admin.get<WithStatus & { status?: { routes?: Array<{ name: string; ready: boolean; reason?: string; reservation?: { id: string } }> } }>(TunnelBindingResource, apps, "b");
        expect(b.status?.routes).toEqual([expect.objectContaining({ name: "web", ready: false, reservation: expect.objectContaining({ id: "port" }) })]);
      }, 20_000);

      // Deleted: cleanup removes the host Deployment and the dev tunnel, then the finalizer.
      await admin.delete(TunnelResource, apps, "t");
      await eventually(async () => {
        const gone = await admin.get(TunnelResource, apps, "t").then(() => false, (e: unknown) => e instanceof ApiError && e.status === 404);
        if (!gone) throw new Error("the Tunnel is still there");
      }, 20_000);
      expect(service.service.tunnels.has(devTunnelId!)).toBe(false);
      // Nothing the controller did was refused (RBAC or admission policies).
      expect(await forbidden(manager)).toBe(0);
    } finally {
      await manager?.stop();
      await fake?.stop();
      await deleteTestNamespace(kc, apps);
    }
  });
});

describe("the edge controller with only the chart's RBAC", () => {
  it("loads its SSH credentials, holds its Lease, makes a Tunnel's uplink objects (and their RBAC) with nothing refused, and reads TLS Secrets only where tlsTermination allows", async () => {
    // Imported here: the chart tests above must not depend on the app loading.
    const { edgePlugin } = await import("@ktube/edge-controller/plugin");
    const { registerProviderControllers } = await import("@ktube/provider-kit");
    const SA = "ktube-edge-controller";
    const MANAGED_BY = "ktube-edge-controller";
    // Two application namespaces: TLS Secrets may be read in the first only.
    const apps = await createTestNamespace(kc, "edge-rbac-apps");
    const other = await createTestNamespace(kc, "edge-rbac-other");
    const manifest = await helmRun([
      "template", "ktube", EDGE, "--namespace", ns,
      "--set", "tlsTermination.enabled=true", "--set", `tlsTermination.namespaces={${apps}}`,
      "--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml", "--show-only", "templates/admission-policy.yaml",
    ]);
    const applied = await kubectl(["apply", "--server-side", "--field-manager=helm-test", "-f", "-"], manifest);
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
    const can = canAs(ns, SA);
    expect(await can("get", "secrets", "-n", "default")).toBe("no");
    expect(await can("get", "secrets", "-n", other)).toBe("no");
    expect(await can("get", "secrets", "-n", apps)).toBe("yes");
    expect(await can("list", "secrets", "-n", apps)).toBe("no");
    expect(await can("watch", "secrets", "--all-namespaces")).toBe("no");
    expect(await can("create", "secrets", "-n", "default")).toBe("yes");
    expect(await can("list", "secrets", "-n", ns)).toBe("yes");
    expect(await can("create", "statefulsets.apps", "-n", "default")).toBe("yes");
    expect(await can("update", "statefulsets.apps", "-n", "default")).toBe("no");
    expect(await can("create", "deployments.apps", "-n", "default")).toBe("no");
    expect(await can("delete", "configmaps", "-n", "default")).toBe("no");
    expect(await can("escalate", "roles.rbac.authorization.k8s.io", "-n", "default")).toBe("no");
    expect(await can("bind", "clusterroles.rbac.authorization.k8s.io")).toBe("no");
    expect(await can("update", "tunnelbindings.ktube.dev", "-n", "default")).toBe("no");
    expect(await can("create", "pods", "-n", "default")).toBe("no");

    const asController = await asControllerOncePoliciesEnforced(ns, SA);

    // The SSH key and pinned host key (verified when a Tunnel's VPS is enrolled; no VPS listens here).
    const privateKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString();
    const hostKey = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "der" }).subarray(-32);
    const sshString = (value: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, value.length]), value]);
    const knownHosts = `127.0.0.1 ssh-ed25519 ${Buffer.concat([sshString(Buffer.from("ssh-ed25519")), sshString(hostKey)]).toString("base64")}\n`;
    await admin.create(Core.Secret, { metadata: { name: "edge-ssh", namespace: ns }, stringData: { privateKey, knownHosts } } as KubeObject);
    const manager = new Manager({
      kubeConfig: asController,
      name: "edge-controller",
      logger: createLogger({ level: process.env.KTUBE_TEST_LOG ?? "silent", format: "text" }),
      probeAddress: false,
      metricsAddress: false,
      leaderElection: { namespace: ns },
    });
    registerProviderControllers(manager, edgePlugin({ uplinkImage: "ktube/edge-controller:test", sshTimeoutMs: 2_000, resyncMs: 60_000 }), {
      namespace: ns,
      managedBy: MANAGED_BY,
      maxConcurrentReconciles: 2,
    });
    const forbidden = () => manager.metrics.count("rest_client_requests_total", { code: "403" });
    const providerName = `edge-rbac-${ns}`;
    const provider = () => admin.get<WithStatus>(TunnelProviderResource, undefined, providerName);
    // Only their presence matters here: the certificate is first used on the VPS, which never answers.
    const tls = { "tls.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "tls.key": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n" };
    const route = (hostname: string) => ({ name: "https", protocol: "HTTPS", hostname, tls: { mode: "offload", secretRef: { name: "site-tls" } }, service: { name: "web", port: "http" } });
    const routeOf = async (namespace: string) =>
      eventually(async () => {
        const [r] = (await admin.get<WithStatus & { status?: { routes?: Array<{ name: string; ready: boolean; message?: string }> } }>(TunnelBindingResource, namespace, "b")).status?.routes ?? [];
        if (!r?.message) throw new Error(`no route outcome on ${namespace}/b yet`);
        return r;
      }, 30_000);
    try {
      await manager.start();
      await admin.create(TunnelProviderResource, {
        metadata: { name: providerName },
        spec: { type: "edge", edge: { sshSecretRef: { name: "edge-ssh" }, envoy: { version: "1.36.2", url: "https://envoy.example/envoy-1.36.2", sha256: "0".repeat(64) } } },
      } as KubeObject);
      // The credentials Secret is read in the controller's namespace (a missing one would say SecretNotFound).
      const loaded = await conditionOf(provider, "Ready", "True", "CredentialsLoaded");
      expect(loaded.message).toContain("1 known host key");
      const lease = await admin.get<KubeObject & { spec?: { holderIdentity?: string } }>({ apiVersion: "coordination.k8s.io/v1", kind: "Lease", plural: "leases", namespaced: true }, ns, "edge-controller.ktube.dev");
      expect(lease.spec?.holderIdentity).toBeTruthy();
      expect(manager.isLeader).toBe(true);
      expect(await forbidden()).toBe(0);

      // A Tunnel whose VPS does not answer: its keys and uplinks are made first, then SSH fails and the status says why.
      const tunnel = await admin.create<WithStatus>(TunnelResource, {
        metadata: { name: "t", namespace: apps },
        spec: { providerRef: { name: providerName }, allowedBindings: { namespaces: { from: "All" } }, edge: { address: "127.0.0.1", ssh: { port: await freePort() } } },
      } as KubeObject);
      for (const namespace of [apps, other]) {
        await admin.create(Core.Service, { metadata: { name: "web", namespace }, spec: { ports: [{ name: "http", port: 80 }] } } as KubeObject);
        await admin.create(Core.Secret, { metadata: { name: "site-tls", namespace }, type: "kubernetes.io/tls", stringData: tls } as KubeObject);
      }
      await admin.create(TunnelBindingResource, { metadata: { name: "b", namespace: apps }, spec: { tunnelRef: { name: "t" }, routes: [route("a.edge-rbac.example")] } } as KubeObject);
      const unreachable = await conditionOf(() => admin.get<WithStatus>(TunnelResource, apps, "t"), "Ready", "False", "SSHUnreachable", 30_000);
      expect(unreachable.message).not.toContain(privateKey.slice(40, 80));
      // Every object the Tunnel needs, controlled by it and marked as the controller's.
      const kinds = [Core.Secret, Core.ConfigMap, Core.ServiceAccount, Core.Role, Core.RoleBinding, Core.StatefulSet, Core.PodDisruptionBudget];
      const owned = [...kinds.map((k) => [k, "t-edge-uplink"] as const), [Core.ConfigMap, "t-edge-uplink-status"] as const];
      for (const [type, name] of owned) {
        const object = await eventually(() => admin.get<KubeObject>(type, apps, name), 10_000);
        expect(object.metadata?.labels?.["app.kubernetes.io/managed-by"]).toBe(MANAGED_BY);
        expect(object.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: "Tunnel", uid: tunnel.metadata!.uid, controller: true })]);
      }
      // The keys come from the seed the controller made in its own namespace; the uplinks' Secret holds only theirs, never the VPS's.
      const seed = await admin.get<KubeObject & { data?: Record<string, string> }>(Core.Secret, ns, "ktube-edge-wireguard-seed");
      expect(Buffer.from(seed.data?.seed ?? "", "base64").length).toBe(32);
      const keysOf = async (name: string) => Object.keys((await admin.get<KubeObject & { data?: Record<string, string> }>(Core.Secret, apps, name)).data ?? {}).sort();
      expect(await keysOf("t-edge-uplink")).toEqual(["uplink-0.key", "uplink-1.key"]);
      // The uplink Pods: root with NET_ADMIN only, as their own ServiceAccount, which the admission policies let through.
      type UplinkPod = { serviceAccountName: string; containers: Array<{ image: string; args: string[]; securityContext: Record<string, unknown> }> };
      const uplinks = await admin.get<KubeObject & { spec: { template: { spec: UplinkPod } } }>(Core.StatefulSet, apps, "t-edge-uplink");
      expect(uplinks.spec.template.spec.serviceAccountName).toBe("t-edge-uplink");
      expect(uplinks.spec.template.spec.containers[0]).toMatchObject({
        image: "ktube/edge-controller:test",
        args: ["connector"],
        securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"], add: ["NET_ADMIN"] } },
      });
      // The uplinks' Role, which the controller could grant only because it holds those verbs itself.
      const uplink = `--as=system:serviceaccount:${apps}:t-edge-uplink`;
      const uplinkCan = async (...args: string[]) => (await kubectl(["auth", "can-i", ...args, "-n", apps, uplink])).stdout.trim();
      expect(await uplinkCan("watch", "configmaps/t-edge-uplink")).toBe("yes");
      expect(await uplinkCan("patch", "configmaps/t-edge-uplink-status")).toBe("yes");
      expect(await uplinkCan("patch", "configmaps/t-edge-uplink")).toBe("no");
      expect(await uplinkCan("get", "secrets/t-edge-uplink")).toBe("no");
      // Its TLS Secret was read (a listed namespace): the route waits for the VPS, not for the Secret.
      const waiting = { ready: false, message: "waiting for Envoy on the VPS to confirm the configuration" };
      expect(await routeOf(apps)).toMatchObject(waiting);
      // Down to one uplink: the PodDisruptionBudget goes (a delete the controller makes itself).
      await admin.patch(TunnelResource, apps, "t", { spec: { edge: { uplink: { replicas: 1 } } } }, PatchType.merge);
      await eventually(async () => {
        const gone = await admin.get(Core.PodDisruptionBudget, apps, "t-edge-uplink").then(() => false, (e: unknown) => e instanceof ApiError && e.status === 404);
        if (!gone) throw new Error("the PodDisruptionBudget is still there");
      }, 20_000);
      // Nothing the controller did was refused (RBAC or admission policies).
      expect(await forbidden()).toBe(0);

      // A binding from a namespace tlsTermination does not list: its route says the Secret may not be read.
      await admin.create(TunnelBindingResource, { metadata: { name: "b", namespace: other }, spec: { tunnelRef: { name: "t", namespace: apps }, routes: [route("b.edge-rbac.example")] } } as KubeObject);
      await conditionOf(() => admin.get<WithStatus>(TunnelBindingResource, other, "b"), "ResolvedRefs", "False", "TLSSecretInvalid", 30_000);
      expect(await routeOf(other)).toMatchObject({ ready: false, message: `the controller may not read Secret ${other}/site-tls` });
      expect(await routeOf(apps)).toMatchObject(waiting);

      // Deleted, with the VPS out of reach: cleanup is let go of on purpose, then the finalizer comes off.
      await admin.patch(TunnelResource, apps, "t", { metadata: { annotations: { "ktube.dev/abandon-on-delete": "true" } } }, PatchType.merge);
      await admin.delete(TunnelResource, apps, "t");
      await eventually(async () => {
        const gone = await admin.get(TunnelResource, apps, "t").then(() => false, (e: unknown) => e instanceof ApiError && e.status === 404);
        if (!gone) throw new Error("the Tunnel is still there");
      }, 20_000);
    } finally {
      await manager.stop();
      await deleteTestNamespace(kc, apps);
      await deleteTestNamespace(kc, other);
    }
  });
});

describe("the dashboard chart", () => {
  type DashboardPod = PodSpec & {
    automountServiceAccountToken?: boolean;
    serviceAccountName: string;
    containers: Array<ContainerSpec & { ports: Array<{ name: string; containerPort: number }>; resources: Record<string, unknown>; livenessProbe: unknown; readinessProbe: unknown }>;
  };
  const dashboardPod = (objects: KubeObject[], name = "ktube-dashboard") => podOf(objects, name) as DashboardPod;
  const labelsOf = (objects: KubeObject[], name: string) =>
    (objects.find((o) => o.kind === "ClusterRole" && o.metadata?.name === name) as unknown as { metadata: { labels: Record<string, string> } }).metadata.labels;
  const rulesOf = (objects: KubeObject[], name: string) => (objects.find((o) => o.kind === "ClusterRole" && o.metadata?.name === name) as unknown as { rules: Rule[] }).rules;
  const AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-";

  it("passes helm lint --strict (umbrella and subchart), with default values and with every option set", async () => {
    for (const [chart, values] of [
      [UMBRELLA, WITH_DASHBOARD],
      [UMBRELLA, [...WITH_DASHBOARD, ...DASHBOARD_OPTIONS.flatMap((o) => ["--set", `dashboard.${o}`]), "--set", "dashboard.publicUrl=https://dash.example"]],
      [DASHBOARD, []],
      [DASHBOARD, [...DASHBOARD_OPTIONS, "publicUrl=https://dash.example", "serviceAccount.name=dash"].flatMap((o) => ["--set", o])],
      [UMBRELLA, ["--set", "userRoles.create=false"]],
    ] as const) {
      const out = await helmRun(["lint", "--strict", chart, ...values]);
      expect(out).toContain("0 chart(s) failed");
    }
  });

  it("renders only when enabled (opt-in): a Deployment, a Service and a ServiceAccount bound to nothing", async () => {
    expect((await render(UMBRELLA)).filter((o) => o.metadata?.name?.includes("dashboard"))).toEqual([]);
    const objects = (await render(UMBRELLA, WITH_DASHBOARD)).filter((o) => (o.metadata as { labels?: Record<string, string> } | undefined)?.labels?.["app.kubernetes.io/name"] === "dashboard");
    expect(objects.map((o) => `${o.kind}/${o.metadata?.name}`).sort()).toEqual([
      "Deployment/ktube-dashboard",
      "Service/ktube-dashboard",
      "ServiceAccount/ktube-dashboard",
    ]);
    // The dashboard acts only with its users' tokens: no binding names its ServiceAccount, and it has no token.
    const all = await render(UMBRELLA, [...WITH_DASHBOARD, ...WITH_NGROK, ...WITH_DEVTUNNELS, ...WITH_EDGE]);
    const bindings = all.filter((o) => o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding") as unknown as Array<{ subjects?: Array<{ name: string }> }>;
    expect(bindings.length).toBeGreaterThan(0);
    expect(bindings.flatMap((b) => b.subjects ?? []).filter((s) => s.name.includes("dashboard"))).toEqual([]);
    const sa = objects.find((o) => o.kind === "ServiceAccount") as unknown as { automountServiceAccountToken: boolean };
    expect(sa.automountServiceAccountToken).toBe(false);
    const pod = dashboardPod(objects);
    expect(pod.serviceAccountName).toBe("ktube-dashboard");
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } });
    const [container] = pod.containers;
    expect(container!.securityContext).toEqual({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    expect(container!.image).toBe("ghcr.io/ktube-dev/dashboard:0.1.0");
    expect(container!.resources).toMatchObject({ requests: { cpu: expect.any(String), memory: expect.any(String) }, limits: { memory: expect.any(String) } });
    expect(container).toMatchObject({ livenessProbe: { httpGet: { path: "/healthz", port: "http" } }, readinessProbe: { httpGet: { path: "/healthz", port: "http" } } });
    expect(container!.ports).toEqual([{ name: "http", containerPort: 8080 }]);
    // No --public-url: behind `kubectl port-forward` each request's own origin is the right one.
    expect(container!.args).toEqual(["--listen=0.0.0.0:8080", "--max-session-hours=8"]);
    // The API server's CA, where the dashboard looks for it in a Pod (its address comes from KUBERNETES_SERVICE_HOST).
    expect(pod.volumes).toEqual([{ name: "kube-root-ca", configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } }]);
    expect(container!.volumeMounts).toEqual([{ name: "kube-root-ca", mountPath: "/etc/ktube/kube-root-ca", readOnly: true }]);
    expect((objects.find((o) => o.kind === "Service") as unknown as { spec: unknown }).spec).toMatchObject({
      type: "ClusterIP",
      ports: [{ name: "http", port: 80, targetPort: "http" }],
    });
  });

  it("takes values: image, port, session hours, the public URL (set, or https:// and the Ingress's host) and the Ingress", async () => {
    const objects = await render(DASHBOARD, DASHBOARD_OPTIONS.flatMap((o) => ["--set", o]));
    const pod = dashboardPod(objects, "ktube-dashboard");
    const [container] = pod.containers;
    expect(container!.image).toBe("registry.example/dashboard:1.2.3");
    expect(container!.args).toEqual(["--listen=0.0.0.0:9090", "--max-session-hours=2", "--public-url=https://ktube.example.com"]);
    expect(container!.ports).toEqual([{ name: "http", containerPort: 9090 }]);
    expect((objects.find((o) => o.kind === "Deployment") as unknown as { spec: { replicas: number } }).spec.replicas).toBe(2);
    expect((objects.find((o) => o.kind === "Service") as unknown as { spec: unknown }).spec).toMatchObject({ ports: [{ name: "http", port: 8443, targetPort: "http" }] });
    const ingress = objects.find((o) => o.kind === "Ingress") as unknown as { metadata: { name: string }; spec: unknown };
    expect(ingress.metadata.name).toBe("ktube-dashboard");
    expect(ingress.spec).toEqual({
      ingressClassName: "nginx",
      tls: [{ hosts: ["ktube.example.com"], secretName: "ktube-dashboard-tls" }],
      rules: [{ host: "ktube.example.com", http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "ktube-dashboard", port: { name: "http" } } } }] } }],
    });
    // TLS terminated further in front: an explicit publicUrl wins, and no tls section without a Secret.
    const proxied = await render(DASHBOARD, ["--set", "publicUrl=https://dash.example/", "--set", "ingress.enabled=true", "--set", "ingress.host=internal.example"]);
    expect(dashboardPod(proxied).containers[0]!.args).toContain("--public-url=https://dash.example/");
    expect((proxied.find((o) => o.kind === "Ingress") as unknown as { spec: Record<string, unknown> }).spec).not.toHaveProperty("tls");
    // The Ingress needs a host (the cookie's origin).
    await expect(helmRun(["template", "ktube", DASHBOARD, "--set", "ingress.enabled=true"])).rejects.toThrow(/ingress.host is required/);
  });

  it("renders ktube-view and ktube-edit with every install (the dashboard or not), aggregated into the built-in view, edit and admin roles", async () => {
    const objects = await render(UMBRELLA);
    expect(objects.filter((o) => o.kind === "ClusterRole").map((o) => o.metadata?.name).sort()).toEqual(["ktube-cloudflare-controller", "ktube-edit", "ktube-view"]);
    expect(labelsOf(objects, "ktube-view")).toMatchObject({ "app.kubernetes.io/name": "ktube", "app.kubernetes.io/part-of": "ktube" });
    // userRoles.create=false leaves them to another release in the same cluster (their names are fixed).
    expect((await render(UMBRELLA, ["--set", "userRoles.create=false"])).filter((o) => o.metadata?.name?.startsWith("ktube-view") || o.metadata?.name?.startsWith("ktube-edit"))).toEqual([]);
    const view = verbsIn(objects, "ClusterRole", "ktube-view");
    for (const resource of ["tunnelproviders", "tunnels", "tunnelbindings"]) expect(view(resource)).toEqual(["get", "list", "watch"]);
    for (const resource of ["tunnelproviders/status", "tunnels/status", "tunnelbindings/status"]) expect(view(resource)).toEqual(["get"]);
    // The dashboard reads events.k8s.io/v1 Events (what KTube's recorder writes); the built-in view grants them only from 1.35.
    expect(rulesOf(objects, "ktube-view").find((r) => r.resources.includes("events"))).toEqual({ apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["get", "list", "watch"] });
    // Application teams write bindings, never Tunnels, TunnelProviders or anyone's status.
    expect(rulesOf(objects, "ktube-edit")).toEqual([{ apiGroups: ["ktube.dev"], resources: ["tunnelbindings"], verbs: ["create", "update", "patch", "delete"] }]);
    for (const name of ["ktube-view", "ktube-edit"]) {
      const rules = rulesOf(objects, name);
      expect(rules.some((r) => r.verbs.includes("*") || r.resources.includes("*") || r.apiGroups.includes("*"))).toBe(false);
      expect(rules.flatMap((r) => r.apiGroups).filter((g) => !["ktube.dev", "events.k8s.io"].includes(g))).toEqual([]);
    }
    const aggregatedInto = (name: string) =>
      Object.entries(labelsOf(objects, name))
        .filter(([key, value]) => key.startsWith(AGGREGATE) && value === "true")
        .map(([key]) => key.slice(AGGREGATE.length))
        .sort();
    expect(aggregatedInto("ktube-view")).toEqual(["admin", "edit", "view"]);
    expect(aggregatedInto("ktube-edit")).toEqual(["admin", "edit"]);
  });

  it("on the API server: applies (server-side), and a user bound to the built-in view in a namespace lists bindings there but cannot create them; edit can", async () => {
    // The whole chart, Ingress included, passes the API server's validation.
    const manifest = await helmRun(["template", "ktube", DASHBOARD, "--namespace", ns, ...DASHBOARD_OPTIONS.flatMap((o) => ["--set", o])]);
    const dryRun = await kubectl(["apply", "--server-side", "--dry-run=server", "--field-manager=helm-test", "-f", "-"], manifest);
    expect(dryRun.stderr).toBe("");
    for (const object of ["deployment.apps/ktube-dashboard", "service/ktube-dashboard", "serviceaccount/ktube-dashboard", "ingress.networking.k8s.io/ktube-dashboard"]) {
      expect(dryRun.stdout).toContain(`${object} serverside-applied (server dry run)`);
    }

    const apps = await createTestNamespace(kc, "dashboard-users");
    const other = await createTestNamespace(kc, "dashboard-other");
    try {
      const viewer = `--as=dashboard-viewer-${apps}`;
      const editor = `--as=dashboard-editor-${apps}`;
      for (const [user, role] of [[viewer, "view"], [editor, "edit"]] as const) {
        const bound = await kubectl(["create", "rolebinding", `${role}-user`, `--clusterrole=${role}`, `--user=${user.slice("--as=".length)}`, "-n", apps]);
        expect(bound.stderr).toBe("");
      }
      const can = async (user: string, ...args: string[]) => (await kubectl(["auth", "can-i", ...args, user])).stdout.trim();
      // Before: the built-in view (once aggregated) grants Events but not KTube's kinds. (events.k8s.io only from
      // Kubernetes 1.35, kubernetes/kubernetes#133740; ktube-view grants it for 1.31-1.34.)
      await eventually(async () => expect(await can(viewer, "list", "events", "-n", apps)).toBe("yes"), 30_000, 250);
      expect(await can(viewer, "list", "tunnelbindings.ktube.dev", "-n", apps)).toBe("no");
      expect(await can(editor, "create", "tunnelbindings.ktube.dev", "-n", apps)).toBe("no");
      const roles = await helmRun(["template", "ktube", UMBRELLA, "--namespace", ns, "--show-only", "templates/user-roles.yaml"]);
      const serviceAccount = await helmRun(["template", "ktube", DASHBOARD, "--namespace", ns, "--show-only", "templates/serviceaccount.yaml"]);
      const installed = await kubectl(["apply", "--server-side", "--field-manager=helm-test", "-f", "-"], `${roles}\n---\n${serviceAccount}`);
      expect(installed.stderr).toBe("");
      expect(installed.code).toBe(0);
      // The aggregation controller copies the rules into view, edit and admin.
      await eventually(async () => expect(await can(viewer, "list", "tunnelbindings.ktube.dev", "-n", apps)).toBe("yes"), 30_000, 250);
      await eventually(async () => expect(await can(editor, "create", "tunnelbindings.ktube.dev", "-n", apps)).toBe("yes"), 30_000, 250);

      for (const verb of ["get", "list", "watch"]) {
        for (const resource of ["tunnelbindings", "tunnels"]) expect(await can(viewer, verb, `${resource}.ktube.dev`, "-n", apps)).toBe("yes");
        expect(await can(viewer, verb, "events.events.k8s.io", "-n", apps)).toBe("yes");
      }
      for (const verb of ["create", "update", "patch", "delete"]) expect(await can(viewer, verb, "tunnelbindings.ktube.dev", "-n", apps)).toBe("no");
      for (const verb of ["create", "update", "patch", "delete"]) expect(await can(editor, verb, "tunnelbindings.ktube.dev", "-n", apps)).toBe("yes");
      // Only in the namespace of the RoleBinding; never Tunnels, status or the cluster-scoped TunnelProviders.
      expect(await can(viewer, "list", "tunnelbindings.ktube.dev", "-n", other)).toBe("no");
      expect(await can(editor, "create", "tunnelbindings.ktube.dev", "-n", other)).toBe("no");
      expect(await can(editor, "create", "tunnels.ktube.dev", "-n", apps)).toBe("no");
      expect(await can(editor, "patch", "tunnelbindings.ktube.dev", "--subresource=status", "-n", apps)).toBe("no");
      expect(await can(viewer, "list", "tunnelproviders.ktube.dev")).toBe("no");
      // admin (a namespace's owner) gets both.
      const admins = await kubectl(["get", "clusterrole", "admin", "-o", "json"]);
      const adminRules = (JSON.parse(admins.stdout) as { rules: Rule[] }).rules;
      expect(adminRules).toEqual(expect.arrayContaining(rulesOf(await render(UMBRELLA), "ktube-edit")));
      // The dashboard's own ServiceAccount can do nothing of the kind.
      const dashboard = `--as=system:serviceaccount:${ns}:ktube-dashboard`;
      for (const args of [["list", "tunnelbindings.ktube.dev", "-n", ns], ["list", "tunnelproviders.ktube.dev"], ["list", "namespaces"], ["get", "secrets", "-n", ns]]) {
        expect(await can(dashboard, ...args)).toBe("no");
      }
    } finally {
      await deleteTestNamespace(kc, apps);
      await deleteTestNamespace(kc, other);
    }
  });
});
