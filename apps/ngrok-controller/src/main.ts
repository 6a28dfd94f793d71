#!/usr/bin/env node
// The ngrok controller; `connector` as the first argument runs the agent instead (same image).
import { readFileSync } from "node:fs";
import { runProviderController } from "@ktube/provider-kit";
import { DEFAULT_CONNECTOR_IMAGE, MANAGED_BY } from "./manifests/connector.ts";
import { ngrokPlugin } from "./plugin.ts";

if (process.argv[2] === "connector") {
  const { runConnector } = await import("./connector/main.ts");
  await runConnector();
} else {
  await runProviderController({
    name: "ngrok-controller",
    managedBy: MANAGED_BY,
    flags: {
      "connector-image": { type: "string", default: DEFAULT_CONNECTOR_IMAGE },
      "ngrok-server-addr": { type: "string" },
      "ngrok-ca-file": { type: "string" },
      "ngrok-api-url": { type: "string" },
    },
    usage: `  --connector-image IMAGE         the agents' image (default ${DEFAULT_CONNECTOR_IMAGE}; the controller's own)
  --ngrok-server-addr HOST:PORT   the agent ingress (default: ngrok's connect.ngrok-agent.com:443)
  --ngrok-ca-file FILE            PEM of the ingress's CA, where it is not publicly trusted
  --ngrok-api-url URL             the REST API (default https://api.ngrok.com)`,
    plugin(flags) {
      const ca = flags["ngrok-ca-file"];
      return ngrokPlugin({
        connectorImage: flags["connector-image"],
        ...(flags["ngrok-server-addr"] ? { serverAddr: flags["ngrok-server-addr"] } : {}),
        ...(ca ? { caPem: readFileSync(ca, "utf8") } : {}),
        ...(flags["ngrok-api-url"] ? { api: { baseUrl: flags["ngrok-api-url"] } } : {}),
      });
    },
  });
}
