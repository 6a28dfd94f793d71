// The cloudflare-controller chart's ValidatingAdmissionPolicies, installed for real with
// its ServiceAccount and RBAC: acting as that ServiceAccount, writes to Secrets,
// Deployments, Services and PodDisruptionBudgets pass only for objects the controller
// marks as its own, and Deployments only with Pods that hold no credentials and no host
// access. (Its own file: charts.test.ts imports the controller app, which may not load
// while the app is being rebuilt; these tests need only the chart.)
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { KubeConfig } from "@kubernetes/client-node";
import { Core, TunnelResource } from "@ktube/api";
import { ApiError, KubeClient, PatchType, resourcePath, type KubeObject } from "@ktube/runtime";
import { createTestNamespace, deleteTestNamespace, ensureHelm, eventually, kubectl, testKubeConfig } from "@ktube/testenv";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { kubeConfigAs } from "@ktube/testenv";

const run = promisify(execFile);
const CLOUDFLARE = join(import.meta.dirname, "..", "..", "charts", "ktube", "charts", "cloudflare-controller");
// A release name of its own, so the cluster-scoped objects (ClusterRole, policies) do not
// meet those charts.test.ts installs into the same API server.
const RELEASE = "policy";
const FULLNAME = `${RELEASE}-cloudflare-controller`;
const MARK = { "app.kubernetes.io/managed-by": "ktube-cloudflare-controller" };
const TEMPLATES = ["templates/serviceaccount.yaml", "templates/rbac.yaml", "templates/admission-policy.yaml"];

const PolicyResource = { apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingAdmissionPolicy", plural: "validatingadmissionpolicies", namespaced: false };
const PolicyBindingResource = {
  apiVersion: "admissionregistration.k8s.io/v1",
  kind: "ValidatingAdmissionPolicyBinding",
  plural: "validatingadmissionpolicybindings",
  namespaced: false,
};

type Policy = KubeObject & { spec: { failurePolicy: string; matchConditions: Array<{ expression: string }> } };
type PolicyBinding = KubeObject & { spec: { policyName: string; validationActions: string[] } };

let helm: string;
let kc: KubeConfig;
let admin: KubeClient;
/** The release namespace, where the chart's ServiceAccount lives. */
let release: string;
/** Where the controller's objects go (an application namespace). */
let apps: string;
let installed: string;
/** The chart's ServiceAccount, authenticated with a token from the TokenRequest API. */
let controller: KubeClient;
let tunnel: KubeObject;

async function helmTemplate(values: string[] = []): Promise<string> {
  const args = ["template", RELEASE, CLOUDFLARE, "--namespace", release, ...TEMPLATES.flatMap((t) => ["--show-only", t]), ...values];
  const env = { ...process.env, HELM_CACHE_HOME: "/tmp/ktube-helm-cache", HELM_CONFIG_HOME: "/tmp/ktube-helm-config" };
  return (await run(helm, args, { maxBuffer: 32 * 1024 * 1024, env })).stdout;
}

async function install(manifest: string): Promise<string> {
  const applied = await kubectl(["apply", "--server-side", "--field-manager=helm-test", "-f", "-"], manifest);
  expect(applied.stderr).toBe("");
  expect(applied.code).toBe(0);
  return applied.stdout;
}

/** The API server's refusal of `action` (fails the test when it was allowed). */
async function refusal(action: Promise<unknown>): Promise<ApiError> {
  const outcome = await action.then(
    () => new Error("the API server allowed a request it should have refused"),
    (error: unknown) => error,
  );
  if (!(outcome instanceof ApiError)) throw outcome;
  return outcome;
}

/**
 * What each connector's "-rbac" policy allows of RoleBindings: only the connector's own Role
 * (`name`) bound to its own ServiceAccount (`name`) in the same namespace. Four others are
 * refused (another ServiceAccount, one of another namespace, a group, another Role), then the
 * connector's own one is taken. `otherRole` is a Role an administrator made beside it.
 */
async function expectOnlyTheConnectorsRoleBinding(client: KubeClient, namespace: string, name: string, otherRole: string, owned: Record<string, unknown>, by: string): Promise<void> {
  await admin.create(Core.Role, { metadata: { name: otherRole, namespace }, rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get"] }] });
  const binding = (roleRef: string, subject: Record<string, string>) => ({
    metadata: { name, namespace, ...owned },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: roleRef },
    subjects: [subject],
  });
  const refusedBindings = [
    binding(name, { kind: "ServiceAccount", name: "default", namespace }),
    binding(name, { kind: "ServiceAccount", name, namespace: "default" }),
    binding(name, { kind: "Group", name: "system:authenticated", apiGroup: "rbac.authorization.k8s.io" }),
    binding(otherRole, { kind: "ServiceAccount", name, namespace }),
  ];
  for (const body of refusedBindings) {
    const refused = await refusal(client.create(Core.RoleBinding, body));
    expect(refused.status).toBe(403);
    expect(refused.message).toContain(`RoleBinding ${namespace}/${name}: a RoleBinding that ${by} writes may only bind the Role ${name} to the ServiceAccount ${name} of its own namespace`);
  }
  await client.create(Core.RoleBinding, binding(name, { kind: "ServiceAccount", name, namespace }));
}

const ownedBy = (owner: KubeObject) => [
  { apiVersion: owner.apiVersion!, kind: owner.kind!, name: owner.metadata!.name!, uid: owner.metadata!.uid!, controller: true, blockOwnerDeletion: true },
];

/** A Deployment shaped like a cloudflared connector's; `metadata` and `pod` override the defaults. */
function deployment(name: string, metadata: KubeObject["metadata"] = {}, pod: Record<string, unknown> = { automountServiceAccountToken: false }) {
  return {
    metadata: { name, namespace: apps, ...metadata },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "cloudflared", image: "cloudflare/cloudflared:2025.11.1" }], ...pod } },
    },
  };
}

const notMarked = (kind: string, name: string) =>
  `${kind} ${apps}/${name} as ktube-cloudflare-controller wrote it has no label app.kubernetes.io/managed-by=ktube-cloudflare-controller and no controller ownerReference to a ktube.dev Tunnel or TunnelBinding`;

beforeAll(async () => {
  helm = await ensureHelm((line) => process.stderr.write(`[testenv] ${line}\n`));
  kc = testKubeConfig();
  admin = new KubeClient(kc);
  release = await createTestNamespace(kc, "ktube-policy");
  apps = await createTestNamespace(kc, "policy-apps");
  installed = await install(await helmTemplate());

  const asController = await kubeConfigAs(kc, release, FULLNAME);
  controller = new KubeClient(asController);

  // A real owner for the controller's objects (no controller serves it here: only its uid matters).
  tunnel = await admin.create(TunnelResource, { metadata: { name: "home", namespace: apps }, spec: { providerRef: { name: "unserved" } } });

  // Barrier: the API server loads policies, bindings and RBAC from its own watches. Once a
  // dry run of an unmarked Deployment is refused by the policy, all of them are in force.
  await eventually(async () => {
    const refused = await refusal(
      controller.request("POST", resourcePath(Core.Deployment, apps), { body: { apiVersion: "apps/v1", kind: "Deployment", ...deployment("barrier") }, query: { dryRun: "All" } }),
    );
    expect(refused.message).toContain(`ValidatingAdmissionPolicy '${FULLNAME}-managed-objects'`);
  }, 60_000);
}, 1_800_000);

