#!/usr/bin/env node
// The Microsoft Dev Tunnels controller; `connector` as the first argument runs the host instead (same image).
import { FlagError, parsePositive, runProviderController } from "@ktube/provider-kit";
import { DEFAULT_HOST_IMAGE, MANAGED_BY } from "./manifests/host.ts";
import { devtunnelsPlugin } from "./plugin.ts";

if (process.argv[2] === "connector") {
  const { runHostConnector } = await import("./connector/main.ts");
  await runHostConnector();
} else {
  await runProviderController({
    name: "devtunnels-controller",
    managedBy: MANAGED_BY,
    flags: {
      "owner-id": { type: "string", default: "default" },
      "host-image": { type: "string", default: DEFAULT_HOST_IMAGE },
      "devtunnels-service-url": { type: "string" },
      "entra-authority-url": { type: "string" },
      "max-ports": { type: "string", default: "10" },
    },
    usage: `  --owner-id ID                   marks this installation's dev tunnels (default "default")
  --host-image IMAGE              the hosts' image (default ${DEFAULT_HOST_IMAGE}; the controller's own)
  --devtunnels-service-url URL    the management API (default: the public service, or the provider's serviceUri)
  --entra-authority-url URL       Microsoft Entra ID (default https://login.microsoftonline.com)
  --max-ports N                   ports per dev tunnel (default 10, the service's limit)`,
    plugin(flags) {
      const ownerId = flags["owner-id"];
      if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(ownerId)) throw new FlagError("--owner-id must be a lowercase name of at most 63 characters");
      return devtunnelsPlugin({
        ownerId,
        hostImage: flags["host-image"],
        maxPorts: parsePositive(flags["max-ports"], "--max-ports"),
        ...(flags["devtunnels-service-url"] ? { serviceUri: flags["devtunnels-service-url"] } : {}),
        ...(flags["entra-authority-url"] ? { entraAuthority: flags["entra-authority-url"] } : {}),
      });
    },
  });
}
