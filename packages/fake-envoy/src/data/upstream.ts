// A cluster as the data path uses it: its hosts with their health, Envoy's active HTTP/TCP
// health checks, round-robin choice among healthy hosts with the panic threshold, and the
// transport socket (raw or PROXY protocol) each connection to a host gets.
//
// Health, as Envoy's HealthCheckerImplBase: with health checks, a host starts with
// FAILED_ACTIVE_HC and the first successful check makes it healthy; afterwards
// `unhealthy_threshold` consecutive failures take it out and `healthy_threshold` consecutive
// successes bring it back. An HTTP check is `GET <path>` with `Host: <host or cluster name>`,
// healthy on 200 (Envoy's default expected_statuses [200, 201)); a TCP check is a connect.
// Checks go to `health_check_config.port_value` when set. A check that does not answer within
// `timeout` is a network failure.
//
// Stats (Envoy's names): `cluster.<name>.health_check.{attempt,success,failure,network_failure,healthy}`,
// `cluster.<name>.membership_{healthy,total,degraded,excluded}`,
// `cluster.<name>.upstream_cx_{total,active,connect_fail,none_healthy}`.
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import type { JsonObject } from "@ktube/envoy-validator";
import type { ActiveCluster, ClusterEndpoint } from "../clusters/cluster-manager.ts";
import { durationSeconds } from "../config/spec.ts";
import type { HealthCheck } from "../config/subset.ts";
import { SOURCE, type EnvoyLogger } from "../log.ts";
import type { StatsScope } from "../stats/store.ts";
import { proxyProtocolHeader, type ProxiedAddresses } from "./proxy-protocol.ts";

type UpstreamTransport = NonNullable<ActiveCluster["config"]["transport_socket"]>;

export interface Host {
  endpoint: ClusterEndpoint;
  healthy: boolean;
  successes: number;
  failures: number;
  /** A check has completed once (the first success makes a new host healthy at once). */
  everChecked: boolean;
  /** For /clusters. */
  active: number;
  total: number;
  connectFail: number;
}

/** The PROXY protocol version a transport socket writes, if any. */
function proxyVersion(socket: UpstreamTransport | undefined): "V1" | "V2" | undefined {
  if (!socket || socket.type !== "envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport") return undefined;
  const config = socket.config as { config?: { version?: "V1" | "V2" } };
  return config.config?.version ?? "V1";
}

/** Envoy's metadataLabelMatch: every key of `match` equal in `metadata`. */
function labelsMatch(match: JsonObject, metadata: JsonObject | undefined): boolean {
  return Object.entries(match).every(([key, value]) => metadata !== undefined && JSON.stringify(metadata[key]) === JSON.stringify(value));
}

export class UpstreamCluster {
  readonly cluster: ActiveCluster;
  readonly hosts: Host[];
  private next = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  readonly stats: StatsScope;
  private readonly log: EnvoyLogger;
  private closed = false;

  /** `previous`: the cluster this one replaces; hosts it had at the same address keep their health (Envoy warms a replaced cluster before it takes over, so traffic sees no gap). */
  constructor(cluster: ActiveCluster, stats: StatsScope, log: EnvoyLogger, previous?: UpstreamCluster) {
    this.cluster = cluster;
    this.stats = stats;
    this.log = log;
    const checked = (cluster.config.health_checks ?? []).length > 0;
    this.hosts = cluster.endpoints.map((endpoint) => {
      const before = previous?.hosts.find((host) => host.endpoint.address.text === endpoint.address.text);
      const healthy = checked ? (before?.healthy ?? false) : true;
      return { endpoint, healthy, successes: 0, failures: 0, everChecked: before?.everChecked ?? false, active: 0, total: 0, connectFail: 0 };
    });
    for (const name of ["upstream_cx_total", "upstream_cx_connect_fail", "upstream_cx_none_healthy"]) stats.counter(name);
    stats.gauge("upstream_cx_active");
    if (checked) for (const name of ["attempt", "success", "failure", "network_failure"]) stats.counter(`health_check.${name}`);
    this.updateGauges();
    for (const check of cluster.config.health_checks ?? []) {
      for (const host of this.hosts) this.schedule(check, host, 0);
    }
  }

  /** A host for a new connection, or undefined (no healthy host and not in panic). */
  pick(): Host | undefined {
    if (this.hosts.length === 0) return undefined;
    const healthy = this.hosts.filter((host) => host.healthy);
    const panic = this.cluster.config.common_lb_config?.healthy_panic_threshold?.value ?? 50;
    const candidates = (healthy.length * 100) / this.hosts.length < panic ? this.hosts : healthy;
    if (candidates.length === 0) return undefined;
    return candidates[this.next++ % candidates.length];
  }

