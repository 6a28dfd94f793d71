#!/usr/bin/env node
// The self-hosted edge controller: enrolls each Tunnel's VPS over SSH and drives its Envoy.
import { parsePositive, runProviderController } from "@ktube/provider-kit";
import { edgePlugin } from "./plugin.ts";

await runProviderController({
  name: "edge-controller",
  managedBy: "ktube-edge-controller",
  flags: {
    "resync-interval": { type: "string", default: "300" },
    "confirm-timeout": { type: "string", default: "20" },
  },
  usage: `  --resync-interval SECONDS       how often each VPS is checked for drift and restarted services (default 300)
  --confirm-timeout SECONDS       how long Envoy has to confirm a configuration (default 20)`,
  plugin(flags) {
    return edgePlugin({
      resyncMs: parsePositive(flags["resync-interval"], "--resync-interval") * 1000,
      confirmTimeoutMs: parsePositive(flags["confirm-timeout"], "--confirm-timeout") * 1000,
    });
  },
});