afterAll(async () => {
  // The cluster-scoped objects first: the policies name this release's ServiceAccount.
  if (installed) await kubectl(["delete", "--ignore-not-found", "-f", "-"], await helmTemplate(["--set", "quickTunnels.enabled=true"]));
  await deleteTestNamespace(kc, apps);
  await deleteTestNamespace(kc, release);
});

describe("the cloudflare-controller chart's admission policies", () => {
  it("install with their bindings, bound to the chart's ServiceAccount, failing closed", async () => {
    for (const name of [`${FULLNAME}-managed-objects`, `${FULLNAME}-connector-pods`]) {
      expect(installed).toContain(`validatingadmissionpolicy.admissionregistration.k8s.io/${name} serverside-applied`);
      expect(installed).toContain(`validatingadmissionpolicybinding.admissionregistration.k8s.io/${name} serverside-applied`);
      const policy = await admin.get<Policy>(PolicyResource, undefined, name);
      expect(policy.spec.failurePolicy).toBe("Fail");
      expect(policy.spec.matchConditions.map((c) => c.expression)).toEqual([`request.userInfo.username == 'system:serviceaccount:${release}:${FULLNAME}'`]);
      const binding = await admin.get<PolicyBinding>(PolicyBindingResource, undefined, name);
      expect(binding.spec).toMatchObject({ policyName: name, validationActions: ["Deny"] });
    }
  });

  it("refuse a Deployment the controller creates without its mark", async () => {
    const plain = await refusal(controller.create(Core.Deployment, deployment("plain")));
    expect(plain.status).toBe(403);
    expect(plain.message).toContain(notMarked("Deployment", "plain"));

    // The label alone is not enough: the controller ownerReference must point into ktube.dev.
    const configMap = await admin.create(Core.ConfigMap, { metadata: { name: "not-a-tunnel", namespace: apps } });
    const foreignOwner = await refusal(controller.create(Core.Deployment, deployment("foreign-owner", { labels: MARK, ownerReferences: ownedBy(configMap) })));
    expect(foreignOwner.status).toBe(403);
    expect(foreignOwner.message).toContain(
      `Deployment ${apps}/foreign-owner as ktube-cloudflare-controller wrote it has no controller ownerReference to a ktube.dev Tunnel or TunnelBinding`,
    );

    for (const name of ["plain", "foreign-owner"]) {
      expect((await refusal(admin.get(Core.Deployment, apps, name))).status).toBe(404);
    }
  });

  it("refuse to change or delete a Deployment someone else made, even to take it over", async () => {
    await admin.create(Core.Deployment, deployment("someone-elses"));
    const takeOver = { metadata: { labels: MARK, ownerReferences: ownedBy(tunnel) } };
    const update = await refusal(controller.patch(Core.Deployment, apps, "someone-elses", takeOver, PatchType.merge));
    expect(update.status).toBe(403);
    expect(update.message).toContain(
      `Deployment ${apps}/someone-elses is not managed by ktube-cloudflare-controller (it has no label app.kubernetes.io/managed-by=ktube-cloudflare-controller and no controller ownerReference to a ktube.dev Tunnel or TunnelBinding), so the controller may not change it`,
    );
    const removal = await refusal(controller.delete(Core.Deployment, apps, "someone-elses"));
    expect(removal.status).toBe(403);
    expect(removal.message).toContain(`Deployment ${apps}/someone-elses is not managed by ktube-cloudflare-controller`);
    expect(removal.message).toContain("so the controller may not delete it");

    // The controller's own update path (a JSON patch whose first op tests the ownerReference
    // uid) still fails on the patch itself (422, which it reports as NameInUse), before the policy.
    const tested = [{ op: "test", path: "/metadata/ownerReferences/0/uid", value: tunnel.metadata!.uid }, { op: "add", path: "/spec/replicas", value: 3 }];
    expect((await refusal(controller.patch(Core.Deployment, apps, "someone-elses", tested, PatchType.json))).status).toBe(422);

    const live = await admin.get<KubeObject>(Core.Deployment, apps, "someone-elses");
    expect(live.metadata?.labels ?? {}).not.toHaveProperty("app.kubernetes.io/managed-by");
    expect(live.metadata?.ownerReferences ?? []).toEqual([]);
  });

  it("allow the controller to create, update and delete its own Deployment, but not to unmark it", async () => {
    const created = await controller.create(Core.Deployment, deployment("home-cloudflared", { labels: MARK, ownerReferences: ownedBy(tunnel) }));
    await controller.patch(Core.Deployment, apps, "home-cloudflared", { spec: { replicas: 2 } }, PatchType.merge);

    const unmark = [{ op: "remove", path: "/metadata/labels/app.kubernetes.io~1managed-by" }];
    const unmarked = await refusal(controller.patch(Core.Deployment, apps, "home-cloudflared", unmark, PatchType.json));
    expect(unmarked.status).toBe(403);
    expect(unmarked.message).toContain(`Deployment ${apps}/home-cloudflared as ktube-cloudflare-controller wrote it has no label app.kubernetes.io/managed-by=ktube-cloudflare-controller;`);

    await controller.delete(Core.Deployment, apps, "home-cloudflared", { uid: created.metadata!.uid! });
    expect((await refusal(admin.get(Core.Deployment, apps, "home-cloudflared"))).status).toBe(404);
  });

  it("keep Kubernetes credentials and host access out of the Pods of the controller's Deployments", async () => {
    const owned = { labels: MARK, ownerReferences: ownedBy(tunnel) };
    const credentials = "Pods that ktube-cloudflare-controller runs must hold no Kubernetes credentials";
    const host = "Pods that ktube-cloudflare-controller runs may not use the host";
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ["token-mounted", {}, credentials],
      ["other-account", { automountServiceAccountToken: false, serviceAccountName: "deployer" }, credentials],
      [
        "token-projected",
        { automountServiceAccountToken: false, volumes: [{ name: "token", projected: { sources: [{ serviceAccountToken: { path: "token" } }] } }] },
        credentials,
      ],
      ["host-network", { automountServiceAccountToken: false, hostNetwork: true }, host],
      ["host-path", { automountServiceAccountToken: false, volumes: [{ name: "root", hostPath: { path: "/" } }] }, host],
      [
        "privileged-init",
        { automountServiceAccountToken: false, initContainers: [{ name: "init", image: "busybox", securityContext: { privileged: true } }] },
        host,
      ],
    ];
    for (const [name, pod, message] of cases) {
      const refused = await refusal(controller.create(Core.Deployment, deployment(name, owned, pod)));
      expect(refused.status).toBe(403);
      expect(refused.message).toContain(`ValidatingAdmissionPolicy '${FULLNAME}-connector-pods'`);
      expect(refused.message).toContain(`Deployment ${apps}/${name}: ${message}`);
    }
  });

  it("refuse a Secret without the controller's label, take one with its mark, and never let it read one back", async () => {
    const token = { stringData: { token: "connector-token" } };
    const unlabelled = await refusal(controller.create(Core.Secret, { metadata: { name: "home-cloudflared", namespace: apps, ownerReferences: ownedBy(tunnel) }, ...token }));
    expect(unlabelled.status).toBe(403);
    expect(unlabelled.message).toContain(
      `Secret ${apps}/home-cloudflared as ktube-cloudflare-controller wrote it has no label app.kubernetes.io/managed-by=ktube-cloudflare-controller;`,
    );
    await controller.create(Core.Secret, { metadata: { name: "home-cloudflared", namespace: apps, labels: MARK, ownerReferences: ownedBy(tunnel) }, ...token });
    await controller.patch(Core.Secret, apps, "home-cloudflared", { stringData: { token: "rotated" } }, PatchType.merge);
    // Write-only outside its namespace: RBAC has no get for Secrets there.
    const read = await refusal(controller.get(Core.Secret, apps, "home-cloudflared"));
    expect(read.status).toBe(403);
    expect(read.message).toContain(`cannot get resource "secrets" in API group "" in the namespace "${apps}"`);
  });

  it("refuse a PodDisruptionBudget without the mark and take one with it", async () => {
    const spec = { maxUnavailable: 1, selector: { matchLabels: { app: "home-cloudflared" } } };
    const plain = await refusal(controller.create(Core.PodDisruptionBudget, { metadata: { name: "plain", namespace: apps }, spec }));
    expect(plain.status).toBe(403);
    expect(plain.message).toContain(notMarked("PodDisruptionBudget", "plain"));
    await controller.create(Core.PodDisruptionBudget, { metadata: { name: "home-cloudflared", namespace: apps, labels: MARK, ownerReferences: ownedBy(tunnel) }, spec });
  });

  // Last: it widens this release's RBAC.
  it("forbid Services unless quickTunnels.enabled, and then allow only the controller's own", async () => {
    const service = (name: string, metadata: KubeObject["metadata"] = {}) => ({
      metadata: { name, namespace: apps, ...metadata },
      spec: { selector: { app: name }, ports: [{ name: "metrics", port: 2000 }] },
    });
    const owned = { labels: MARK, ownerReferences: ownedBy(tunnel) };
    const byRbac = await refusal(controller.create(Core.Service, service("qt-web", owned)));
    expect(byRbac.status).toBe(403);
    expect(byRbac.message).toContain(`User "system:serviceaccount:${release}:${FULLNAME}" cannot create resource "services" in API group "" in the namespace "${apps}"`);

    const widened = await install(await helmTemplate(["--set", "quickTunnels.enabled=true"]));
    expect(widened).toContain(`clusterrole.rbac.authorization.k8s.io/${FULLNAME} serverside-applied`);
    // RBAC reloads from a watch: retry until the new rule is in force.
    await eventually(() => controller.create(Core.Service, service("qt-web", owned)), 30_000);
    await controller.patch(Core.Service, apps, "qt-web", { metadata: { annotations: { touched: "yes" } } }, PatchType.merge);
    await controller.delete(Core.Service, apps, "qt-web");

    const plain = await refusal(controller.create(Core.Service, service("plain")));
    expect(plain.status).toBe(403);
    expect(plain.message).toContain(notMarked("Service", "plain"));
  });
});

