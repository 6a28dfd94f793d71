// The self-hosted edge in `npm start`'s local demo: what examples/edge.yaml needs around it,
// made on this machine from the edge controller's own test parts. A VPS (testenv's: a real
// sshd alone in a network namespace, with fake-envoy offered for download as "Envoy"); a
// cluster node's network joined to it (testenv's EdgeCluster: the node's namespace, a
// namespace per uplink Pod, and a kube-proxy stand-in that DNATs the Services' real cluster
// IPs); and on the node, a backend for each of the example binding's routes as that route
// expects it. The Secrets the example names exist, and a copy of the example with this VPS's
// address, SSH port and Envoy download filled in is written for `kubectl apply`.
//
// The LocalKubelet runs the uplink StatefulSet's Pods in their namespaces (`networkNamespace`,
// `podEnv`), so packets take the real path: a client here -> the VPS's Envoy -> WireGuard ->
// an uplink Pod's nftables -> the node's Service DNAT -> the backend.
import { CoreV1Api, type KubeConfig, type V1Pod, type V1Service } from "@kubernetes/client-node";
import { createTestCa, EdgeCluster, type BackendSpec } from "@ktube/testenv";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { parseAllDocuments } from "yaml";
import { UPLINK_ENV } from "../apps/edge-controller/src/manifests/uplink.ts";
import { startEdgeVps, type EdgeVps } from "../apps/edge-controller/test/provider/edge-vps.ts";

/** The `app.kubernetes.io/name` of the uplink StatefulSet and its Pods (apps/edge-controller/src/manifests/uplink.ts). */
export const EDGE_UPLINK_APP = "edge-uplink";

/** What one route of the example's binding says (the fields this demo reads). */
interface Route {
  name: string;
  protocol: "TCP" | "UDP" | "TLS";
  hostname?: string;
  listenPort?: number;
  proxyProtocol?: "v1" | "v2";
  tls?: { mode: "passthrough" | "offload" | "mutual"; secretRef?: { name: string } };
  service?: { name: string; port: string | number };
  address?: { ip: string; port: number };
}

export interface EdgeDemo {
  /** The copy of examples/edge.yaml to apply. */
  manifest: string;
  /** The VPS's public address, and where its host key and Envoy came from. */
  vpsAddress: string;
  /** The network namespaces it made (the VPS's, the node's; Pods' are `<node prefix>-p<n>`). */
  vpsNamespace: string;
  nodeNamespace: string;
  /** The demo CA's certificate: it signed the backends' and the offload Secrets' certificates. */
  caFile: string;
  /** How to reach each route from this machine, as shell lines (comments start with #). */
  tryIt: string[];
  /** LocalKubelet's `networkNamespace`: the uplinks' Pods get one of their own, joined to the node. */
  networkNamespace(pod: V1Pod): string | undefined;
  /** LocalKubelet's `podEnv` for the uplinks: a WireGuard interface name of each process's own (wireguard-go's sockets are shared by every namespace). */
  podEnv(pod: V1Pod): Record<string, string>;
  /** Removes everything: the namespaces with every process in them (sshd, Envoy, wireguard-go, uplinks, backends), the files. */
  stop(): Promise<void>;
}

const TOOLS: Array<[tool: string, pkg: string]> = [
  ["sshd", "openssh-server"],
  ["ssh-keygen", "openssh-client"],
  ["wireguard-go", "wireguard-go"],
  ["wg", "wireguard-tools"],
  ["nft", "nftables"],
  ["openssl", "openssl"],
];

const onPath = (tool: string): boolean =>
  [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin"].some((dir) => dir && existsSync(join(dir, tool)));

/** Why this machine cannot run the edge demo, or undefined when it can: root, network namespaces, and the tools. */
export function edgeDemoUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "it needs root (network namespaces, veth pairs, nftables and a real sshd as the VPS)";
  const probe = `ktube-probe-${process.pid}`;
  try {
    execFileSync("ip", ["netns", "add", probe], { stdio: "ignore" });
    execFileSync("ip", ["netns", "del", probe], { stdio: "ignore" });
  } catch {
    return "this machine cannot make network namespaces (`ip netns add` failed; iproute2 missing, or a sandbox without them)";
  }
  const missing = TOOLS.filter(([tool]) => !onPath(tool));
  if (missing.length > 0) return `it needs ${missing.map(([tool]) => tool).join(", ")}: apt-get install -y ${[...new Set(missing.map(([, pkg]) => pkg))].join(" ")}`;
  return undefined;
}

