// The cluster side of an edge (the edge controller's data-path tests, and `npm start`'s local
// demo of examples/edge.yaml), in network namespaces of its own:
//
//   test process (the client, on the internet)
//        │ veth (testenv's VPS link)
//   VPS namespace: sshd, Envoy (fake-envoy), WireGuard ─── veth "internet" ───┐
//                                                                             │
//   node namespace: routes Pods to the VPS (masqueraded, as a node's egress), ┘
//        │           a kube-proxy stand-in (each Service's cluster IP and port
//        │           DNATed to its backend), the backends on an address of its own
//        ├── veth ── Pod namespace (uplink 0)
//        └── veth ── Pod namespace (uplink 1) …
//
// So a packet from the client goes through the VPS's Envoy, down the real WireGuard
// tunnel of one uplink Pod, through that Pod's nftables DNAT and masquerade, and through
// the node's Service proxy to a backend, as it would in a cluster.
import type { V1Pod } from "@kubernetes/client-node";
import { fileURLToPath } from "node:url";
import { TestProcess } from "./ktube-objects.ts";
import { NetnsGroup } from "./netns.ts";
import type { Vps } from "./vps.ts";

const BACKENDS = fileURLToPath(new URL("./edge-backends.ts", import.meta.url));

/** One server of `startBackends` (edge-backends.ts says what each kind answers); `cert` and `key` are files, for tls and https. */
export interface BackendSpec {
  kind: "tcp" | "udp" | "tls" | "proxy" | "http" | "https";
  port: number;
  name: string;
  cert?: string;
  key?: string;
}

export interface ServiceRoute {
  protocol: "tcp" | "udp";
  /** A Service's cluster IP, or any address the node's network should answer for (a raw target). */
  clusterIP: string;
  port: number;
  backendPort: number;
}

export class EdgeCluster {
  readonly group = new NetnsGroup();
  readonly node: string;
  /** Where the backends listen, in the node's namespace. */
  readonly backendAddress: string;
  private readonly octet: number;
  private readonly pods = new Map<string, string>();
  private podCount = 0;
  private readonly services: ServiceRoute[] = [];
  private readonly processes: TestProcess[] = [];

  constructor(vps: Vps) {
    const { group } = this;
    this.octet = parseInt(group.id, 16) % 250;
    this.backendAddress = `10.223.${this.octet}.1`;
    this.node = group.add("node");
    const [nodeLink, vpsLink] = [`kt${group.id}in`, `kt${group.id}iv`];
    const link = { vps: `10.221.${this.octet}.1`, node: `10.221.${this.octet}.2` };
    group.sh(
      [
        `ip link add ${nodeLink} netns ${this.node} type veth peer name ${vpsLink} netns ${vps.namespace}`,
        `ip -n ${vps.namespace} addr add ${link.vps}/30 dev ${vpsLink}`,
        `ip -n ${vps.namespace} link set ${vpsLink} up`,
        `ip -n ${this.node} addr add ${link.node}/30 dev ${nodeLink}`,
        `ip -n ${this.node} link set ${nodeLink} up`,
        // The VPS's public address is reached over the "internet" link.
        `ip -n ${this.node} route add ${vps.address}/32 via ${link.vps}`,
        `ip -n ${this.node} addr add ${this.backendAddress}/32 dev lo`,
        `ip netns exec ${this.node} sysctl -qw net.ipv4.ip_forward=1`,
      ].join("\n"),
    );
    this.applyNodeRules(nodeLink);
  }

  /** The network namespace of a Pod (LocalKubelet's `networkNamespace`): made on first use, joined to the node. */
  podNamespace(pod: V1Pod): string {
    const name = pod.metadata!.name!;
    const existing = this.pods.get(name);
    if (existing) return existing;
    const k = this.podCount++;
    if (k > 60) throw new Error("EdgeCluster: at most 60 Pods");
    const namespace = this.group.add(`p${k}`);
    const [nodeIp, podIp] = [`10.222.${this.octet}.${4 * k + 1}`, `10.222.${this.octet}.${4 * k + 2}`];
    this.group.sh(
      [
        `ip link add kt${this.group.id}p${k} netns ${this.node} type veth peer name eth0 netns ${namespace}`,
        `ip -n ${this.node} addr add ${nodeIp}/30 dev kt${this.group.id}p${k}`,
        `ip -n ${this.node} link set kt${this.group.id}p${k} up`,
        `ip -n ${namespace} addr add ${podIp}/30 dev eth0`,
        `ip -n ${namespace} link set eth0 up`,
        `ip -n ${namespace} route add default via ${nodeIp}`,
      ].join("\n"),
    );
    this.pods.set(name, namespace);
    return namespace;
  }

  /** A Pod's address (what a backend sees as the peer when that Pod's uplink forwarded the connection). */
  podAddress(pod: string): string {
    const namespace = this.pods.get(pod);
    if (!namespace) throw new Error(`no Pod ${pod}`);
    return /inet (\S+)\//.exec(this.group.exec(namespace, "ip", ["-4", "-o", "addr", "show", "dev", "eth0"]))![1]!;
  }

  /** The Pod's node dies with it: every process in its namespace SIGKILLed, the namespace and its link gone. */
  killPod(pod: string): void {
    const namespace = this.pods.get(pod);
    if (!namespace) throw new Error(`no Pod ${pod}`);
    this.group.remove(namespace);
    this.pods.delete(pod);
  }

  /** Runs a command in a Pod's namespace. */
  inPod(pod: string, command: string, args: string[]): string {
    return this.group.exec(this.pods.get(pod)!, command, args);
  }

  /** kube-proxy's part for one Service port. */
  addService(route: ServiceRoute): void {
    this.services.push(route);
    this.applyNodeRules(`kt${this.group.id}in`);
  }

  async startBackends(specs: BackendSpec[]): Promise<TestProcess> {
    const backends = this.group.spawn(this.node, process.execPath, ["--disable-warning=ExperimentalWarning", BACKENDS, this.backendAddress, JSON.stringify(specs)]);
    this.processes.push(backends);
    const deadline = Date.now() + 10_000;
    while (!backends.output.includes("listening")) {
      if (!backends.running || Date.now() > deadline) throw new Error(`the backends did not start: ${backends.output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return backends;
  }

  async stop(): Promise<void> {
    for (const p of this.processes) await p.kill();
    await this.group.stop();
  }

  private applyNodeRules(internet: string): void {
    const dnat = this.services.map((s) => `    ip daddr ${s.clusterIP} ${s.protocol} dport ${s.port} dnat to ${this.backendAddress}:${s.backendPort}`);
    const ruleset = [
      "table ip node",
      "delete table ip node",
      "table ip node {",
      "  chain prerouting {",
      "    type nat hook prerouting priority dstnat; policy accept;",
      ...dnat,
      "  }",
      "  chain postrouting {",
      "    type nat hook postrouting priority srcnat; policy accept;",
      `    oifname "${internet}" masquerade`,
      "  }",
      "}",
      "",
    ].join("\n");
    this.group.exec(this.node, "nft", ["-f", "-"], ruleset);
  }
}
