// What the host reports back (the part only it knows): whether it is connected to the relay,
// stepped aside for a newer host, or failing and why, and which ports it forwards. One key
// per replica in the tunnel's status ConfigMap, written only when something changed.

export const REPORT_VERSION = 1;

export interface HostReport {
  version: typeof REPORT_VERSION;
  /** The port table (its hash) this report is about. */
  table: string;
  state: "connecting" | "connected" | "conflict" | "disconnected";
  reason?: string;
  message?: string;
  /** Tunnel ports the host forwards now. */
  ports: number[];
}

export function parseHostReport(text: string): HostReport | undefined {
  try {
    const value = JSON.parse(text) as Partial<HostReport>;
    if (value.version !== REPORT_VERSION || typeof value.table !== "string" || typeof value.state !== "string" || !Array.isArray(value.ports)) return undefined;
    return value as HostReport;
  } catch {
    return undefined;
  }
}
