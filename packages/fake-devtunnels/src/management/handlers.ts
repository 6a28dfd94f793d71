// The operations, on the shared in-memory service. Requests reach these already matched,
// rate-limited, authenticated (the caller is known) and validated against the contracts.
import {
  ClusterAvailability,
  TunnelConnectionMode,
  type ClusterRecommendationResponse,
  type NamedRateStatus,
  type Tunnel,
  type TunnelAccessControl,
  type TunnelEndpoint,
  type TunnelPort,
  type TunnelRelayTunnelEndpoint,
  TunnelEndpoint as TunnelEndpointStatics,
} from "@microsoft/dev-tunnels-contracts";
import type { LocalNetworkTunnelEndpoint } from "@microsoft/dev-tunnels-contracts/localNetworkTunnelEndpoint.js";
import type { DevTunnelsService, StoredTunnel } from "../service.ts";
import { authorize, mayIssue, type Caller } from "./auth.ts";
import { Patterns } from "./contract-schema.ts";
import { LimitNames, ManagementError, Problems } from "./problems.ts";
import { portForwardingUris, renderPort, renderTunnel } from "./render.ts";
import type { QueryOptions, RouteMatch } from "./routes.ts";

/** The CLI's documented range for `--expiration` (cli-commands.md): 1 hour to 30 days, in seconds. */
export const CUSTOM_EXPIRATION_RANGE = { min: 3600, max: 30 * 24 * 3600 } as const;

export interface HandlerConfig {
  service: DevTunnelsService;
  /** The fake's base URL (`http://localhost:PORT`), for cluster URIs. */
  baseUrl: () => string;
  relayUri: (tunnelId: string) => string;
  clientRelayUri: (tunnelId: string) => string;
  webForwardingBase: (tunnelId: string, port: number | string) => string;
  limitExceededStatus: number;
  expirationClampMs: number | undefined;
}

export interface OperationRequest {
  route: RouteMatch;
  options: QueryOptions;
  caller: Caller;
  /** The validated JSON body (undefined when the route takes none). */
  body: unknown;
}

export interface Answer {
  status: number;
  body?: unknown;
}

const ok = (body?: unknown): Answer => ({ status: 200, ...(body === undefined ? {} : { body }) });

function requireUser(caller: Caller): string {
  if (caller.kind === "user") return caller.identity;
  if (caller.kind === "anonymous") throw Problems.unauthorized("This operation requires authentication.");
  throw Problems.forbidden("A tunnel access token cannot be used for this operation.");
}

function findTunnel(config: HandlerConfig, req: OperationRequest): StoredTunnel {
  const id = req.route.tunnelId!;
  const stored = config.service.tunnels.get(id);
  if (!stored) throw Problems.tunnelNotFound(id);
  const denied = authorize(req.caller, req.route.operation, stored);
  if (denied) throw denied;
  return stored;
}

/** Issues the tokens `tokenScopes` asks for; a scope the caller may not get is left out (the request still succeeds). */
function issueTokens(config: HandlerConfig, req: OperationRequest, stored: StoredTunnel): Record<string, string> {
  const tokens: Record<string, string> = {};
  for (const combination of req.options.tokenScopes) {
    if (mayIssue(req.caller, stored, combination)) tokens[combination] = config.service.issueToken(stored, combination.split(" "));
  }
  return tokens;
}

const ownEntries = (acl: TunnelAccessControl | undefined): TunnelAccessControl | undefined =>
  acl ? { entries: acl.entries.filter((e) => !e.isInherited) } : undefined;

function expiresAt(config: HandlerConfig, customExpiration: number | undefined): number {
  const wanted = customExpiration !== undefined ? customExpiration * 1000 : config.service.defaultExpirationMs;
  return config.service.now() + Math.min(wanted, config.expirationClampMs ?? Number.POSITIVE_INFINITY);
}