/** The Service port a route names (by name or number). */
function servicePort(service: V1Service, port: string | number): number {
  const found = service.spec?.ports?.find((p) => p.name === port || p.port === port);
  if (!found) throw new Error(`Service ${service.metadata?.namespace}/${service.metadata?.name} has no port ${port}`);
  return found.port;
}

/** What a route's backend speaks: TLS passthrough reaches a backend with its own certificate, PROXY v2 one that reads the header. */
function backendKind(route: Route): BackendSpec["kind"] {
  if (route.protocol === "UDP") return "udp";
  if (route.protocol === "TLS" && route.tls?.mode === "passthrough") return "https";
  if (route.proxyProtocol === "v2") return "proxy";
  return route.protocol === "TLS" ? "http" : "tcp";
}

/** A comment and a command that reach one route from this machine, saying honestly what answers (see testenv's edge-backends.ts). */
function howToReach(route: Route, at: { vps: string; port: number; via: string; namespace: string; caFile: string }): [string, string] {
  const { vps, port, via } = at;
  const host = route.hostname ?? "";
  const url = `https://${host}${port === 443 ? "" : `:${port}`}/`;
  switch (backendKind(route)) {
    case "https":
      return [`# ${route.name}: ${url} (TLS passed through by SNI to ${via}, which shows its own certificate):`, `curl --resolve ${host}:${port}:${vps} --cacert ${at.caFile} ${url}`];
    case "http":
      return [`# ${route.name}: ${url} (TLS ended on the VPS with ${at.namespace}/${route.tls?.secretRef?.name}, then plain HTTP to ${via}):`, `curl --resolve ${host}:${port}:${vps} --cacert ${at.caFile} ${url}`];
    case "proxy":
      return [`# ${route.name}: tcp://${vps}:${port} to ${via}, which reads the PROXY v2 header and answers with the client address in it (yours):`, `curl -s --max-time 2 telnet://${vps}:${port} </dev/null`];
    case "udp":
      return [
        `# ${route.name}: udp://${vps}:${port} to ${via}, which answers each datagram:`,
        onPath("nc") ? `echo hello | nc -u -w1 ${vps} ${port}` : `bash -c 'exec 3<>/dev/udp/${vps}/${port}; echo hello >&3; timeout 2 head -n1 <&3'`,
      ];
    default:
      return [`# ${route.name}: tcp://${vps}:${port} to ${via}, which greets and answers each line (curl stops after 2 s):`, `echo hello | curl -s --max-time 2 telnet://${vps}:${port}`];
  }
}

/**
 * Starts the VPS, the node and the backends, creates the Secrets examples/edge.yaml names
 * (the SSH one in `controllerNamespace`), and writes the example's local copy. The example's
 * namespaces and Services exist already.
 */
