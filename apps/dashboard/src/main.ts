#!/usr/bin/env node
// The KTube dashboard. It needs only the API server's address and CA: users sign in with
// their own tokens, and the dashboard's ServiceAccount has no rights and no mounted token.
import { serve } from "@hono/node-server";
import { KubeConfig } from "@kubernetes/client-node";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { apiServer } from "./kube.ts";
import { createDashboard } from "./server.ts";
import { DEFAULT_MAX_SESSION_SECONDS } from "./session.ts";

const USAGE = `Usage: ktube-dashboard [flags]

  --listen HOST:PORT         where to serve HTTP (default 0.0.0.0:8080; put TLS in front of it:
                             the session cookie is Secure, so browsers send it only over HTTPS or to localhost)
  --public-url URL           the dashboard's external URL, when a proxy in front terminates TLS or
                             rewrites Host (mutations must come from this origin)
  --kubeconfig FILE          take the API server's URL and CA from this kubeconfig's current context
                             (its credentials are never used)
  --api-server URL           the API server (default in a pod: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)
  --api-ca-file FILE         the API server's CA (default in a pod: the kube-root-ca.crt ConfigMap
                             mounted at /etc/ktube/kube-root-ca/ca.crt)
  --max-session-hours N      sessions of tokens without an expiry end after N hours (default ${DEFAULT_MAX_SESSION_SECONDS / 3600});
                             a JWT's session ends at its exp, or after N hours if sooner
  -h, --help                 show this help
`;

const IN_CLUSTER_CA = "/etc/ktube/kube-root-ca/ca.crt";

function fail(message: string): never {
  process.stderr.write(`ktube-dashboard: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function parseFlags() {
  try {
    return parseArgs({
      options: {
        listen: { type: "string", default: "0.0.0.0:8080" },
        "public-url": { type: "string" },
        kubeconfig: { type: "string" },
        "api-server": { type: "string" },
        "api-ca-file": { type: "string" },
        "max-session-hours": { type: "string", default: String(DEFAULT_MAX_SESSION_SECONDS / 3600) },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (error) {
    return fail((error as Error).message);
  }
}
const values = parseFlags();

if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

let url = values["api-server"];
let ca = values["api-ca-file"] ? readFileSync(values["api-ca-file"], "utf8") : undefined;
if (values.kubeconfig) {
  const kc = new KubeConfig();
  kc.loadFromFile(values.kubeconfig);
  const cluster = kc.getCurrentCluster() ?? fail(`${values.kubeconfig} has no current cluster`);
  url ??= cluster.server;
  ca ??= cluster.caData ? Buffer.from(cluster.caData, "base64").toString("utf8") : cluster.caFile ? readFileSync(cluster.caFile, "utf8") : undefined;
} else if (!url && process.env.KUBERNETES_SERVICE_HOST) {
  url = `https://${process.env.KUBERNETES_SERVICE_HOST}:${process.env.KUBERNETES_SERVICE_PORT ?? "443"}`;
  ca ??= readFileSync(IN_CLUSTER_CA, "utf8");
}
if (!url) fail("no API server: pass --kubeconfig or --api-server, or run in a pod");

const hours = Number(values["max-session-hours"]);
if (!Number.isFinite(hours) || hours <= 0) fail("--max-session-hours must be a positive number");
const listen = /^(.*):(\d+)$/.exec(values.listen) ?? fail("--listen must be HOST:PORT");

const app = createDashboard({
  server: apiServer(url, ca),
  maxSessionSeconds: Math.round(hours * 3600),
  ...(values["public-url"] ? { publicOrigin: new URL(values["public-url"]).origin } : {}),
});
const server = serve({ fetch: app.fetch, hostname: listen[1] || "0.0.0.0", port: Number(listen[2]) }, (info) => {
  process.stdout.write(`${JSON.stringify({ level: "info", msg: "dashboard listening", address: info.address, port: info.port, apiServer: url })}\n`);
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