function checkExpiration(value: number | undefined): void {
  if (value === undefined || value === null) return;
  if (value < CUSTOM_EXPIRATION_RANGE.min || value > CUSTOM_EXPIRATION_RANGE.max) {
    throw Problems.validation({
      customExpiration: [`The expiration must be between ${CUSTOM_EXPIRATION_RANGE.min} and ${CUSTOM_EXPIRATION_RANGE.max} seconds.`],
    });
  }
}

function limitExceeded(config: HandlerConfig, limit: string, max: number, what: string): ManagementError {
  return Problems.limitExceeded(config.limitExceededStatus, limit, max, what);
}

// --- clusters and limits -----------------------------------------------------------

function listClusters(config: HandlerConfig): Answer {
  return ok([{ clusterId: config.service.clusterId, uri: `${config.baseUrl()}/`, azureLocation: "local" }]);
}

function getClusterRecommendations(config: HandlerConfig, req: OperationRequest, query: URLSearchParams): Answer {
  const clusterId = config.service.clusterId;
  const preferred = query.get("preferredClusterId");
  const response: ClusterRecommendationResponse = {
    ...(preferred ? { preferredClusterId: preferred } : {}),
    recommendedClusterId: clusterId,
    isFallback: false,
    recommendations: [
      {
        clusterId,
        azureLocation: "local",
        azureGeo: "local",
        clusterUri: `${config.baseUrl()}/`,
        availability: ClusterAvailability.Available,
        utilizationPercent: 0,
        reason: "The only cluster of the fake.",
      },
    ],
  };
  return ok(response);
}

function listUserLimits(config: HandlerConfig, req: OperationRequest): Answer {
  const identity = requireUser(req.caller);
  const limits: NamedRateStatus[] = [
    { name: LimitNames.tunnelsPerUser, current: config.service.tunnelsOf(identity).length, limit: config.service.limits.maxTunnelsPerUser },
  ];
  return ok(limits);
}

function checkNameAvailability(config: HandlerConfig, req: OperationRequest): Answer {
  const name = req.route.name ?? "";
  return ok(![...config.service.tunnels.values()].some((t) => t.tunnel.name === name || t.tunnel.tunnelId === name));
}

// --- tunnels -----------------------------------------------------------------------

function matchesLabels(have: readonly string[] | undefined, want: readonly string[], all: boolean): boolean {
  if (want.length === 0) return true;
  const set = new Set(have ?? []);
  return all ? want.every((l) => set.has(l)) : want.some((l) => set.has(l));
}

function listTunnels(config: HandlerConfig, req: OperationRequest, query: URLSearchParams): Answer {
  const identity = requireUser(req.caller);
  const domain = query.get("domain");
  let tunnels = config.service
    .tunnelsOf(identity)
    .filter((s) => matchesLabels(s.tunnel.labels, req.options.labels, req.options.allLabels))
    .filter((s) => !domain || s.tunnel.domain === domain)
    .sort((a, b) => a.created - b.created);
  if (req.options.limit !== undefined) tunnels = tunnels.slice(0, req.options.limit);
  const value = tunnels.map((s) =>
    renderTunnel(config.service, s, { ...req.options, accessTokens: issueTokens(config, req, s) }),
  );
  return ok({ value: [{ regionName: "local", clusterId: config.service.clusterId, value }] });
}

function getTunnel(config: HandlerConfig, req: OperationRequest): Answer {
  const stored = findTunnel(config, req);
  // "Access control details are always included when retrieving a single tunnel" (TunnelRequestOptions).
  return ok(renderTunnel(config.service, stored, { ...req.options, includeAccessControl: true, accessTokens: issueTokens(config, req, stored) }));
}

function checkNameFree(config: HandlerConfig, req: OperationRequest, name: string | undefined, tunnelId: string): void {
  if (!name) return;
  for (const other of config.service.tunnels.values()) {
    if (other.tunnel.tunnelId === tunnelId || other.tunnel.name !== name) continue;
    if (!req.options.forceRename) throw Problems.tunnelNameTaken(name);
    delete other.tunnel.name;
  }
}

