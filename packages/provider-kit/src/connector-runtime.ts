// The process side of a KTube-written connector: read the Tunnel's route table from its
// ConfigMap (watched, so a change arrives at once), report what only the connector knows
// under this pod's key in the status ConfigMap (the newest report wins, written only when it
// changed, retried with backoff), serve /healthz and /ready, and stop cleanly on SIGTERM
// (the report removed, so the controller stops counting this replica at once).
import { KubeConfig } from "@kubernetes/client-node";
import { Core } from "@ktube/api";
import { createLogger, Informer, KubeClient, PatchType, type KubeObject, type Logger } from "@ktube/runtime";
import http from "node:http";
import { CONNECTOR_ENV, ROUTE_TABLE_KEY } from "./connector-objects.ts";

export interface ConnectorProcess<T extends { tunnel: string }, R> {
  /** For the logger: `ngrok-connector`... */
  name: string;
  /** A new route table (already checked to be this tunnel's). */
  onTable(table: T): void;
  ready(): boolean;
  /** Closes what the connector holds (sessions, hosts) before the process exits. */
  stop(): Promise<void>;
  /** Extra data of the route table ConfigMap, for connectors that read more than the table (a CA). */
  onConfigMap?(data: Record<string, string>): void;
  /** Called with the report writer once it exists. */
  started?(report: (r: R) => void, logger: Logger): void;
}

export interface ConnectorContext {
  namespace: string;
  pod: string;
  tunnelUid: string;
  logger: Logger;
  client: KubeClient;
}

/** A variable the connector's pod template sets; exits with a message when it is missing. */
export function connectorEnv(name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") {
    console.error(`the connector needs ${name} (set by its pod template)`);
    process.exit(2);
  }
  return value;
}

/** `KTUBE_UPSTREAM_OVERRIDES`: where Services are reached when not running in their cluster. */
export function upstreamOverrides(): Record<string, string> {
  const raw = process.env[CONNECTOR_ENV.upstreamOverrides];
  return raw ? (JSON.parse(raw) as Record<string, string>) : {};
}

/** The context every connector starts from (its namespace, pod, Tunnel uid, a client as its own ServiceAccount). */
export function connectorContext(name: string): ConnectorContext {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  return {
    namespace: connectorEnv(CONNECTOR_ENV.namespace),
    pod: connectorEnv(CONNECTOR_ENV.pod),
    tunnelUid: connectorEnv(CONNECTOR_ENV.tunnelUid),
    logger: createLogger({ name }),
    client: new KubeClient(kubeConfig),
  };
}

/** Runs the connector's Kubernetes side until SIGTERM/SIGINT. */
export function runConnectorProcess<T extends { tunnel: string }, R>(ctx: ConnectorContext, connector: ConnectorProcess<T, R>): void {
  const { namespace, pod, logger, client } = ctx;
  const routeTable = connectorEnv(CONNECTOR_ENV.routeTable);
  const statusMap = connectorEnv(CONNECTOR_ENV.statusMap);
  const probeAddress = process.env[CONNECTOR_ENV.probeAddress] ?? ":8080";

  let written = "";
  let pending: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  const flush = async (): Promise<void> => {
    timer = undefined;
    const text = pending;
    pending = undefined;
    if (text === undefined || text === written) return;
    try {
      await client.patch(Core.ConfigMap, namespace, statusMap, { data: { [pod]: text } }, PatchType.merge);
      written = text;
      failures = 0;
    } catch (error) {
      failures++;
      logger.warn({ error: String(error) }, "could not write the connector's report; retrying");
      pending ??= text;
      timer = setTimeout(() => void flush(), Math.min(30_000, 500 * 2 ** failures));
    }
  };
  const report = (r: R): void => {
    pending = JSON.stringify(r);
    timer ??= setTimeout(() => void flush(), 300);
  };
  connector.started?.(report, logger);

  const informer = new Informer<KubeObject & { data?: Record<string, string> }>(client, Core.ConfigMap, { namespace, fieldSelector: `metadata.name=${routeTable}`, logger });
  const load = (cm: { data?: Record<string, string> }): void => {
    try {
      connector.onConfigMap?.(cm.data ?? {});
      const table = JSON.parse(cm.data?.[ROUTE_TABLE_KEY] ?? "") as T;
      if (table.tunnel !== ctx.tunnelUid) return logger.warn({ configMap: routeTable }, "the route table belongs to another tunnel; ignored");
      connector.onTable(table);
    } catch (error) {
      logger.error({ error: String(error) }, "the route table could not be read; keeping the last one");
    }
  };
  informer.addHandler({ add: load, update: (_old, cm) => load(cm) });
  informer.start();

  const probes = http.createServer((req, res) => {
    if (req.url === "/healthz") return void res.writeHead(200).end("ok\n");
    const ready = connector.ready();
    if (req.url === "/ready") return void res.writeHead(ready ? 200 : 503).end(ready ? "ready\n" : "not ready\n");
    res.writeHead(404).end();
  });
  const [host, port] = probeAddress.startsWith(":") ? ["0.0.0.0", probeAddress.slice(1)] : probeAddress.split(":");
  probes.listen(Number(port), host);

  // A bug in a callback must never end the connector (and with it every route): log it.
  process.on("uncaughtException", (error) => logger.error({ error: String(error), stack: error.stack }, "uncaught exception"));
  process.on("unhandledRejection", (error) => logger.error({ error: String(error) }, "unhandled rejection"));

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping");
    clearTimeout(timer);
    await connector.stop();
    await informer.stop();
    await client.patch(Core.ConfigMap, namespace, statusMap, { data: { [pod]: null } }, PatchType.merge).catch(() => undefined);
    probes.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  logger.info({ namespace, routeTable, pod }, `${connector.name} started`);
}
