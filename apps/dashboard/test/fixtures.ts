// Two users of different rights, as ServiceAccounts with TokenRequest tokens, and helpers to
// write KTube objects (and their status, as a controller would) with the admin kubeconfig.
import { CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { createTestNamespace, kubeConfigAs, kubectl } from "@ktube/testenv";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";

export interface Users {
  /** Cluster-wide rights on ktube.dev, events and namespaces. */
  adminToken: string;
  adminName: string;
  /** Edits bindings only in `editorNamespace`. */
  editorToken: string;
  editorName: string;
  editorNamespace: string;
  /** A namespace only the admin can see. */
  otherNamespace: string;
}

async function apply(yaml: string): Promise<void> {
  const result = await kubectl(["apply", "-f", "-"], yaml);
  if (result.code !== 0) throw new Error(`kubectl apply failed: ${result.stderr}`);
}

export async function createUsers(kc: KubeConfig, prefix: string): Promise<Users> {
  const editorNamespace = await createTestNamespace(kc, `${prefix}-team`);
  const otherNamespace = await createTestNamespace(kc, `${prefix}-other`);
  const adminNamespace = await createTestNamespace(kc, `${prefix}-admin`);
  const role = `${adminNamespace}-ktube-admin`;
  await apply(`
apiVersion: v1
kind: ServiceAccount
metadata: { name: admin, namespace: ${adminNamespace} }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: editor, namespace: ${editorNamespace} }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: ${role} }
rules:
- { apiGroups: [ktube.dev], resources: ["*"], verbs: ["*"] }
- { apiGroups: [events.k8s.io], resources: [events], verbs: [get, list, watch] }
- { apiGroups: [""], resources: [namespaces], verbs: [get, list, watch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: ${role} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ${role} }
subjects: [{ kind: ServiceAccount, name: admin, namespace: ${adminNamespace} }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: ktube-editor, namespace: ${editorNamespace} }
rules:
- { apiGroups: [ktube.dev], resources: [tunnelbindings], verbs: [get, list, watch, create, delete] }
- { apiGroups: [ktube.dev], resources: [tunnels], verbs: [get, list, watch] }
- { apiGroups: [events.k8s.io], resources: [events], verbs: [get, list, watch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: ktube-editor, namespace: ${editorNamespace} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: ktube-editor }
subjects: [{ kind: ServiceAccount, name: editor, namespace: ${editorNamespace} }]
`);
  const token = async (ns: string, sa: string) => (await kubeConfigAs(kc, ns, sa)).getCurrentUser()!.token!;
  return {
    adminToken: await token(adminNamespace, "admin"),
    adminName: `system:serviceaccount:${adminNamespace}:admin`,
    editorToken: await token(editorNamespace, "editor"),
    editorName: `system:serviceaccount:${editorNamespace}:editor`,
    editorNamespace,
    otherNamespace,
  };
}

const group = "ktube.dev";
const version = "v1alpha1";

/** A TunnelProvider and a Tunnel for bindings in `namespace` to reference. */
export async function createTunnel(kc: KubeConfig, namespace: string, name: string): Promise<void> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const provider = `${namespace}-cf`;
  await api.createClusterCustomObject({
    group, version, plural: "tunnelproviders",
    body: { apiVersion: `${group}/${version}`, kind: "TunnelProvider", metadata: { name: provider }, spec: { type: "cloudflare", cloudflare: { accountId: "0123456789abcdef0123456789abcdef", apiTokenSecretRef: { name: "cf", key: "token" } } } },
  });
  await api.createNamespacedCustomObject({
    group, version, namespace, plural: "tunnels",
    body: { apiVersion: `${group}/${version}`, kind: "Tunnel", metadata: { name, namespace }, spec: { providerRef: { name: provider }, cloudflare: { replicas: 1 } } },
  });
}