/** Adds or replaces a port from a request body (limit and protocol rules applied). */
function putPort(config: HandlerConfig, stored: StoredTunnel, body: TunnelPort): TunnelPort {
  const existing = stored.ports.get(body.portNumber);
  if (!existing && stored.ports.size >= config.service.limits.maxPortsPerTunnel) {
    const max = config.service.limits.maxPortsPerTunnel;
    throw limitExceeded(config, LimitNames.portsPerTunnel, max, `tunnel '${stored.tunnel.tunnelId}' already has ${stored.ports.size} ports`);
  }
  if (existing && body.protocol !== undefined && body.protocol !== null && body.protocol !== existing.protocol) throw Problems.protocolChange();
  const tunnelId = stored.tunnel.tunnelId!;
  const port: TunnelPort = {
    ...(existing ?? {}),
    ...definedFields(body, ["name", "description", "labels", "protocol", "isDefault", "sshUser", "options"]),
    portNumber: body.portNumber,
    clusterId: stored.tunnel.clusterId,
    tunnelId,
  };
  port.protocol ??= "auto";
  port.labels ??= [];
  if (body.accessControl) port.accessControl = ownEntries(body.accessControl)!;
  port.portForwardingUris = portForwardingUris(config.webForwardingBase, tunnelId, port);
  stored.ports.set(port.portNumber, port);
  return port;
}

/** The fields of `body` named in `keys` that are present and not null. */
function definedFields<T extends object>(body: T, keys: ReadonlyArray<keyof T>): Partial<T> {
  const out: Partial<T> = {};
  for (const key of keys) if (body[key] !== undefined && body[key] !== null) out[key] = body[key];
  return out;
}

const TUNNEL_PROPERTIES = ["name", "description", "labels", "domain", "options", "customExpiration"] as const;

function createTunnelFrom(config: HandlerConfig, req: OperationRequest, tunnelId: string, body: Tunnel): Answer {
  const identity = requireUser(req.caller);
  const service = config.service;
  const max = service.limits.maxTunnelsPerUser;
  const owned = service.tunnelsOf(identity).length;
  if (owned >= max) throw limitExceeded(config, LimitNames.tunnelsPerUser, max, `the user already has ${owned} tunnels`);
  if ((body.ports?.length ?? 0) > service.limits.maxPortsPerTunnel) {
    throw limitExceeded(config, LimitNames.portsPerTunnel, service.limits.maxPortsPerTunnel, `the tunnel would have ${body.ports!.length} ports`);
  }
  checkNameFree(config, req, body.name, tunnelId);
  const now = service.now();
  const tunnel: Tunnel = {
    ...definedFields(body, TUNNEL_PROPERTIES),
    clusterId: service.clusterId,
    tunnelId,
    labels: body.labels ?? [],
    accessControl: ownEntries(body.accessControl) ?? { entries: [] },
  };
  const stored: StoredTunnel = {
    owner: identity,
    tunnel,
    ports: new Map(),
    endpoints: new Map(),
    tokens: new Map(),
    created: now,
    expires: expiresAt(config, tunnel.customExpiration),
  };
  for (const port of body.ports ?? []) putPort(config, stored, port);
  service.tunnels.set(tunnelId, stored);
  return ok(renderTunnel(service, stored, { ...req.options, includeAccessControl: true, accessTokens: issueTokens(config, req, stored) }));
}

function updateTunnelFrom(config: HandlerConfig, req: OperationRequest, stored: StoredTunnel, body: Tunnel): Answer {
  const denied = authorize(req.caller, req.route.operation, stored);
  if (denied) throw denied;
  checkNameFree(config, req, body.name, stored.tunnel.tunnelId!);
  Object.assign(stored.tunnel, definedFields(body, TUNNEL_PROPERTIES));
  if (body.accessControl) stored.tunnel.accessControl = ownEntries(body.accessControl)!;
  // Ports sent with an update are added or replaced (none removed); endpoints are the host's business.
  for (const port of body.ports ?? []) putPort(config, stored, port);
  // Any update is activity: the idle expiration starts again.
  stored.expires = expiresAt(config, stored.tunnel.customExpiration);
  return ok(renderTunnel(config.service, stored, { ...req.options, includeAccessControl: true, accessTokens: issueTokens(config, req, stored) }));
}