  /** The transport socket for connections to `host` (criteria: a health check's transport_socket_match_criteria). */
  transportFor(metadata: JsonObject | undefined): UpstreamTransport | undefined {
    for (const match of this.cluster.config.transport_socket_matches ?? []) {
      if (labelsMatch(match.match ?? {}, metadata)) return match.transport_socket;
    }
    return this.cluster.config.transport_socket;
  }

  /** The PROXY header a data connection to `host` starts with, for this downstream connection. */
  proxyHeader(host: Host, addresses: ProxiedAddresses, transport: "stream" | "dgram" = "stream"): Buffer | undefined {
    const version = proxyVersion(this.transportFor(host.endpoint.transportSocketMatch));
    return version ? proxyProtocolHeader(version, addresses, transport) : undefined;
  }

  connectTimeoutMs(): number {
    return durationSeconds(this.cluster.config.connect_timeout ?? "5s") * 1000;
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers.splice(0)) clearTimeout(timer);
  }

  private updateGauges(): void {
    const healthy = this.hosts.filter((host) => host.healthy).length;
    this.stats.gauge("membership_total").set(this.hosts.length);
    this.stats.gauge("membership_healthy").set(healthy);
    this.stats.gauge("membership_degraded").set(0);
    this.stats.gauge("membership_excluded").set(0);
    if ((this.cluster.config.health_checks ?? []).length > 0) this.stats.gauge("health_check.healthy").set(healthy);
  }

  private schedule(check: HealthCheck, host: Host, delayMs: number): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.timers.splice(this.timers.indexOf(timer), 1);
      void this.runCheck(check, host).then((outcome) => {
        this.record(check, host, outcome);
        this.schedule(check, host, durationSeconds(check.interval ?? "1s") * 1000);
      });
    }, delayMs);
    this.timers.push(timer);
  }

  private record(check: HealthCheck, host: Host, outcome: "success" | "failure" | "network_failure"): void {
    if (this.closed) return;
    this.stats.counter("health_check.attempt").inc();
    const address = host.endpoint.address.text;
    if (outcome === "success") {
      this.stats.counter("health_check.success").inc();
      host.failures = 0;
      host.successes++;
      // The first success after the host was added makes it healthy at once (Envoy).
      const first = host.successes === 1 && !host.everChecked;
      if (!host.healthy && (first || host.successes >= (check.healthy_threshold ?? 1))) {
        host.healthy = true;
        this.log.debug("hc", SOURCE.healthChecker, `health check: ${this.cluster.name} ${address} healthy`);
      }
    } else {
      this.stats.counter(`health_check.${outcome}`).inc();
      if (outcome === "network_failure") this.stats.counter("health_check.failure").inc();
      host.successes = 0;
      host.failures++;
      if (host.healthy && host.failures >= (check.unhealthy_threshold ?? 1)) {
        host.healthy = false;
        this.log.debug("hc", SOURCE.healthChecker, `health check: ${this.cluster.name} ${address} unhealthy`);
      }
    }
    host.everChecked = true;
    this.updateGauges();
  }

  private runCheck(check: HealthCheck, host: Host): Promise<"success" | "failure" | "network_failure"> {
    const timeoutMs = durationSeconds(check.timeout ?? "1s") * 1000;
    const ip = host.endpoint.address.ip;
    const port = host.endpoint.healthCheckPort ?? host.endpoint.address.port;
    const metadata = check.transport_socket_match_criteria ?? host.endpoint.transportSocketMatch;
    const version = proxyVersion(this.transportFor(metadata));
    return new Promise((resolve) => {
      let settled = false;
      const done = (outcome: "success" | "failure" | "network_failure"): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        resolve(outcome);
      };
      const socket: Socket = connect({ host: ip, port });
      const timer = setTimeout(() => done("network_failure"), timeoutMs);
      socket.on("error", () => done("network_failure"));
      socket.on("connect", () => {
        if (version) {
          socket.write(
            proxyProtocolHeader(version, {
              sourceAddress: socket.localAddress ?? "",
              sourcePort: socket.localPort ?? 0,
              destinationAddress: socket.remoteAddress ?? ip,
              destinationPort: socket.remotePort ?? port,
            }),
          );
        }
        if (!check.http_health_check) return done("success");
        const req = request({
          createConnection: () => socket,
          method: "GET",
          path: check.http_health_check.path ?? "/",
          headers: { host: check.http_health_check.host || this.cluster.name, "user-agent": "Envoy/HC", connection: "close" },
        });
        req.on("response", (res) => {
          res.resume();
          done(res.statusCode === 200 ? "success" : "failure");
        });
        req.on("error", () => done("network_failure"));
        req.end();
      });
    });
  }
}
