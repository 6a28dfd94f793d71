// Envoy's cluster manager for STATIC clusters: static ones from the bootstrap, dynamic ones
// from CDS, applied one by one the way CdsApiHelper does it. Clusters the update no longer
// names are removed, each new or changed cluster is added or replaced, an unchanged one is
// left alone; every cluster that fails is reported and the others still apply:
//
//   Error adding/updating cluster(s) <name>: <reason>, <name>: <reason>
//
// Checks Envoy makes in C++ beyond the protos: a duplicate name in one update
// (`duplicate cluster <name> found`) and endpoint addresses of a STATIC cluster that are
// not IP literals (`malformed IP address: ...`).
import { EventEmitter } from "node:events";
import type { JsonObject } from "@ktube/envoy-validator";
import { parseResource, resolveSocketAddress, resourceBody, resourceHash, ResourceError, type ResolvedSocketAddress } from "../config/resource.ts";
import { clusterSpec, type Cluster } from "../config/subset.ts";
import { SOURCE, type EnvoyLogger } from "../log.ts";
import type { StatsScope } from "../stats/store.ts";
import { ConfigRejectedError, type DiscoveryUpdate } from "../xds/filesystem-subscription.ts";

export interface ClusterEndpoint {
  address: ResolvedSocketAddress;
  /** `health_check_config.port_value`, when the health check goes to another port. */
  healthCheckPort: number | undefined;
  /** `metadata.filter_metadata["envoy.transport_socket_match"]`, what transport_socket_matches select on. */
  transportSocketMatch: JsonObject | undefined;
}

export interface ActiveCluster {
  name: string;
  config: Cluster;
  endpoints: ClusterEndpoint[];
  /** The resource as written, for /config_dump. */
  raw: JsonObject;
  hash: string;
  versionInfo: string;
  lastUpdated: Date;
  /** From the bootstrap's static_resources (never removed by CDS). */
  static: boolean;
}

const CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster";

/** Parses and checks one cluster resource; throws ResourceError. */
export function buildCluster(resource: JsonObject, versionInfo: string, isStatic: boolean): ActiveCluster {
  const body = resourceBody(resource);
  const config = parseResource(clusterSpec, body);
  const endpoints: ClusterEndpoint[] = [];
  for (const locality of config.load_assignment?.endpoints ?? []) {
    for (const lb of locality.lb_endpoints ?? []) {
      const address = lb.endpoint?.address?.socket_address;
      let resolved: ResolvedSocketAddress;
      try {
        resolved = resolveSocketAddress(address);
      } catch (error) {
        throw new ResourceError(`${(error as Error).message}. Consider setting resolver_name or setting cluster type to 'STRICT_DNS' or 'LOGICAL_DNS'`);
      }
      const match = lb.metadata?.filter_metadata?.["envoy.transport_socket_match"];
      endpoints.push({ address: resolved, healthCheckPort: lb.endpoint?.health_check_config?.port_value || undefined, transportSocketMatch: match });
    }
  }
  return {
    name: config.name ?? "",
    config,
    endpoints,
    raw: { "@type": CLUSTER_TYPE, ...body },
    hash: resourceHash(body),
    versionInfo,
    lastUpdated: new Date(),
    static: isStatic,
  };
}

export interface ClusterManagerEvents {
  /** The set of clusters changed (added, replaced or removed). */
  changed: [];
}

export class ClusterManager extends EventEmitter<ClusterManagerEvents> {
  readonly clusters = new Map<string, ActiveCluster>();
  /** CDS's system_version_info: the version of the last update that applied anything. */
  versionInfo = "";
  private readonly stats: StatsScope;
  private readonly log: EnvoyLogger;

  constructor(stats: StatsScope, log: EnvoyLogger) {
    super();
    this.stats = stats;
    this.log = log;
    for (const name of ["cluster_added", "cluster_modified", "cluster_removed"]) stats.counter(name);
    this.updateGauges();
  }

  get(name: string): ActiveCluster | undefined {
    return this.clusters.get(name);
  }

  /** Adds the bootstrap's static clusters; throws on the first that fails (Envoy does not start). */
  addStatic(resources: readonly JsonObject[]): void {
    for (const resource of resources) {
      const cluster = buildCluster(resource, "", true);
      if (this.clusters.has(cluster.name)) throw new ResourceError(`cluster manager: duplicate cluster '${cluster.name}'`);
      this.clusters.set(cluster.name, cluster);
      this.stats.counter("cluster_added").inc();
    }
    this.updateGauges();
    if (resources.length > 0) this.emit("changed");
  }

  /** CDS's onConfigUpdate (state of the world). Throws ConfigRejectedError when any cluster failed. */
  async onCdsUpdate(update: DiscoveryUpdate): Promise<void> {
    const wanted = new Set(update.resources.map((resource) => String(resource.name ?? "")));
    const removed = [...this.clusters.values()].filter((cluster) => !cluster.static && !wanted.has(cluster.name));
    this.log.info(
      "upstream",
      SOURCE.cdsApiHelper,
      `cds: response indicates ${update.resources.length} added/updated cluster(s), ${removed.length} removed cluster(s); applying changes`,
    );
    const errors: string[] = [];
    let unimplemented = false;
    let anyApplied = false;
    let addedOrUpdated = 0;
    let skipped = 0;
    const names = new Set<string>();
    update.resources.forEach((resource, index) => {
      const name = String(resource.name ?? "");
      try {
        if (names.has(name)) throw new ResourceError(`duplicate cluster ${name} found`);
        names.add(name);
        const protoErrors = update.resourceErrors.get(index);
        if (protoErrors?.length) throw new ResourceError(protoErrors.join("; "));
        const cluster = buildCluster(resource, update.version, false);
        const existing = this.clusters.get(name);
        if (existing?.static) {
          this.log.warn("upstream", SOURCE.cdsApiHelper, `cds: cluster '${name}' is static and may not be updated via CDS`);
          skipped++;
          return;
        }
        if (existing && existing.hash === cluster.hash) {
          this.log.debug("upstream", SOURCE.cdsApiHelper, `cds: add/update cluster '${name}' skipped`);
          skipped++;
          return;
        }
        this.clusters.set(name, cluster);
        this.stats.counter(existing ? "cluster_modified" : "cluster_added").inc();
        this.log.debug("upstream", SOURCE.cdsApiHelper, `cds: add/update cluster '${name}'`);
        anyApplied = true;
        addedOrUpdated++;
      } catch (error) {
        if (!(error instanceof ResourceError)) throw error;
        unimplemented ||= error.unimplemented;
        errors.push(`${name}: ${error.message}`);
      }
    });
    for (const cluster of removed) {
      this.clusters.delete(cluster.name);
      this.stats.counter("cluster_removed").inc();
      this.log.debug("upstream", SOURCE.cdsApiHelper, `cds: remove cluster '${cluster.name}'`);
      anyApplied = true;
    }
    this.log.info(
      "upstream",
      SOURCE.cdsApiHelper,
      `cds: added/updated ${addedOrUpdated} cluster(s) (skipped ${skipped} unmodified cluster(s)); removed ${removed.length} cluster(s)`,
    );
    if (anyApplied) {
      this.versionInfo = update.version;
      this.updateGauges();
      this.emit("changed");
    }
    if (errors.length > 0) throw new ConfigRejectedError(`Error adding/updating cluster(s) ${errors.join(", ")}`, unimplemented);
  }

  private updateGauges(): void {
    this.stats.gauge("active_clusters").set(this.clusters.size);
    this.stats.gauge("warming_clusters").set(0);
  }
}