function putTunnel(config: HandlerConfig, req: OperationRequest): Answer {
  const tunnelId = req.route.tunnelId!;
  const body = req.body as Tunnel;
  const errors: Record<string, string[]> = {};
  if (!Patterns.tunnelId.test(tunnelId)) errors["tunnelId"] = [`The tunnel ID '${tunnelId}' must match '${Patterns.tunnelId.source}'.`];
  if (body.tunnelId && body.tunnelId !== tunnelId) errors["tunnelId"] = [`The body's tunnelId '${body.tunnelId}' differs from the path's '${tunnelId}'.`];
  if (body.clusterId && body.clusterId !== config.service.clusterId) errors["clusterId"] = [`This cluster is '${config.service.clusterId}'.`];
  if (Object.keys(errors).length > 0) throw Problems.validation(errors);
  checkExpiration(body.customExpiration);

  const existing = config.service.tunnels.get(tunnelId);
  switch (req.route.operation) {
    case "createTunnel":
      if (existing) throw Problems.tunnelExists(tunnelId);
      return createTunnelFrom(config, req, tunnelId, body);
    case "updateTunnel":
      if (!existing) throw Problems.tunnelNotFound(tunnelId);
      return updateTunnelFrom(config, req, existing, body);
    default:
      return existing ? updateTunnelFrom(config, req, existing, body) : createTunnelFrom(config, req, tunnelId, body);
  }
}

function deleteTunnel(config: HandlerConfig, req: OperationRequest): Answer {
  const stored = findTunnel(config, req);
  const id = stored.tunnel.tunnelId!;
  config.service.relay?.dropHost(id);
  config.service.tunnels.delete(id);
  return ok();
}

// --- ports -------------------------------------------------------------------------

function listTunnelPorts(config: HandlerConfig, req: OperationRequest): Answer {
  const stored = findTunnel(config, req);
  const ports = [...stored.ports.values()]
    .filter((p) => matchesLabels(p.labels, req.options.labels, req.options.allLabels))
    .sort((a, b) => a.portNumber - b.portNumber);
  return ok({ value: ports.map((p) => renderPort(stored, p)) });
}

function getTunnelPort(config: HandlerConfig, req: OperationRequest): Answer {
  const stored = findTunnel(config, req);
  const port = stored.ports.get(req.route.portNumber!);
  if (!port) throw Problems.portNotFound(stored.tunnel.tunnelId!, req.route.portNumber!);
  return ok(renderPort(stored, port, issueTokens(config, req, stored)));
}

function putTunnelPort(config: HandlerConfig, req: OperationRequest): Answer {
  const stored = findTunnel(config, req);
  const body = req.body as TunnelPort;
  const portNumber = req.route.portNumber!;
  const errors: Record<string, string[]> = {};
  if (portNumber < 1 || portNumber > 65535) errors["portNumber"] = ["The port number must be between 1 and 65535."];
  if (body.portNumber !== portNumber) errors["portNumber"] = [`The body's portNumber ${body.portNumber} differs from the path's ${portNumber}.`];
  if (body.tunnelId && body.tunnelId !== stored.tunnel.tunnelId) errors["tunnelId"] = ["The port's tunnelId differs from the path's."];
  if (Object.keys(errors).length > 0) throw Problems.validation(errors);
  const existing = stored.ports.get(portNumber);
  if (req.route.operation === "createTunnelPort" && existing) throw Problems.portExists(stored.tunnel.tunnelId!, portNumber);
  if (req.route.operation === "updateTunnelPort" && !existing) throw Problems.portNotFound(stored.tunnel.tunnelId!, portNumber);
  const port = putPort(config, stored, body);
  return ok(renderPort(stored, port, issueTokens(config, req, stored)));
}

function deleteTunnelPort(config: HandlerConfig, req: OperationRequest): Answer {
  const stored = findTunnel(config, req);
  if (!stored.ports.delete(req.route.portNumber!)) throw Problems.portNotFound(stored.tunnel.tunnelId!, req.route.portNumber!);
  return ok();
}