export async function startEdgeDemo(kc: KubeConfig, options: { example: string; controllerNamespace: string }): Promise<EdgeDemo> {
  const core = kc.makeApiClient(CoreV1Api);
  const scratch = mkdtempSync(join(tmpdir(), "ktube-edge-demo-"));
  let edge: EdgeVps | undefined;
  let cluster: EdgeCluster | undefined;
  let stopped = false;
  const stop = async (): Promise<void> => {
    stopped = true;
    await cluster?.stop();
    await edge?.stop();
    rmSync(scratch, { recursive: true, force: true });
  };
  try {
    edge = await startEdgeVps();
    cluster = new EdgeCluster(edge.vps);
    const vps = edge.vps;

    // The example, with this VPS in it.
    const documents = parseAllDocuments(readFileSync(options.example, "utf8"));
    const kind = (k: string) => {
      const doc = documents.find((d) => d.get("kind") === k);
      if (!doc) throw new Error(`${options.example} has no ${k}`);
      return doc;
    };
    const provider = kind("TunnelProvider");
    provider.setIn(["spec", "edge", "envoy", "url"], edge.envoy.url);
    provider.setIn(["spec", "edge", "envoy", "sha256"], edge.envoy.sha256);
    const tunnel = kind("Tunnel");
    tunnel.setIn(["spec", "edge", "address"], vps.address);
    tunnel.setIn(["spec", "edge", "ssh", "port"], vps.port);
    const manifest = join(scratch, "edge.yaml");
    const header = `# examples/edge.yaml for npm start's local VPS: its address (${vps.address}), SSH port and Envoy download (fake-envoy) filled in.\n`;
    writeFileSync(manifest, header + documents.map((d) => d.toString({ lineWidth: 0 })).join(""));

    // The SSH Secret the provider names: the VPS's client key and its pinned host key.
    const sshSecret = String(provider.getIn(["spec", "edge", "sshSecretRef", "name"]));
    const ssh = edge.target();
    await core.createNamespacedSecret({ namespace: options.controllerNamespace, body: { metadata: { name: sshSecret }, stringData: { privateKey: ssh.privateKey, knownHosts: ssh.knownHosts } } });

    // A backend for each route, where the route's Service (its real cluster IP) or raw address leads on the node.
    const binding = kind("TunnelBinding");
    const namespace = String(binding.getIn(["metadata", "namespace"]));
    const routes = (binding.toJS() as { spec: { routes: Route[] } }).spec.routes;
    const ca = await createTestCa(scratch, "ktube-demo-edge-ca");
    const caFile = join(scratch, "ktube-demo-edge-ca.crt");
    const certificateFiles = async (hostname: string): Promise<{ cert: string; key: string }> => {
      const issued = await ca.issue(hostname, { dnsNames: [hostname] });
      const files = { cert: join(scratch, `${hostname}.crt`), key: join(scratch, `${hostname}.key`) };
      writeFileSync(files.cert, issued.cert);
      writeFileSync(files.key, issued.key, { mode: 0o600 });
      return files;
    };
    const backends: BackendSpec[] = [];
    const tryIt: string[] = [];
    for (const route of routes) {
      const kindOf = backendKind(route);
      let target: { ip: string; port: number; name: string };
      if (route.service) {
        const service = await core.readNamespacedService({ namespace, name: route.service.name });
        target = { ip: service.spec!.clusterIP!, port: servicePort(service, route.service.port), name: route.service.name };
      } else if (route.address) {
        target = { ...route.address, name: route.name };
      } else continue;
      const hostname = route.hostname ?? "";
      if (backends.some((b) => b.port === target.port && (b.kind === "udp") === (kindOf === "udp"))) throw new Error(`two routes of ${options.example} lead to port ${target.port}: the demo has one backend per port`);
      backends.push({ kind: kindOf, port: target.port, name: target.name, ...(kindOf === "https" ? await certificateFiles(hostname) : {}) });
      cluster.addService({ protocol: kindOf === "udp" ? "udp" : "tcp", clusterIP: target.ip, port: target.port, backendPort: target.port });
      // The edge's certificate for an offloaded hostname: a TLS Secret in the binding's namespace.
      if (route.tls && route.tls.mode !== "passthrough" && route.tls.secretRef) {
        const issued = await ca.issue(hostname, { dnsNames: [hostname] });
        await core.createNamespacedSecret({
          namespace,
          body: { metadata: { name: route.tls.secretRef.name }, type: "kubernetes.io/tls", stringData: { "tls.crt": issued.cert, "tls.key": issued.key, ...(route.tls.mode === "mutual" ? { "ca.crt": ca.cert } : {}) } },
        });
      }
      const via = route.service ? `${namespace}/${route.service.name}:${route.service.port}` : `${target.ip}:${target.port}`;
      tryIt.push(...howToReach(route, { vps: vps.address, port: route.listenPort ?? (route.protocol === "TLS" ? 443 : target.port), via, namespace, caFile }));
    }
    await cluster.startBackends(backends);

    let interfaces = 0;
    const isUplink = (pod: V1Pod): boolean => pod.metadata?.labels?.["app.kubernetes.io/name"] === EDGE_UPLINK_APP;
    const node = cluster;
    return {
      manifest,
      vpsAddress: vps.address,
      vpsNamespace: vps.namespace,
      nodeNamespace: node.node,
      caFile,
      tryIt,
      networkNamespace(pod) {
        if (!isUplink(pod)) return undefined;
        // Never the machine's own namespace for an uplink (it rewrites its namespace's nftables).
        if (stopped) throw new Error(`the edge's node is gone: not starting ${pod.metadata?.name}`);
        return node.podNamespace(pod);
      },
      podEnv: (pod): Record<string, string> => (isUplink(pod) ? { [UPLINK_ENV.iface]: `ku${node.group.id}${interfaces++}` } : {}),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
