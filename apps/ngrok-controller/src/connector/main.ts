// The ngrok connector: one replica of a Tunnel's agent Deployment (same image as the
// controller, `ktube-ngrok-controller connector`). It keeps one ngrok session and the route
// table's endpoints up (AgentSupervisor) and reports session state and assigned URLs back
// through the kit's connector runtime. It needs no controller to keep serving.
import { readFileSync } from "node:fs";
import { connectorContext, connectorEnv, runConnectorProcess, upstreamOverrides } from "@ktube/provider-kit";
import { connectAgent } from "../provider/agent.ts";
import type { AgentReport } from "../provider/agent-report.ts";
import type { RouteTable } from "../provider/route-table.ts";
import { AGENT_ENV } from "../manifests/connector.ts";
import { AgentSupervisor } from "./supervisor.ts";

const VERSION = "0.1.0";

export async function runConnector(): Promise<void> {
  const ctx = connectorContext("ngrok-connector");
  const authtoken = readFileSync(connectorEnv(AGENT_ENV.authtokenFile), "utf8").trim();
  const caFile = process.env[AGENT_ENV.caFile];
  const heartbeatS = process.env[AGENT_ENV.heartbeatS] ? Number(process.env[AGENT_ENV.heartbeatS]) : undefined;
  let report: (r: AgentReport) => void = () => undefined;

  const supervisor = new AgentSupervisor({
    pod: ctx.pod,
    connect: connectAgent,
    agent: {
      authtoken,
      metadata: JSON.stringify({ ktube: { controller: "ngrok", pod: ctx.pod, version: VERSION } }),
      clientVersion: VERSION,
      connectTimeoutMs: 20_000,
      ...(process.env[AGENT_ENV.serverAddr] ? { serverAddr: process.env[AGENT_ENV.serverAddr] } : {}),
      ...(caFile ? { caPem: readFileSync(caFile, "utf8") } : {}),
      ...(heartbeatS ? { heartbeatIntervalS: heartbeatS, heartbeatToleranceS: heartbeatS * 1.5 } : {}),
    },
    bindTimeoutMs: 20_000,
    upstreamOverrides: upstreamOverrides(),
    onReport: (r) => report(r),
    log: (level, message, fields) => ctx.logger[level]({ ...fields }, message),
  });

  runConnectorProcess<RouteTable, AgentReport>(ctx, {
    name: "ngrok connector",
    onTable: (table) => supervisor.setTable(table),
    ready: () => supervisor.ready,
    stop: () => supervisor.stop(),
    started: (write) => (report = write),
  });
}
