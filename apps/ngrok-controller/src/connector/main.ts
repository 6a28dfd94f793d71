// The ngrok connector: one replica of a Tunnel's agent Deployment (same image as the
// controller, `ktube-ngrok-controller connector`). It reads its route table from the
// ConfigMap the controller writes, keeps one ngrok session and its endpoints up
// (AgentSupervisor), and writes what only it knows (session state, assigned URLs) under its
// pod's key in the tunnel's status ConfigMap. It needs no controller to keep serving.
import { readFileSync } from "node:fs";
import http from "node:http";
import { KubeConfig } from "@kubernetes/client-node";
import { Core } from "@ktube/api";
import { createLogger, Informer, KubeClient, PatchType, type KubeObject } from "@ktube/runtime";
import { connectAgent } from "../provider/agent.ts";
import type { AgentReport } from "../provider/agent-report.ts";
import { ROUTE_TABLE_KEY, type RouteTable } from "../provider/route-table.ts";
import { AgentSupervisor } from "./supervisor.ts";
import { CONNECTOR_ENV } from "../manifests/connector.ts";

const VERSION = "0.1.0";

function env(name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") {
    console.error(`the connector needs ${name} (set by its Deployment)`);
    process.exit(2);
  }
  return value;
}

export async function runConnector(): Promise<void> {
  const logger = createLogger({ name: "ngrok-connector" });
  const namespace = env(CONNECTOR_ENV.namespace);
  const routeTable = env(CONNECTOR_ENV.routeTable);
  const statusMap = env(CONNECTOR_ENV.statusMap);
  const tunnelUid = env(CONNECTOR_ENV.tunnelUid);
  const pod = env(CONNECTOR_ENV.pod);
  const authtoken = readFileSync(env(CONNECTOR_ENV.authtokenFile), "utf8").trim();
  const caFile = process.env[CONNECTOR_ENV.caFile];
  const overrides = process.env[CONNECTOR_ENV.upstreamOverrides];
  const probeAddress = process.env[CONNECTOR_ENV.probeAddress] ?? ":8080";

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  const client = new KubeClient(kubeConfig);

  // Reports: the newest one wins, written only when it differs from the last written.
  let written = "";
  let pending: AgentReport | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  const flush = async (): Promise<void> => {
    timer = undefined;
    if (!pending) return;
    const text = JSON.stringify(pending);
    pending = undefined;
    if (text === written) return;
    try {
      await client.patch(Core.ConfigMap, namespace, statusMap, { data: { [pod]: text } }, PatchType.merge);
      written = text;
      failures = 0;
    } catch (error) {
      failures++;
      logger.warn({ error: String(error) }, "could not write the agent report; retrying");
      pending ??= JSON.parse(text) as AgentReport;
      timer = setTimeout(() => void flush(), Math.min(30_000, 500 * 2 ** failures));
    }
  };
  const report = (r: AgentReport): void => {
    pending = r;
    timer ??= setTimeout(() => void flush(), 300);
  };

  const supervisor = new AgentSupervisor({
    pod,
    connect: connectAgent,
    agent: {
      authtoken,
      metadata: JSON.stringify({ ktube: { controller: "ngrok", pod, version: VERSION } }),
      clientVersion: VERSION,
      connectTimeoutMs: 20_000,
      ...(process.env[CONNECTOR_ENV.serverAddr] ? { serverAddr: process.env[CONNECTOR_ENV.serverAddr] } : {}),
      ...(caFile ? { caPem: readFileSync(caFile, "utf8") } : {}),
      ...(process.env[CONNECTOR_ENV.heartbeatS] ? { heartbeatIntervalS: Number(process.env[CONNECTOR_ENV.heartbeatS]), heartbeatToleranceS: Number(process.env[CONNECTOR_ENV.heartbeatS]) * 1.5 } : {}),
    },
    bindTimeoutMs: 20_000,
    ...(overrides ? { upstreamOverrides: JSON.parse(overrides) as Record<string, string> } : {}),
    onReport: report,
    log: (level, message, fields) => logger[level]({ ...fields }, message),
  });

  const informer = new Informer<KubeObject & { data?: Record<string, string> }>(client, Core.ConfigMap, { namespace, fieldSelector: `metadata.name=${routeTable}`, logger });
  const load = (cm: { data?: Record<string, string> }): void => {
    try {
      const table = JSON.parse(cm.data?.[ROUTE_TABLE_KEY] ?? "") as RouteTable;
      if (table.tunnel !== tunnelUid) return logger.warn({ configMap: routeTable }, "the route table belongs to another tunnel; ignored");
      supervisor.setTable(table);
    } catch (error) {
      logger.error({ error: String(error) }, "the route table could not be read; keeping the last one");
    }
  };
  informer.addHandler({ add: load, update: (_old, cm) => load(cm) });
  informer.start();

  const probes = http.createServer((req, res) => {
    if (req.url === "/healthz") return void res.writeHead(200).end("ok\n");
    if (req.url === "/ready") return void res.writeHead(supervisor.ready ? 200 : 503).end(supervisor.ready ? "ready\n" : "not ready\n");
    res.writeHead(404).end();
  });
  const [host, port] = probeAddress.startsWith(":") ? ["0.0.0.0", probeAddress.slice(1)] : probeAddress.split(":");
  probes.listen(Number(port), host);

  // A bug in a callback must never end the agent (and with it every endpoint): log it.
  process.on("uncaughtException", (error) => logger.error({ error: String(error), stack: error.stack }, "uncaught exception"));
  process.on("unhandledRejection", (error) => logger.error({ error: String(error) }, "unhandled rejection"));

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping: closing endpoints and the session");
    clearTimeout(timer);
    await supervisor.stop();
    await informer.stop();
    // Gone from the status: the controller moves unpooled endpoints to another replica at once.
    await client.patch(Core.ConfigMap, namespace, statusMap, { data: { [pod]: null } }, PatchType.merge).catch(() => undefined);
    probes.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  logger.info({ namespace, routeTable, pod }, "ngrok connector started");
}
