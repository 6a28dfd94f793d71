// The management API's routes: what TunnelManagementHttpClient 1.3.60 requests (its
// compiled JS is the de-facto path spec; research §2 "Operations → HTTP"). Each route is
// named after the SDK method that makes the request; a PUT is told apart by its
// precondition header (`If-None-Match: *` create, `If-Match: *` update, none upsert).
import { Patterns, SCOPES } from "./contract-schema.ts";
import { Problems, type ManagementError } from "./problems.ts";

/** The API versions served: the SDK's `ManagementApiVersions` (only this one). */
export const API_VERSIONS: readonly string[] = ["2023-09-27-preview"];

export type Operation =
  | "listClusters"
  | "getClusterRecommendations"
  | "listUserLimits"
  | "checkNameAvailability"
  | "listTunnels"
  | "getTunnel"
  | "createTunnel"
  | "updateTunnel"
  | "createOrUpdateTunnel"
  | "deleteTunnel"
  | "listTunnelPorts"
  | "getTunnelPort"
  | "createTunnelPort"
  | "updateTunnelPort"
  | "createOrUpdateTunnelPort"
  | "deleteTunnelPort"
  | "updateTunnelEndpoint"
  | "deleteTunnelEndpoints"
  | "reportEvents";

export interface RouteMatch {
  operation: Operation;
  tunnelId?: string;
  portNumber?: number;
  endpointId?: string;
  /** The name in `/tunnels/{name}:checkNameAvailability`. */
  name?: string;
  /** How the route is reached without credentials: never, or anonymously allowed. */
  anonymous: boolean;
  /** The query parameters the route takes (besides `api-version`). */
  query: readonly string[];
  /** Whether the route takes a JSON body. */
  body: "none" | "tunnel" | "port" | "endpoint" | "events";
}

/** `TunnelRequestOptions` as `tunnelRequestOptionsToQueryString` sends it, on any request that takes options. */
const OPTION_QUERY = ["includePorts", "includeAccessControl", "tokenScopes", "forceRename", "labels", "allLabels", "limit"] as const;

function putOperation<T extends Operation>(headers: { ifNoneMatch?: string; ifMatch?: string }, create: T, update: T, upsert: T): T {
  if (headers.ifNoneMatch === "*") return create;
  if (headers.ifMatch === "*") return update;
  return upsert;
}

/** The route for a request, or undefined for an unknown one. */
export function matchRoute(method: string, path: string, headers: { ifNoneMatch?: string; ifMatch?: string }): RouteMatch | undefined {
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const base = { anonymous: false, body: "none" as const };
  if (parts[0] === "clusters" && method === "GET") {
    if (parts.length === 1) return { ...base, operation: "listClusters", anonymous: true, query: [] };
    if (parts.length === 2 && parts[1] === "recommendations")
      return { ...base, operation: "getClusterRecommendations", anonymous: true, query: ["preferredClusterId", "requiredGeo"] };
    return undefined;
  }
  if (parts[0] === "userlimits" && parts.length === 1 && method === "GET") return { ...base, operation: "listUserLimits", query: [] };
  if (parts[0] !== "tunnels") return undefined;
  if (parts.length === 1) return method === "GET" ? { ...base, operation: "listTunnels", query: ["global", "domain", ...OPTION_QUERY] } : undefined;

  const id = parts[1]!;
  if (parts.length === 2 && id.endsWith(":checkNameAvailability") && method === "GET") {
    return { ...base, operation: "checkNameAvailability", name: id.slice(0, -":checkNameAvailability".length), anonymous: true, query: [] };
  }
  const tunnel = { ...base, tunnelId: id, query: OPTION_QUERY };
  if (parts.length === 2) {
    if (method === "GET") return { ...tunnel, operation: "getTunnel" };
    if (method === "DELETE") return { ...tunnel, operation: "deleteTunnel" };
    if (method === "PUT") return { ...tunnel, operation: putOperation(headers, "createTunnel", "updateTunnel", "createOrUpdateTunnel"), body: "tunnel" };
    return undefined;
  }
  const sub = parts[2];
  if (sub === "ports") {
    if (parts.length === 3) return method === "GET" ? { ...tunnel, operation: "listTunnelPorts" } : undefined;
    if (parts.length !== 4 || !/^\d{1,5}$/.test(parts[3]!)) return undefined;
    const port = { ...tunnel, portNumber: Number(parts[3]) };
    if (method === "GET") return { ...port, operation: "getTunnelPort" };
    if (method === "DELETE") return { ...port, operation: "deleteTunnelPort" };
    if (method === "PUT") return { ...port, operation: putOperation(headers, "createTunnelPort", "updateTunnelPort", "createOrUpdateTunnelPort"), body: "port" };
    return undefined;
  }
  if (sub === "endpoints" && parts.length === 4) {
    const endpoint = { ...tunnel, endpointId: parts[3]! };
    if (method === "PUT") return { ...endpoint, operation: "updateTunnelEndpoint", query: ["connectionMode", ...OPTION_QUERY], body: "endpoint" };
    if (method === "DELETE") return { ...endpoint, operation: "deleteTunnelEndpoints" };
    return undefined;
  }
  if (sub === "events" && parts.length === 3 && method === "POST") return { ...tunnel, operation: "reportEvents", body: "events" };
  return undefined;
}