export async function createBinding(kc: KubeConfig, namespace: string, name: string, tunnel: string, hostname = `${name}.example.com`): Promise<{ uid: string; generation: number }> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const created = (await api.createNamespacedCustomObject({
    group, version, namespace, plural: "tunnelbindings",
    body: {
      apiVersion: `${group}/${version}`, kind: "TunnelBinding", metadata: { name, namespace },
      spec: { tunnelRef: { name: tunnel }, routes: [{ name: "web", protocol: "HTTP", hostname, service: { name: "web", port: 80 } }] },
    },
  })) as { metadata: { uid: string; generation: number } };
  return created.metadata;
}

/** Writes a binding's status the way a controller does (status subresource, observedGeneration). */
export async function setBindingStatus(kc: KubeConfig, namespace: string, name: string, ready: boolean, url: string, reason = ready ? "Ready" : "Pending"): Promise<void> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const current = (await api.getNamespacedCustomObject({ group, version, namespace, plural: "tunnelbindings", name })) as { metadata: { generation: number; resourceVersion: string } };
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const generation = current.metadata.generation;
  await api.replaceNamespacedCustomObjectStatus({
    group, version, namespace, plural: "tunnelbindings", name,
    body: {
      apiVersion: `${group}/${version}`, kind: "TunnelBinding",
      metadata: { name, namespace, resourceVersion: current.metadata.resourceVersion },
      status: {
        observedGeneration: generation,
        conditions: [
          { type: "Accepted", status: "True", reason: "Accepted", message: "accepted", observedGeneration: generation, lastTransitionTime: now },
          { type: "Ready", status: ready ? "True" : "False", reason, message: ready ? "all routes are served" : "waiting for the tunnel", observedGeneration: generation, lastTransitionTime: now },
        ],
        routes: [{ name: "web", url, ready }],
      },
    },
  });
}

/** The test API server as the dashboard sees it: URL and CA only, never the admin's credentials. */
export function dashboardApiServer(kc: KubeConfig): { url: string; ca: string } {
  const cluster = kc.getCurrentCluster()!;
  const ca = cluster.caData ? Buffer.from(cluster.caData, "base64").toString("utf8") : readFileSync(cluster.caFile!, "utf8");
  return { url: cluster.server, ca };
}

/** Reads Server-Sent Events from a streaming response body until `until` accepts one. */
export class SseReader {
  private buffer = "";
  /** Comment lines seen so far (heartbeats). */
  readonly comments: string[] = [];
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();

  constructor(body: ReadableStream<Uint8Array>) {
    this.reader = body.getReader();
  }

  async next(): Promise<{ event: string; data: string } | undefined> {
    for (;;) {
      const end = this.buffer.indexOf("\n\n");
      if (end >= 0) {
        const block = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        const lines = block.split("\n");
        if (lines.every((l) => l.startsWith(":"))) {
          this.comments.push(...lines.map((l) => l.slice(1).trim()));
          continue;
        }
        const event = lines.find((l) => l.startsWith("event:"))?.slice(6).trim() ?? "message";
        const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        return { event, data };
      }
      const { value, done } = await this.reader.read();
      if (done) return undefined;
      this.buffer += this.decoder.decode(value, { stream: true });
    }
  }

  async until(event: string): Promise<{ event: string; data: string }> {
    for (;;) {
      const next = await this.next();
      if (!next) throw new Error(`the stream ended before a "${event}" event`);
      if (next.event === event) return next;
    }
  }

  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => undefined);
  }
}

/** An events.k8s.io/v1 Event as KTube's EventRecorder writes it (microsecond eventTime). */
export async function recordEvent(namespace: string, regarding: { kind: string; name: string; uid: string }, type: "Normal" | "Warning", reason: string, note: string): Promise<void> {
  const event = {
    apiVersion: "events.k8s.io/v1",
    kind: "Event",
    metadata: { name: `${regarding.name}.${randomBytes(8).toString("hex")}`, namespace },
    eventTime: new Date().toISOString().replace("Z", "000Z"),
    reportingController: "ktube.dev/test",
    reportingInstance: "test",
    action: "Reconcile",
    type,
    reason,
    note,
    regarding: { apiVersion: "ktube.dev/v1alpha1", namespace, ...regarding },
  };
  const result = await kubectl(["create", "-f", "-"], JSON.stringify(event));
  if (result.code !== 0) throw new Error(`kubectl create event failed: ${result.stderr}`);
}