// The ngrok-controller chart's policies, the same way: its own release namespace, apps
// namespace and Tunnel; its kinds add ConfigMaps, ServiceAccounts, Roles and RoleBindings
// (the agents' own RBAC), and its agent Pods run as their own ServiceAccount.
describe("the ngrok-controller chart's admission policies", () => {
  const NGROK = join(import.meta.dirname, "..", "..", "charts", "ktube", "charts", "ngrok-controller");
  const FULL = `${RELEASE}-ngrok-controller`;
  const BY = "ktube-ngrok-controller";
  const NGROK_MARK = { "app.kubernetes.io/managed-by": BY };
  let ngRelease: string;
  let ngApps: string;
  let ngInstalled: string;
  let ng: KubeClient;
  let home: KubeObject;
  const owned = () => ({ labels: NGROK_MARK, ownerReferences: ownedBy(home) });

  async function ngTemplate(): Promise<string> {
    const args = ["template", RELEASE, NGROK, "--namespace", ngRelease, ...TEMPLATES.flatMap((t) => ["--show-only", t])];
    const env = { ...process.env, HELM_CACHE_HOME: "/tmp/ktube-helm-cache", HELM_CONFIG_HOME: "/tmp/ktube-helm-config" };
    return (await run(helm, args, { maxBuffer: 32 * 1024 * 1024, env })).stdout;
  }
  const unmarked = (kind: string, name: string) =>
    `${kind} ${ngApps}/${name} as ${BY} wrote it has no label app.kubernetes.io/managed-by=${BY} and no controller ownerReference to a ktube.dev Tunnel`;
  /** Shaped like the agents' Deployment (connector.ts): runs as the ServiceAccount named like it. */
  const agentDeployment = (name: string, pod: Record<string, unknown> = { serviceAccountName: name }) => ({
    metadata: { name, namespace: ngApps, ...owned() },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "agent", image: "ghcr.io/ktube-dev/ngrok-controller:0.1.0", args: ["connector"] }], ...pod } },
    },
  });
  const agentRules = (name: string) => [
    { apiGroups: [""], resources: ["configmaps"], resourceNames: [name], verbs: ["get", "list", "watch"] },
    { apiGroups: [""], resources: ["configmaps"], resourceNames: [`${name}-status`], verbs: ["get", "patch"] },
  ];

  beforeAll(async () => {
    ngRelease = await createTestNamespace(kc, "ktube-ngpolicy");
    ngApps = await createTestNamespace(kc, "ngpolicy-apps");
    ngInstalled = await install(await ngTemplate());
    ng = new KubeClient(await kubeConfigAs(kc, ngRelease, FULL));
    home = await admin.create(TunnelResource, { metadata: { name: "home", namespace: ngApps }, spec: { providerRef: { name: "unserved" } } });
    // Barrier, as above: once an unmarked ConfigMap is refused, policies, bindings and RBAC are in force.
    await eventually(async () => {
      const refused = await refusal(ng.request("POST", resourcePath(Core.ConfigMap, ngApps), { body: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "barrier" } }, query: { dryRun: "All" } }));
      expect(refused.message).toContain(`ValidatingAdmissionPolicy '${FULL}-managed-objects'`);
    }, 60_000);
  }, 120_000);

  afterAll(async () => {
    if (ngInstalled) await kubectl(["delete", "--ignore-not-found", "-f", "-"], await ngTemplate());
    await deleteTestNamespace(kc, ngApps);
    await deleteTestNamespace(kc, ngRelease);
  });

  it("install with their bindings, bound to the chart's ServiceAccount, failing closed", async () => {
    for (const name of [`${FULL}-managed-objects`, `${FULL}-agent-rbac`, `${FULL}-agent-pods`]) {
      expect(ngInstalled).toContain(`validatingadmissionpolicy.admissionregistration.k8s.io/${name} serverside-applied`);
      expect(ngInstalled).toContain(`validatingadmissionpolicybinding.admissionregistration.k8s.io/${name} serverside-applied`);
      const policy = await admin.get<Policy>(PolicyResource, undefined, name);
      expect(policy.spec.failurePolicy).toBe("Fail");
      expect(policy.spec.matchConditions.map((c) => c.expression)).toEqual([`request.userInfo.username == 'system:serviceaccount:${ngRelease}:${FULL}'`]);
      const binding = await admin.get<PolicyBinding>(PolicyBindingResource, undefined, name);
      expect(binding.spec).toMatchObject({ policyName: name, validationActions: ["Deny"] });
    }
  });

  it("refuse unmarked ConfigMaps, ServiceAccounts and Secrets; take marked ones; never take over or unmark", async () => {
    const cases: Array<[typeof Core.ConfigMap, string, Record<string, unknown>]> = [
      [Core.ConfigMap, "ConfigMap", { data: { "routes.json": "{}" } }],
      [Core.ServiceAccount, "ServiceAccount", { automountServiceAccountToken: false }],
      [Core.Secret, "Secret", { stringData: { authtoken: "agent-token" } }],
    ];
    for (const [type, kind, body] of cases) {
      const plain = await refusal(ng.create(type, { metadata: { name: "plain", namespace: ngApps }, ...body }));
      expect(plain.status).toBe(403);
      expect(plain.message).toContain(unmarked(kind, "plain"));
      await ng.create(type, { metadata: { name: "home-ngrok", namespace: ngApps, ...owned() }, ...body });
    }
    // Someone else's ConfigMap: neither changed nor marked as the controller's.
    await admin.create(Core.ConfigMap, { metadata: { name: "someone-elses", namespace: ngApps }, data: { a: "b" } });
    const takeOver = await refusal(ng.patch(Core.ConfigMap, ngApps, "someone-elses", { metadata: owned() }, PatchType.merge));
    expect(takeOver.status).toBe(403);
    expect(takeOver.message).toContain(`ConfigMap ${ngApps}/someone-elses is not managed by ${BY}`);
    const unmark = [{ op: "remove", path: "/metadata/labels/app.kubernetes.io~1managed-by" }];
    const unmarkedOwn = await refusal(ng.patch(Core.ConfigMap, ngApps, "home-ngrok", unmark, PatchType.json));
    expect(unmarkedOwn.status).toBe(403);
    expect(unmarkedOwn.message).toContain(`ConfigMap ${ngApps}/home-ngrok as ${BY} wrote it has no label`);
    // Least privilege: no delete on ConfigMaps (the garbage collector removes them), no read of Secrets here.
    expect((await refusal(ng.delete(Core.ConfigMap, ngApps, "home-ngrok"))).message).toContain(`cannot delete resource "configmaps"`);
    expect((await refusal(ng.get(Core.Secret, ngApps, "home-ngrok"))).message).toContain(`cannot get resource "secrets" in API group "" in the namespace "${ngApps}"`);
  });

  it("allow a Role and RoleBinding only in the shape of the agents' own", async () => {
    const role = (name: string, rules: unknown[]) => ({ metadata: { name, namespace: ngApps, ...owned() }, rules });
    const refusedRoles: Array<[string, unknown[]]> = [
      // All ConfigMaps of the namespace (no resourceNames).
      ["home-ngrok", [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch"] }]],
      // Someone else's ConfigMap.
      ["home-ngrok", [{ apiGroups: [""], resources: ["configmaps"], resourceNames: ["kube-root-ca.crt"], verbs: ["get"] }]],
      // Rights the controller holds but the agents need not (RBAC's escalation check would let these through).
      ["home-ngrok", [{ apiGroups: [""], resources: ["secrets"], resourceNames: ["home-ngrok"], verbs: ["create", "patch"] }]],
      ["home-ngrok", [{ apiGroups: ["apps"], resources: ["deployments"], resourceNames: ["home-ngrok"], verbs: ["get", "patch"] }]],
      ["home-ngrok", [{ apiGroups: [""], resources: ["configmaps"], resourceNames: ["home-ngrok"], verbs: ["create"] }]],
    ];
    for (const [name, rules] of refusedRoles) {
      const refused = await refusal(ng.create(Core.Role, role(name, rules)));
      expect(refused.status).toBe(403);
      expect(refused.message).toContain(`ValidatingAdmissionPolicy '${FULL}-agent-rbac'`);
      expect(refused.message).toContain(`Role ${ngApps}/${name}: a Role that ${BY} writes may only grant get, list, watch and patch on the ConfigMaps home-ngrok and home-ngrok-status`);
    }
    await ng.create(Core.Role, role("home-ngrok", agentRules("home-ngrok")));

    await expectOnlyTheConnectorsRoleBinding(ng, ngApps, "home-ngrok", "other", owned(), BY);
    // An unmarked Role is refused by the managed-objects policy, whatever its rules.
    const plain = await refusal(ng.create(Core.Role, { metadata: { name: "plain", namespace: ngApps }, rules: agentRules("plain") }));
    expect(plain.message).toContain(unmarked("Role", "plain"));
  });

  it("let the agents' Pods run only as their own ServiceAccount, without the host", async () => {
    await ng.create(Core.Deployment, agentDeployment("home-ngrok"));
    const account = "must run as the ServiceAccount";
    const host = `Pods that ${BY} runs may not use the host`;
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ["default-account", {}, account],
      ["other-account", { serviceAccountName: "deployer" }, account],
      ["token-projected", { serviceAccountName: "token-projected", volumes: [{ name: "t", projected: { sources: [{ serviceAccountToken: { path: "token", audience: "vault" } }] } }] }, account],
      ["host-network", { serviceAccountName: "host-network", hostNetwork: true }, host],
      ["host-path", { serviceAccountName: "host-path", volumes: [{ name: "root", hostPath: { path: "/" } }] }, host],
      ["privileged-init", { serviceAccountName: "privileged-init", initContainers: [{ name: "init", image: "busybox", securityContext: { privileged: true } }] }, host],
    ];
    for (const [name, pod, message] of cases) {
      const refused = await refusal(ng.create(Core.Deployment, agentDeployment(name, pod)));
      expect(refused.status).toBe(403);
      expect(refused.message).toContain(`ValidatingAdmissionPolicy '${FULL}-agent-pods'`);
      expect(refused.message).toContain(`Deployment ${ngApps}/${name}: `);
      expect(refused.message).toContain(message);
    }
    const plain = await refusal(ng.create(Core.Deployment, { ...agentDeployment("plain"), metadata: { name: "plain", namespace: ngApps } }));
    expect(plain.message).toContain(unmarked("Deployment", "plain"));
  });
});

