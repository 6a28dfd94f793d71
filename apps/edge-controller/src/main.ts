#!/usr/bin/env node
// The self-hosted edge controller: enrolls each Tunnel's VPS over SSH and drives its Envoy;
// `connector` as the first argument runs an uplink instead (same image).
import { parsePositive, runProviderController } from "@ktube/provider-kit";
import { DEFAULT_UPLINK_IMAGE, MANAGED_BY } from "./manifests/uplink.ts";
import { edgePlugin } from "./plugin.ts";

if (process.argv[2] === "connector") {
  const { runUplink } = await import("./connector/main.ts");
  await runUplink();
} else {
  await runProviderController({
    name: "edge-controller",
    managedBy: MANAGED_BY,
    flags: {
      "resync-interval": { type: "string", default: "300" },
      "confirm-timeout": { type: "string", default: "20" },
      "uplink-image": { type: "string", default: DEFAULT_UPLINK_IMAGE },
    },
    usage: `  --resync-interval SECONDS       how often each VPS is checked for drift and restarted services (default 300)
  --confirm-timeout SECONDS       how long Envoy has to confirm a configuration (default 20)
  --uplink-image IMAGE            the uplinks' image (default ${DEFAULT_UPLINK_IMAGE}; the controller's own)`,
    plugin(flags) {
      return edgePlugin({
        resyncMs: parsePositive(flags["resync-interval"], "--resync-interval") * 1000,
        confirmTimeoutMs: parsePositive(flags["confirm-timeout"], "--confirm-timeout") * 1000,
        uplinkImage: flags["uplink-image"],
      });
    },
  });
}