// --- endpoints and events ----------------------------------------------------------

function updateTunnelEndpoint(config: HandlerConfig, req: OperationRequest): Answer {
  const stored = findTunnel(config, req);
  const body = req.body as TunnelEndpoint & { hostEndpoints?: string[] };
  const endpointId = req.route.endpointId!;
  const errors: Record<string, string[]> = {};
  if (req.options.connectionMode !== body.connectionMode) errors["connectionMode"] = ["The query's connectionMode differs from the body's."];
  if (body.id && body.id !== endpointId) errors["id"] = [`The body's id '${body.id}' differs from the path's '${endpointId}'.`];
  if (Object.keys(errors).length > 0) throw Problems.validation(errors);
  const tunnelId = stored.tunnel.tunnelId!;
  // One endpoint per host and connection mode (the SDK replaces its local copy the same way).
  for (const [id, e] of stored.endpoints) if (id !== endpointId && e.hostId === body.hostId && e.connectionMode === body.connectionMode) stored.endpoints.delete(id);
  const common: TunnelEndpoint = {
    id: endpointId,
    connectionMode: body.connectionMode,
    hostId: body.hostId,
    hostPublicKeys: body.hostPublicKeys ?? [],
    portUriFormat: config.webForwardingBase(tunnelId, TunnelEndpointStatics.portToken),
  };
  let endpoint: TunnelEndpoint;
  if (body.connectionMode === TunnelConnectionMode.TunnelRelay) {
    const relay: TunnelRelayTunnelEndpoint = { ...common, hostRelayUri: config.relayUri(tunnelId), clientRelayUri: config.clientRelayUri(tunnelId) };
    endpoint = relay;
  } else {
    const local: LocalNetworkTunnelEndpoint = { ...common, hostEndpoints: body.hostEndpoints ?? [] };
    endpoint = local;
  }
  stored.endpoints.set(endpointId, endpoint);
  return ok(endpoint);
}

function deleteTunnelEndpoints(config: HandlerConfig, req: OperationRequest): Answer {
  const stored = findTunnel(config, req);
  const id = req.route.endpointId!;
  // By endpoint id (the TS SDK) or by host id (the Rust SDK the VS Code CLI uses).
  const doomed = [...stored.endpoints].filter(([eid, e]) => eid === id || e.hostId === id).map(([eid]) => eid);
  if (doomed.length === 0) throw Problems.endpointNotFound(stored.tunnel.tunnelId!, id);
  for (const eid of doomed) stored.endpoints.delete(eid);
  return ok();
}

function reportEvents(config: HandlerConfig, req: OperationRequest): Answer {
  findTunnel(config, req);
  return ok();
}

/** Runs the operation; throws ManagementError for an error answer. */
export function runOperation(config: HandlerConfig, req: OperationRequest, query: URLSearchParams): Answer {
  switch (req.route.operation) {
    case "listClusters":
      return listClusters(config);
    case "getClusterRecommendations":
      return getClusterRecommendations(config, req, query);
    case "listUserLimits":
      return listUserLimits(config, req);
    case "checkNameAvailability":
      return checkNameAvailability(config, req);
    case "listTunnels":
      return listTunnels(config, req, query);
    case "getTunnel":
      return getTunnel(config, req);
    case "createTunnel":
    case "updateTunnel":
    case "createOrUpdateTunnel":
      return putTunnel(config, req);
    case "deleteTunnel":
      return deleteTunnel(config, req);
    case "listTunnelPorts":
      return listTunnelPorts(config, req);
    case "getTunnelPort":
      return getTunnelPort(config, req);
    case "createTunnelPort":
    case "updateTunnelPort":
    case "createOrUpdateTunnelPort":
      return putTunnelPort(config, req);
    case "deleteTunnelPort":
      return deleteTunnelPort(config, req);
    case "updateTunnelEndpoint":
      return updateTunnelEndpoint(config, req);
    case "deleteTunnelEndpoints":
      return deleteTunnelEndpoints(config, req);
    case "reportEvents":
      return reportEvents(config, req);
  }
}