// The devtunnels-controller chart's policies, the same way. Its host objects are named
// <tunnel>-devtunnel; the host's Role is exactly get/list/watch on the route table and
// get/patch on the status ConfigMap; its Pods run as their own ServiceAccount and take no
// Secret but their own host token. It never writes PodDisruptionBudgets (RBAC says so).
describe("the devtunnels-controller chart's admission policies", () => {
  const DEVTUNNELS = join(import.meta.dirname, "..", "..", "charts", "ktube", "charts", "devtunnels-controller");
  const FULL = `${RELEASE}-devtunnels-controller`;
  const BY = "ktube-devtunnels-controller";
  const DT_MARK = { "app.kubernetes.io/managed-by": BY };
  const N = "home-devtunnel";
  let dtRelease: string;
  let dtApps: string;
  let dtInstalled: string;
  let dt: KubeClient;
  let home: KubeObject;
  const owned = () => ({ labels: DT_MARK, ownerReferences: ownedBy(home) });

  async function dtTemplate(): Promise<string> {
    const args = ["template", RELEASE, DEVTUNNELS, "--namespace", dtRelease, ...TEMPLATES.flatMap((t) => ["--show-only", t])];
    const env = { ...process.env, HELM_CACHE_HOME: "/tmp/ktube-helm-cache", HELM_CONFIG_HOME: "/tmp/ktube-helm-config" };
    return (await run(helm, args, { maxBuffer: 32 * 1024 * 1024, env })).stdout;
  }
  const unmarked = (kind: string, name: string) =>
    `${kind} ${dtApps}/${name} as ${BY} wrote it has no label app.kubernetes.io/managed-by=${BY} and no controller ownerReference to a ktube.dev Tunnel`;
  /** Shaped like the host's Deployment (manifests/host.ts): its own ServiceAccount, its token Secret mounted, env from fields. */
  const hostPod = (name: string) => ({
    serviceAccountName: name,
    automountServiceAccountToken: true,
    volumes: [{ name: "token", secret: { secretName: name, defaultMode: 0o440 } }],
    containers: [
      {
        name: "host",
        image: "ghcr.io/ktube-dev/devtunnels-controller:0.1.0",
        args: ["connector"],
        env: [
          { name: "KTUBE_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
          { name: "DEVTUNNELS_TOKEN_FILE", value: "/etc/ktube/devtunnels/token" },
        ],
        volumeMounts: [{ name: "token", mountPath: "/etc/ktube/devtunnels", readOnly: true }],
      },
    ],
  });
  const hostDeployment = (name: string, pod: Record<string, unknown> = hostPod(name)) => ({
    metadata: { name, namespace: dtApps, ...owned() },
    spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: pod } },
  });
  const hostRules = (name: string) => [
    { apiGroups: [""], resources: ["configmaps"], resourceNames: [name], verbs: ["get", "list", "watch"] },
    { apiGroups: [""], resources: ["configmaps"], resourceNames: [`${name}-status`], verbs: ["get", "patch"] },
  ];

  beforeAll(async () => {
    dtRelease = await createTestNamespace(kc, "ktube-dtpolicy");
    dtApps = await createTestNamespace(kc, "dtpolicy-apps");
    dtInstalled = await install(await dtTemplate());
    dt = new KubeClient(await kubeConfigAs(kc, dtRelease, FULL));
    home = await admin.create(TunnelResource, { metadata: { name: "home", namespace: dtApps }, spec: { providerRef: { name: "unserved" } } });
    // Barrier, as above: once an unmarked ConfigMap is refused, policies, bindings and RBAC are in force.
    await eventually(async () => {
      const refused = await refusal(dt.request("POST", resourcePath(Core.ConfigMap, dtApps), { body: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "barrier" } }, query: { dryRun: "All" } }));
      expect(refused.message).toContain(`ValidatingAdmissionPolicy '${FULL}-managed-objects'`);
    }, 60_000);
  }, 120_000);

  afterAll(async () => {
    if (dtInstalled) await kubectl(["delete", "--ignore-not-found", "-f", "-"], await dtTemplate());
    await deleteTestNamespace(kc, dtApps);
    await deleteTestNamespace(kc, dtRelease);
  });

  it("install with their bindings, bound to the chart's ServiceAccount, failing closed", async () => {
    for (const name of [`${FULL}-managed-objects`, `${FULL}-host-rbac`, `${FULL}-host-pods`]) {
      expect(dtInstalled).toContain(`validatingadmissionpolicy.admissionregistration.k8s.io/${name} serverside-applied`);
      expect(dtInstalled).toContain(`validatingadmissionpolicybinding.admissionregistration.k8s.io/${name} serverside-applied`);
      const policy = await admin.get<Policy>(PolicyResource, undefined, name);
      expect(policy.spec.failurePolicy).toBe("Fail");
      expect(policy.spec.matchConditions.map((c) => c.expression)).toEqual([`request.userInfo.username == 'system:serviceaccount:${dtRelease}:${FULL}'`]);
      const binding = await admin.get<PolicyBinding>(PolicyBindingResource, undefined, name);
      expect(binding.spec).toMatchObject({ policyName: name, validationActions: ["Deny"] });
    }
  });

  it("refuse unmarked ConfigMaps, ServiceAccounts and Secrets; take marked ones; never take over or unmark; no PodDisruptionBudgets at all", async () => {
    const cases: Array<[typeof Core.ConfigMap, string, Record<string, unknown>]> = [
      [Core.ConfigMap, "ConfigMap", { data: { "routes.json": "{}" } }],
      [Core.ServiceAccount, "ServiceAccount", { automountServiceAccountToken: false }],
      [Core.Secret, "Secret", { stringData: { token: "host-token" } }],
    ];
    for (const [type, kind, body] of cases) {
      const plain = await refusal(dt.create(type, { metadata: { name: "plain", namespace: dtApps }, ...body }));
      expect(plain.status).toBe(403);
      expect(plain.message).toContain(unmarked(kind, "plain"));
      await dt.create(type, { metadata: { name: N, namespace: dtApps, ...owned() }, ...body });
    }
    await dt.patch(Core.Secret, dtApps, N, { stringData: { token: "renewed" } }, PatchType.merge);
    await admin.create(Core.ConfigMap, { metadata: { name: "someone-elses", namespace: dtApps }, data: { a: "b" } });
    const takeOver = await refusal(dt.patch(Core.ConfigMap, dtApps, "someone-elses", { metadata: owned() }, PatchType.merge));
    expect(takeOver.status).toBe(403);
    expect(takeOver.message).toContain(`ConfigMap ${dtApps}/someone-elses is not managed by ${BY}`);
    const unmark = [{ op: "remove", path: "/metadata/labels/app.kubernetes.io~1managed-by" }];
    const unmarkedOwn = await refusal(dt.patch(Core.ConfigMap, dtApps, N, unmark, PatchType.json));
    expect(unmarkedOwn.status).toBe(403);
    expect(unmarkedOwn.message).toContain(`ConfigMap ${dtApps}/${N} as ${BY} wrote it has no label`);
    // Least privilege: no delete on ConfigMaps, no read of Secrets here, no PodDisruptionBudget even with the mark.
    expect((await refusal(dt.delete(Core.ConfigMap, dtApps, N))).message).toContain(`cannot delete resource "configmaps"`);
    expect((await refusal(dt.get(Core.Secret, dtApps, N))).message).toContain(`cannot get resource "secrets" in API group "" in the namespace "${dtApps}"`);
    const pdb = await refusal(dt.create(Core.PodDisruptionBudget, { metadata: { name: N, namespace: dtApps, ...owned() }, spec: { maxUnavailable: 1, selector: { matchLabels: { app: N } } } }));
    expect(pdb.status).toBe(403);
    expect(pdb.message).toContain(`cannot create resource "poddisruptionbudgets"`);
  });

  it("allow a Role and RoleBinding only in the shape of the host's own", async () => {
    const role = (name: string, rules: unknown[]) => ({ metadata: { name, namespace: dtApps, ...owned() }, rules });
    const shape = `Role ${dtApps}/${N}: a Role that ${BY} writes may only grant get, list and watch on the ConfigMap ${N} and get and patch on the ConfigMap ${N}-status`;
    const refusedRoles: Array<[string, unknown[], string]> = [
      // All ConfigMaps of the namespace (no resourceNames).
      [N, [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch"] }], shape],
      // Someone else's ConfigMap.
      [N, [{ apiGroups: [""], resources: ["configmaps"], resourceNames: ["kube-root-ca.crt"], verbs: ["get"] }], shape],
      // The route table is read-only for the host; the status is get and patch only.
      [N, [{ apiGroups: [""], resources: ["configmaps"], resourceNames: [N], verbs: ["get", "patch"] }], shape],
      [N, [{ apiGroups: [""], resources: ["configmaps"], resourceNames: [`${N}-status`], verbs: ["get", "list", "watch", "patch"] }], shape],
      // Rights the controller holds but the host need not (RBAC's escalation check would let these through).
      [N, [{ apiGroups: [""], resources: ["secrets"], resourceNames: [N], verbs: ["create", "patch"] }], shape],
      [N, [{ apiGroups: ["apps"], resources: ["deployments"], resourceNames: [N], verbs: ["get", "patch"] }], shape],
      // Only the host's name.
      ["other", hostRules("other"), `Role ${dtApps}/other: the Roles and RoleBindings that ${BY} writes are those of its Dev Tunnels hosts (named <tunnel>-devtunnel)`],
    ];
    for (const [name, rules, message] of refusedRoles) {
      const refused = await refusal(dt.create(Core.Role, role(name, rules)));
      expect(refused.status).toBe(403);
      expect(refused.message).toContain(`ValidatingAdmissionPolicy '${FULL}-host-rbac'`);
      expect(refused.message).toContain(message);
    }
    await dt.create(Core.Role, role(N, hostRules(N)));

    await expectOnlyTheConnectorsRoleBinding(dt, dtApps, N, "other-devtunnel", owned(), BY);
    const plain = await refusal(dt.create(Core.Role, { metadata: { name: "plain-devtunnel", namespace: dtApps }, rules: hostRules("plain-devtunnel") }));
    expect(plain.message).toContain(unmarked("Role", "plain-devtunnel"));
  });

  it("let the host's Pods run only as its own ServiceAccount, with only its own token Secret, without the host", async () => {
    await dt.create(Core.Deployment, hostDeployment(N));
    await dt.patch(Core.Deployment, dtApps, N, { spec: { replicas: 1, template: { metadata: { annotations: { rolled: "yes" } } } } }, PatchType.merge);
    const account = "must belong to a Deployment named <tunnel>-devtunnel and run as the ServiceAccount named like it";
    const secrets = "may use no Secret but";
    const host = `Pods that ${BY} runs may not use the host`;
    const pod = (name: string, change: (p: ReturnType<typeof hostPod>) => Record<string, unknown>) => change(hostPod(name));
    const container = (p: ReturnType<typeof hostPod>, extra: Record<string, unknown>) => [{ ...p.containers[0], ...extra }];
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ["other-name", hostPod("other-name"), account],
      ["default-devtunnel", pod("default-devtunnel", ({ serviceAccountName: _, ...p }) => p), account],
      ["deployer-devtunnel", pod("deployer-devtunnel", (p) => ({ ...p, serviceAccountName: "deployer" })), account],
      ["projected-devtunnel", pod("projected-devtunnel", (p) => ({ ...p, volumes: [...p.volumes, { name: "t", projected: { sources: [{ serviceAccountToken: { path: "token", audience: "vault" } }] } }] })), account],
      ["secret-devtunnel", pod("secret-devtunnel", (p) => ({ ...p, volumes: [{ name: "token", secret: { secretName: "db-password" } }] })), secrets],
      ["psecret-devtunnel", pod("psecret-devtunnel", (p) => ({ ...p, volumes: [...p.volumes, { name: "p", projected: { sources: [{ secret: { name: "db-password" } }] } }] })), secrets],
      ["env-devtunnel", pod("env-devtunnel", (p) => ({ ...p, containers: container(p, { env: [{ name: "X", valueFrom: { secretKeyRef: { name: "db-password", key: "password" } } }] }) })), secrets],
      ["envfrom-devtunnel", pod("envfrom-devtunnel", (p) => ({ ...p, containers: container(p, { envFrom: [{ secretRef: { name: "db-password" } }] }) })), secrets],
      ["hostnet-devtunnel", pod("hostnet-devtunnel", (p) => ({ ...p, hostNetwork: true })), host],
      ["hostpath-devtunnel", pod("hostpath-devtunnel", (p) => ({ ...p, volumes: [...p.volumes, { name: "root", hostPath: { path: "/" } }] })), host],
      [
        "privileged-devtunnel",
        pod("privileged-devtunnel", (p) => ({ ...p, initContainers: [{ name: "init", image: "busybox", securityContext: { privileged: true } }] })),
        host,
      ],
    ];
    for (const [name, spec, message] of cases) {
      const refused = await refusal(dt.create(Core.Deployment, hostDeployment(name, spec)));
      expect(refused.status).toBe(403);
      expect(refused.message).toContain(`ValidatingAdmissionPolicy '${FULL}-host-pods'`);
      expect(refused.message).toContain(`Deployment ${dtApps}/${name}: `);
      expect(refused.message).toContain(message);
    }
    const plain = await refusal(dt.create(Core.Deployment, { ...hostDeployment("plain-devtunnel"), metadata: { name: "plain-devtunnel", namespace: dtApps } }));
    expect(plain.message).toContain(unmarked("Deployment", "plain-devtunnel"));
    await dt.delete(Core.Deployment, dtApps, N);
  });
});

