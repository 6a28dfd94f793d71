// What each connector replica reports back (the part only it knows): its agent session and
// the URL and state of every endpoint it binds. One key per replica in the tunnel's status
// ConfigMap, written only when something changed; the controller turns the reports into
// route outcomes and the tunnel's conditions.

export const REPORT_VERSION = 1;

export interface SessionReport {
  state: "connecting" | "online" | "offline";
  /** Condition reason of the last failure (InvalidCredentials, SessionLimitExceeded, Unreachable…). */
  reason?: string;
  message?: string;
}

export interface EndpointReport {
  online: boolean;
  /** The URL ngrok assigned (the dev domain, a random TCP address). */
  url?: string;
  reason?: string;
  message?: string;
}

export interface AgentReport {
  version: typeof REPORT_VERSION;
  /** The route table (its hash) this report is about: older reports say nothing of newer routes. */
  table: string;
  session: SessionReport;
  /** By endpoint id (EndpointSpec.id). */
  endpoints: Record<string, EndpointReport>;
}

/** Parses one replica's report; undefined when it is not one (a person edited the ConfigMap). */
export function parseReport(text: string | undefined): AgentReport | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as Partial<AgentReport>;
    if (value.version !== REPORT_VERSION || typeof value.table !== "string" || !value.session || typeof value.endpoints !== "object") return undefined;
    return value as AgentReport;
  } catch {
    return undefined;
  }
}
