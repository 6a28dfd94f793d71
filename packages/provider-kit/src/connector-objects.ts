// The Kubernetes side of a connector that KTube writes itself (ngrok agents, Dev Tunnels
// hosts): per Tunnel, a route-table ConfigMap the controller writes and the connector
// watches, a status ConfigMap each replica reports into under its pod's key, and a
// ServiceAccount whose Role allows exactly that, by name. Also how the controller reads
// the reports back: only those of pods that exist and are not going away count.
import { Core, type Tunnel } from "@ktube/api";
import type { KubeObject } from "@ktube/runtime";
import type { ProviderKit } from "./kit.ts";

/** The connector's environment: what its Deployment sets, what a local run sets by hand. */
export const CONNECTOR_ENV = {
  namespace: "KTUBE_NAMESPACE",
  routeTable: "KTUBE_ROUTE_TABLE",
  statusMap: "KTUBE_STATUS_CONFIGMAP",
  tunnelUid: "KTUBE_TUNNEL_UID",
  pod: "POD_NAME",
  probeAddress: "KTUBE_PROBE_ADDRESS",
  /** JSON `{"svc.ns.svc.cluster.local:80": "127.0.0.1:8080"}`: for a connector run outside its cluster. */
  upstreamOverrides: "KTUBE_UPSTREAM_OVERRIDES",
} as const;

export const ROUTE_TABLE_KEY = "routes.json";
export const CONNECTOR_PROBE_PORT = 8080;

/** Names and labels of one Tunnel's connector objects. */
export class ConnectorNames {
  readonly app: string;
  readonly tunnel: Tunnel;
  private readonly suffix: string;

  /** `app` names the connector (`ngrok-agent`, `devtunnels-host`); the objects are `<tunnel>-<suffix>`. */
  constructor(app: string, suffix: string, tunnel: Tunnel) {
    this.app = app;
    this.suffix = suffix;
    this.tunnel = tunnel;
  }

  get name(): string {
    return `${this.tunnel.metadata.name}-${this.suffix}`;
  }

  get statusName(): string {
    return `${this.name}-status`;
  }

  get labels(): Record<string, string> {
    return { "app.kubernetes.io/name": this.app, "app.kubernetes.io/instance": this.tunnel.metadata.name!, "ktube.dev/tunnel": this.tunnel.metadata.name! };
  }

  get selector(): Record<string, string> {
    return { "app.kubernetes.io/name": this.app, "app.kubernetes.io/instance": this.tunnel.metadata.name! };
  }

  meta(name = this.name) {
    return { name, namespace: this.tunnel.metadata.namespace!, labels: this.labels };
  }

  /** The env every connector container gets: where its table and status are, which pod it is. */
  env(): Array<Record<string, unknown>> {
    return [
      { name: CONNECTOR_ENV.namespace, valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
      { name: CONNECTOR_ENV.pod, valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      { name: CONNECTOR_ENV.routeTable, value: this.name },
      { name: CONNECTOR_ENV.statusMap, value: this.statusName },
      { name: CONNECTOR_ENV.tunnelUid, value: this.tunnel.metadata.uid! },
    ];
  }
}

/** The route table; `extra` keys are public data beside it (a CA certificate...). Never a secret. */
export function routeTableConfigMap(names: ConnectorNames, table: string, extra: Record<string, string> = {}): KubeObject {
  return { metadata: names.meta(), data: { [ROUTE_TABLE_KEY]: table, ...extra } } as KubeObject;
}

/** Made empty; each replica writes only its own key (the controller never sets `data`, so it never overwrites them). */
export const statusConfigMap = (names: ConnectorNames): KubeObject => ({ metadata: names.meta(names.statusName) }) as KubeObject;

export const connectorServiceAccount = (names: ConnectorNames): KubeObject => ({ metadata: names.meta(), automountServiceAccountToken: false }) as KubeObject;

/** Exactly what a replica does: watch its route table, patch its status. Nothing else. */
export function connectorRole(names: ConnectorNames): KubeObject {
  return {
    metadata: names.meta(),
    rules: [
      { apiGroups: [""], resources: ["configmaps"], resourceNames: [names.name], verbs: ["get", "list", "watch"] },
      { apiGroups: [""], resources: ["configmaps"], resourceNames: [names.statusName], verbs: ["get", "patch"] },
    ],
  } as KubeObject;
}

export function connectorRoleBinding(names: ConnectorNames): KubeObject {
  return {
    metadata: names.meta(),
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: names.name },
    subjects: [{ kind: "ServiceAccount", name: names.name, namespace: names.tunnel.metadata.namespace! }],
  } as KubeObject;
}

/** The kinds a Tunnel with a KTube-written connector owns. */
export const CONNECTOR_OWNED_KINDS = [Core.Deployment, Core.PodDisruptionBudget, Core.ConfigMap, Core.ServiceAccount, Core.Role, Core.RoleBinding];

/**
 * The controller's view of its connectors: their pods (a pod that appears or goes wakes its
 * Tunnel) and the reports of the live ones.
 */
export class ConnectorPods {
  private readonly selector: string;
  private readonly kit: ProviderKit<object>;

  constructor(kit: ProviderKit<object>, app: string) {
    this.kit = kit;
    this.selector = `app.kubernetes.io/name=${app}`;
  }

  /** Call from the plugin's setup. */
  register(): void {
    const pods = this.kit.manager.cache.informer(Core.Pod, { labelSelector: this.selector });
    const wake = (pod: KubeObject): void => {
      const tunnel = pod.metadata?.labels?.["ktube.dev/tunnel"];
      if (tunnel) this.kit.controllers.tunnel?.enqueue(`${pod.metadata!.namespace}/${tunnel}`);
    };
    pods.addHandler({ add: wake, delete: wake, update: (old, pod) => Boolean(old.metadata?.deletionTimestamp) !== Boolean(pod.metadata?.deletionTimestamp) && wake(pod) });
  }

  /** Pods of the tunnel's connector that exist and are not going away. */
  live(names: ConnectorNames): Set<string> {
    return new Set(
      this.kit.manager.cache
        .list(Core.Pod, { namespace: names.tunnel.metadata.namespace! }, { labelSelector: this.selector })
        .filter((p) => p.metadata?.labels?.["ktube.dev/tunnel"] === names.tunnel.metadata.name && !p.metadata?.deletionTimestamp)
        .map((p) => p.metadata!.name!),
    );
  }

  /** The live replicas' reports, parsed by `parse` (undefined: not a report). */
  reports<R>(names: ConnectorNames, statusMap: (KubeObject & { data?: Record<string, string> }) | undefined, parse: (text: string) => R | undefined): Map<string, R> {
    const live = this.live(names);
    const reports = new Map<string, R>();
    for (const [pod, text] of Object.entries(statusMap?.data ?? {})) {
      const report = live.has(pod) ? parse(text) : undefined;
      if (report !== undefined) reports.set(pod, report);
    }
    return reports;
  }
}