// The edge-controller chart's policies, the same way. Its uplink objects are named
// <tunnel>-edge-uplink; the uplinks' Role is exactly get/list/watch on the route table and
// get/patch on the status ConfigMap; its uplinks are a StatefulSet whose Pods run as their own
// ServiceAccount, take no Secret but their own keys, and run as root with NET_ADMIN and no
// other capability (which the policy must allow: they configure WireGuard and nftables).
describe("the edge-controller chart's admission policies", () => {
  const EDGE = join(import.meta.dirname, "..", "..", "charts", "ktube", "charts", "edge-controller");
  const FULL = `${RELEASE}-edge-controller`;
  const BY = "ktube-edge-controller";
  const EDGE_MARK = { "app.kubernetes.io/managed-by": BY };
  const N = "home-edge-uplink";
  let edRelease: string;
  let edApps: string;
  let edInstalled: string;
  let ed: KubeClient;
  let home: KubeObject;
  const owned = () => ({ labels: EDGE_MARK, ownerReferences: ownedBy(home) });

  async function edTemplate(): Promise<string> {
    const args = ["template", RELEASE, EDGE, "--namespace", edRelease, ...TEMPLATES.flatMap((t) => ["--show-only", t])];
    const env = { ...process.env, HELM_CACHE_HOME: "/tmp/ktube-helm-cache", HELM_CONFIG_HOME: "/tmp/ktube-helm-config" };
    return (await run(helm, args, { maxBuffer: 32 * 1024 * 1024, env })).stdout;
  }
  const unmarked = (kind: string, name: string) =>
    `${kind} ${edApps}/${name} as ${BY} wrote it has no label app.kubernetes.io/managed-by=${BY} and no controller ownerReference to a ktube.dev Tunnel`;
  /** Shaped like the uplinks' Pods (manifests/uplink.ts): root with only NET_ADMIN, their own ServiceAccount and key Secret. */
  const uplinkPod = (name: string) => ({
    serviceAccountName: name,
    automountServiceAccountToken: true,
    securityContext: { runAsNonRoot: false, runAsUser: 0, runAsGroup: 0, seccompProfile: { type: "RuntimeDefault" } },
    volumes: [
      { name: "keys", secret: { secretName: name, defaultMode: 0o400 } },
      { name: "wireguard-run", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
    ],
    containers: [
      {
        name: "uplink",
        image: "ghcr.io/ktube-dev/edge-controller:0.1.0",
        args: ["connector"],
        env: [{ name: "KTUBE_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } }],
        volumeMounts: [
          { name: "keys", mountPath: "/etc/ktube/wireguard", readOnly: true },
          { name: "wireguard-run", mountPath: "/var/run/wireguard" },
        ],
        securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"], add: ["NET_ADMIN"] } },
      },
    ],
  });
  const uplinkStatefulSet = (name: string, pod: Record<string, unknown> = uplinkPod(name)) => ({
    metadata: { name, namespace: edApps, ...owned() },
    spec: { replicas: 2, serviceName: name, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: pod } },
  });
  const uplinkRules = (name: string) => [
    { apiGroups: [""], resources: ["configmaps"], resourceNames: [name], verbs: ["get", "list", "watch"] },
    { apiGroups: [""], resources: ["configmaps"], resourceNames: [`${name}-status`], verbs: ["get", "patch"] },
  ];

  beforeAll(async () => {
    edRelease = await createTestNamespace(kc, "ktube-edpolicy");
    edApps = await createTestNamespace(kc, "edpolicy-apps");
    edInstalled = await install(await edTemplate());
    ed = new KubeClient(await kubeConfigAs(kc, edRelease, FULL));
    home = await admin.create(TunnelResource, { metadata: { name: "home", namespace: edApps }, spec: { providerRef: { name: "unserved" } } });
    // Barrier, as above: once an unmarked ConfigMap is refused, policies, bindings and RBAC are in force.
    await eventually(async () => {
      const refused = await refusal(ed.request("POST", resourcePath(Core.ConfigMap, edApps), { body: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "barrier" } }, query: { dryRun: "All" } }));
      expect(refused.message).toContain(`ValidatingAdmissionPolicy '${FULL}-managed-objects'`);
    }, 60_000);
  }, 120_000);

  afterAll(async () => {
    if (edInstalled) await kubectl(["delete", "--ignore-not-found", "-f", "-"], await edTemplate());
    await deleteTestNamespace(kc, edApps);
    await deleteTestNamespace(kc, edRelease);
  });

  it("install with their bindings, bound to the chart's ServiceAccount, failing closed", async () => {
    for (const name of [`${FULL}-managed-objects`, `${FULL}-uplink-rbac`, `${FULL}-uplink-pods`]) {
      expect(edInstalled).toContain(`validatingadmissionpolicy.admissionregistration.k8s.io/${name} serverside-applied`);
      expect(edInstalled).toContain(`validatingadmissionpolicybinding.admissionregistration.k8s.io/${name} serverside-applied`);
      const policy = await admin.get<Policy>(PolicyResource, undefined, name);
      expect(policy.spec.failurePolicy).toBe("Fail");
      const seedExempt = `!(request.operation == 'CREATE' && request.kind.kind == 'Secret' && request.namespace == '${edRelease}' && request.name == 'ktube-edge-wireguard-seed')`;
      expect(policy.spec.matchConditions.map((c) => c.expression)).toEqual([
        `request.userInfo.username == 'system:serviceaccount:${edRelease}:${FULL}'`,
        ...(name.endsWith("-managed-objects") ? [seedExempt] : []),
      ]);
      const binding = await admin.get<PolicyBinding>(PolicyBindingResource, undefined, name);
      expect(binding.spec).toMatchObject({ policyName: name, validationActions: ["Deny"] });
    }
  });

  it("refuse unmarked ConfigMaps, ServiceAccounts, Secrets and PodDisruptionBudgets; take marked ones; never take over or unmark", async () => {
    const cases: Array<[typeof Core.ConfigMap, string, Record<string, unknown>]> = [
      [Core.ConfigMap, "ConfigMap", { data: { "routes.json": "{}" } }],
      [Core.ServiceAccount, "ServiceAccount", { automountServiceAccountToken: false }],
      [Core.Secret, "Secret", { stringData: { "uplink-0.key": "uplink-key" } }],
      [Core.PodDisruptionBudget, "PodDisruptionBudget", { spec: { maxUnavailable: 1, selector: { matchLabels: { app: N } } } }],
    ];
    for (const [type, kind, body] of cases) {
      const plain = await refusal(ed.create(type, { metadata: { name: "plain", namespace: edApps }, ...body }));
      expect(plain.status).toBe(403);
      expect(plain.message).toContain(unmarked(kind, "plain"));
      await ed.create(type, { metadata: { name: N, namespace: edApps, ...owned() }, ...body });
    }
    await admin.create(Core.ConfigMap, { metadata: { name: "someone-elses", namespace: edApps }, data: { a: "b" } });
    const takeOver = await refusal(ed.patch(Core.ConfigMap, edApps, "someone-elses", { metadata: owned() }, PatchType.merge));
    expect(takeOver.status).toBe(403);
    expect(takeOver.message).toContain(`ConfigMap ${edApps}/someone-elses is not managed by ${BY}`);
    const unmark = [{ op: "remove", path: "/metadata/labels/app.kubernetes.io~1managed-by" }];
    const unmarkedOwn = await refusal(ed.patch(Core.ConfigMap, edApps, N, unmark, PatchType.json));
    expect(unmarkedOwn.status).toBe(403);
    expect(unmarkedOwn.message).toContain(`ConfigMap ${edApps}/${N} as ${BY} wrote it has no label`);
    // Least privilege: no delete on ConfigMaps (the garbage collector removes them), no read of Secrets here
    // (tlsTermination is off), but its own PodDisruptionBudget it deletes itself.
    expect((await refusal(ed.delete(Core.ConfigMap, edApps, N))).message).toContain(`cannot delete resource "configmaps"`);
    expect((await refusal(ed.get(Core.Secret, edApps, N))).message).toContain(`cannot get resource "secrets" in API group "" in the namespace "${edApps}"`);
    await ed.delete(Core.PodDisruptionBudget, edApps, N);
  });

  it("let the controller make its WireGuard seed in its own namespace once, and nothing else unmarked there", async () => {
    const seed = { metadata: { name: "ktube-edge-wireguard-seed", namespace: edRelease, labels: { "app.kubernetes.io/managed-by": BY } }, data: { seed: Buffer.alloc(32, 1).toString("base64") } };
    await ed.create(Core.Secret, seed);
    const changed = await refusal(ed.patch(Core.Secret, edRelease, "ktube-edge-wireguard-seed", { data: { seed: Buffer.alloc(32, 2).toString("base64") } }, PatchType.merge));
    expect(changed.status).toBe(403);
    expect(changed.message).toContain(`Secret ${edRelease}/ktube-edge-wireguard-seed is not managed by ${BY}`);
    const other = await refusal(ed.create(Core.Secret, { ...seed, metadata: { ...seed.metadata, name: "another-seed" } }));
    expect(other.status).toBe(403);
    // The same name anywhere else is an ordinary unmarked Secret.
    const elsewhere = await refusal(ed.create(Core.Secret, { ...seed, metadata: { ...seed.metadata, namespace: edApps } }));
    expect(elsewhere.message).toContain(`Secret ${edApps}/ktube-edge-wireguard-seed as ${BY} wrote it has no controller ownerReference`);
  });

  it("allow a Role and RoleBinding only in the shape of the uplinks' own", async () => {
    const role = (name: string, rules: unknown[]) => ({ metadata: { name, namespace: edApps, ...owned() }, rules });
    const shape = `Role ${edApps}/${N}: a Role that ${BY} writes may only grant get, list and watch on the ConfigMap ${N} and get and patch on the ConfigMap ${N}-status`;
    const refusedRoles: Array<[string, unknown[], string]> = [
      // All ConfigMaps of the namespace (no resourceNames).
      [N, [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch"] }], shape],
      // Someone else's ConfigMap.
      [N, [{ apiGroups: [""], resources: ["configmaps"], resourceNames: ["kube-root-ca.crt"], verbs: ["get"] }], shape],
      // The route table is read-only for the uplinks; the status is get and patch only.
      [N, [{ apiGroups: [""], resources: ["configmaps"], resourceNames: [N], verbs: ["get", "patch"] }], shape],
      [N, [{ apiGroups: [""], resources: ["configmaps"], resourceNames: [`${N}-status`], verbs: ["get", "list", "watch", "patch"] }], shape],
      // Rights the controller holds but the uplinks need not (RBAC's escalation check would let these through).
      [N, [{ apiGroups: [""], resources: ["secrets"], resourceNames: [N], verbs: ["create", "patch"] }], shape],
      [N, [{ apiGroups: ["apps"], resources: ["statefulsets"], resourceNames: [N], verbs: ["get", "patch"] }], shape],
      // Only the uplinks' name.
      ["other", uplinkRules("other"), `Role ${edApps}/other: the Roles and RoleBindings that ${BY} writes are those of its uplinks (named <tunnel>-edge-uplink)`],
    ];
    for (const [name, rules, message] of refusedRoles) {
      const refused = await refusal(ed.create(Core.Role, role(name, rules)));
      expect(refused.status).toBe(403);
      expect(refused.message).toContain(`ValidatingAdmissionPolicy '${FULL}-uplink-rbac'`);
      expect(refused.message).toContain(message);
    }
    await ed.create(Core.Role, role(N, uplinkRules(N)));

    await expectOnlyTheConnectorsRoleBinding(ed, edApps, N, "other-edge-uplink", owned(), BY);
    const plain = await refusal(ed.create(Core.Role, { metadata: { name: "plain-edge-uplink", namespace: edApps }, rules: uplinkRules("plain-edge-uplink") }));
    expect(plain.message).toContain(unmarked("Role", "plain-edge-uplink"));
  });

  it("let the uplinks run as root with NET_ADMIN, but only as their own ServiceAccount, with only their own keys, no other capability and without the host", async () => {
    await ed.create(Core.StatefulSet, uplinkStatefulSet(N));
    await ed.patch(Core.StatefulSet, edApps, N, { spec: { replicas: 1, template: { metadata: { annotations: { rolled: "yes" } } } } }, PatchType.merge);
    const account = "must belong to a StatefulSet named <tunnel>-edge-uplink and run as the ServiceAccount named like it";
    const secrets = "may use no Secret but";
    const host = `Pods that ${BY} runs may not use the host`;
    const capability = "may add no capability but NET_ADMIN";
    const pod = (name: string, change: (p: ReturnType<typeof uplinkPod>) => Record<string, unknown>) => change(uplinkPod(name));
    const container = (p: ReturnType<typeof uplinkPod>, extra: Record<string, unknown>) => [{ ...p.containers[0], ...extra }];
    const adding = (p: ReturnType<typeof uplinkPod>, add: string[]) => container(p, { securityContext: { ...p.containers[0]!.securityContext, capabilities: { drop: ["ALL"], add } } });
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ["other-name", uplinkPod("other-name"), account],
      ["default-edge-uplink", pod("default-edge-uplink", ({ serviceAccountName: _, ...p }) => p), account],
      ["deployer-edge-uplink", pod("deployer-edge-uplink", (p) => ({ ...p, serviceAccountName: "deployer" })), account],
      ["projected-edge-uplink", pod("projected-edge-uplink", (p) => ({ ...p, volumes: [...p.volumes, { name: "t", projected: { sources: [{ serviceAccountToken: { path: "token", audience: "vault" } }] } }] })), account],
      // Not another Secret of the namespace.
      ["vps-edge-uplink", pod("vps-edge-uplink", (p) => ({ ...p, volumes: [{ name: "keys", secret: { secretName: "db-credentials" } }, p.volumes[1]] })), secrets],
      ["env-edge-uplink", pod("env-edge-uplink", (p) => ({ ...p, containers: container(p, { env: [{ name: "X", valueFrom: { secretKeyRef: { name: "db-password", key: "password" } } }] }) })), secrets],
      ["hostnet-edge-uplink", pod("hostnet-edge-uplink", (p) => ({ ...p, hostNetwork: true })), host],
      ["tun-edge-uplink", pod("tun-edge-uplink", (p) => ({ ...p, volumes: [...p.volumes, { name: "tun", hostPath: { path: "/dev/net/tun", type: "CharDevice" } }] })), host],
      ["privileged-edge-uplink", pod("privileged-edge-uplink", (p) => ({ ...p, containers: container(p, { securityContext: { privileged: true } }) })), host],
      ["sysadmin-edge-uplink", pod("sysadmin-edge-uplink", (p) => ({ ...p, containers: adding(p, ["NET_ADMIN", "SYS_ADMIN"]) })), capability],
      ["raw-edge-uplink", pod("raw-edge-uplink", (p) => ({ ...p, initContainers: [{ name: "init", image: "busybox", securityContext: { capabilities: { add: ["NET_RAW"] } } }] })), capability],
    ];
    for (const [name, spec, message] of cases) {
      const refused = await refusal(ed.create(Core.StatefulSet, uplinkStatefulSet(name, spec)));
      expect(refused.status).toBe(403);
      expect(refused.message).toContain(`ValidatingAdmissionPolicy '${FULL}-uplink-pods'`);
      expect(refused.message).toContain(`StatefulSet ${edApps}/${name}: `);
      expect(refused.message).toContain(message);
    }
    const plain = await refusal(ed.create(Core.StatefulSet, { ...uplinkStatefulSet("plain-edge-uplink"), metadata: { name: "plain-edge-uplink", namespace: edApps } }));
    expect(plain.message).toContain(unmarked("StatefulSet", "plain-edge-uplink"));
    // Deployments are not the edge controller's at all.
    expect((await refusal(ed.create(Core.Deployment, { ...uplinkStatefulSet(N), spec: { selector: { matchLabels: { app: N } }, template: { metadata: { labels: { app: N } }, spec: uplinkPod(N) } } }))).message).toContain(
      `cannot create resource "deployments"`,
    );
    // No delete: the garbage collector removes the uplinks after their Tunnel.
    expect((await refusal(ed.delete(Core.StatefulSet, edApps, N))).message).toContain(`cannot delete resource "statefulsets"`);
    await admin.delete(Core.StatefulSet, edApps, N);
  });
});
