// The Dev Tunnels host connector: the one replica of a Tunnel's host Deployment (same image
// as the controller, `ktube-devtunnels-controller connector`). It hosts the dev tunnel with a
// tunnel access token scoped to hosting it (read from its mounted file whenever one is needed,
// so a renewed token is picked up without a restart), and reports its relay connection back.
import { readFileSync } from "node:fs";
import { connectorContext, connectorEnv, runConnectorProcess, upstreamOverrides } from "@ktube/provider-kit";
import { HOST_ENV } from "../manifests/host.ts";
import type { HostReport } from "../provider/host-report.ts";
import { managementClient } from "../provider/management.ts";
import type { PortTable } from "../provider/ports.ts";
import { HostSupervisor } from "./host.ts";

export async function runHostConnector(): Promise<void> {
  const ctx = connectorContext("devtunnels-host");
  const tokenFile = connectorEnv(HOST_ENV.tokenFile);
  const serviceUri = connectorEnv(HOST_ENV.serviceUri);
  const token = (): Promise<string> => Promise.resolve(`tunnel ${readFileSync(tokenFile, "utf8").trim()}`);
  let report: (r: HostReport) => void = () => undefined;
  const supervisor = new HostSupervisor({
    management: () => managementClient(token, serviceUri),
    upstreamOverrides: upstreamOverrides(),
    onReport: (r) => report(r),
    log: (level, message, fields) => ctx.logger[level]({ ...fields }, message),
  });
  runConnectorProcess<PortTable, HostReport>(ctx, {
    name: "devtunnels host",
    onTable: (table) => void supervisor.setTable(table).catch((error: unknown) => ctx.logger.error({ error: String(error) }, "could not apply the port table")),
    ready: () => supervisor.ready,
    stop: () => supervisor.stop(),
    started: (write) => (report = write),
  });
}