/** The parsed `TunnelRequestOptions` of a query. */
export interface QueryOptions {
  includePorts: boolean;
  includeAccessControl: boolean;
  /** Each item one scope or a space-separated combination (its token's key in `accessTokens`). */
  tokenScopes: string[];
  forceRename: boolean;
  labels: string[];
  allLabels: boolean;
  limit?: number;
  global: boolean;
  connectionMode?: string;
}

const BOOLEAN = /^(true|false)$/i;

/** Checks the query against the route (unknown parameters, `api-version`, value shapes). */
export function parseQuery(query: URLSearchParams, route: RouteMatch): QueryOptions | ManagementError {
  const version = query.get("api-version");
  if (version === null) return Problems.missingApiVersion();
  if (!API_VERSIONS.includes(version)) return Problems.unsupportedApiVersion(version, API_VERSIONS);
  const allowed = ["api-version", ...route.query];
  const unknown = [...new Set([...query.keys()].filter((k) => !allowed.includes(k)))];
  if (unknown.length > 0) return Problems.unknownQuery(unknown, allowed);

  const errors: Record<string, string[]> = {};
  const flag = (name: string): boolean => {
    const value = query.get(name);
    if (value === null) return false;
    if (!BOOLEAN.test(value)) errors[name] = [`The value '${value}' is not valid for ${name}.`];
    return value.toLowerCase() === "true";
  };
  const list = (name: string): string[] => {
    const value = query.get(name);
    return value === null || value === "" ? [] : value.split(",");
  };
  const tokenScopes = list("tokenScopes");
  for (const combo of tokenScopes) {
    for (const scope of combo.split(" ")) if (!SCOPES.includes(scope)) (errors["tokenScopes"] ??= []).push(`Invalid tunnel access scope: ${scope}`);
  }
  const labels = list("labels");
  for (const label of labels) if (!Patterns.label.test(label)) (errors["labels"] ??= []).push(`Invalid label '${label}'.`);
  const limitText = query.get("limit");
  const limit = limitText === null ? undefined : Number(limitText);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) errors["limit"] = [`The value '${limitText}' is not valid for limit.`];
  const connectionMode = query.get("connectionMode") ?? undefined;
  const options: QueryOptions = {
    includePorts: flag("includePorts"),
    includeAccessControl: flag("includeAccessControl"),
    tokenScopes,
    forceRename: flag("forceRename"),
    labels,
    allLabels: flag("allLabels"),
    ...(limit !== undefined ? { limit } : {}),
    global: flag("global"),
    ...(connectionMode !== undefined ? { connectionMode } : {}),
  };
  return Object.keys(errors).length > 0 ? Problems.validation(errors) : options;
}
