// Envoy's bootstrap: who it is, its admin on loopback only, and where its listeners and
// clusters come from (the LDS and CDS files, re-read when a file is moved into their folder).
import { create } from "@bufbuild/protobuf";
import { BootstrapSchema, type Bootstrap } from "@ktube/envoy-api/gen/envoy/config/bootstrap/v3/bootstrap_pb.ts";
import { ENVOY_CDS_FILE, ENVOY_LDS_FILE, watchedFileSource } from "./paths.ts";
import { ENVOY_CONFIG_DIR, type EdgePlan } from "./plan.ts";

/** Envoy's `--service-cluster`: the same for every VPS KTube runs. */
export const ENVOY_NODE_CLUSTER = "ktube-edge";

export function renderBootstrap(plan: Pick<EdgePlan, "nodeId" | "adminPort">): Bootstrap {
  return create(BootstrapSchema, {
    node: { id: plan.nodeId, cluster: ENVOY_NODE_CLUSTER },
    admin: {
      address: { address: { case: "socketAddress", value: { address: "127.0.0.1", portSpecifier: { case: "portValue", value: plan.adminPort } } } },
    },
    dynamicResources: {
      ldsConfig: watchedFileSource(ENVOY_LDS_FILE, ENVOY_CONFIG_DIR),
      cdsConfig: watchedFileSource(ENVOY_CDS_FILE, ENVOY_CONFIG_DIR),
    },
  });
}
