// The edge uplink: one replica of a Tunnel's uplink StatefulSet (same image as the
// controller, `ktube-edge-controller connector`). Its ordinal (the pod name's suffix)
// picks its key and tunnel address; it keeps WireGuard to the VPS and its forwarding rules
// equal to the route table and reports through the kit's connector runtime. It needs no
// controller to keep serving.
import { connectorContext, connectorEnv, runConnectorProcess } from "@ktube/provider-kit";
import { UPLINK_ENV, type UplinkReport, type UplinkTable } from "../manifests/uplink.ts";
import { Uplink } from "./uplink.ts";

export async function runUplink(): Promise<void> {
  const ctx = connectorContext("edge-uplink");
  const ordinal = /-(\d+)$/.exec(ctx.pod)?.[1];
  if (ordinal === undefined) {
    console.error(`the uplink runs as a StatefulSet replica: its pod name (${ctx.pod}) must end in its ordinal`);
    process.exit(2);
  }
  const uplink = new Uplink({
    ordinal: Number(ordinal),
    iface: process.env[UPLINK_ENV.iface] || "ktube0",
    keyDir: connectorEnv(UPLINK_ENV.keyDir),
    logger: ctx.logger,
  });
  runConnectorProcess<UplinkTable, UplinkReport>(ctx, {
    name: "edge uplink",
    onTable: (table) => uplink.setTable(table),
    ready: () => uplink.ready(),
    stop: () => uplink.stop(),
    started: (write) => (uplink.onReport = write),
  });
}
