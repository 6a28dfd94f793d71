// The Dev Tunnels management API through the SDK's TunnelManagementHttpClient (the one
// module that drives it). The SDK mutates what it is given (createTunnel sets ids, port calls
// patch `tunnel.ports`): every call gets a fresh object.
import type { Tunnel, TunnelAccessControlEntry, TunnelPort } from "@microsoft/dev-tunnels-contracts";
import { ManagementApiVersions, TunnelManagementHttpClient } from "@microsoft/dev-tunnels-management";
import { ProviderError } from "@ktube/provider-kit";
import type { TokenSource } from "./credentials.ts";
import { fromSdkError, statusOf } from "./errors.ts";
import { isOurs, OWNER_LABEL, ownerLabel, routeLabel, tunnelLabel } from "./identity.ts";
import type { PortPlan } from "./ports.ts";

export const DEFAULT_SERVICE_URI = "https://global.rel.tunnels.api.visualstudio.com/";
const USER_AGENT = { name: "ktube-devtunnels-controller", version: "0.1.0" };

export function managementClient(token: TokenSource, serviceUri = DEFAULT_SERVICE_URI): TunnelManagementHttpClient {
  return new TunnelManagementHttpClient(USER_AGENT, ManagementApiVersions.Version20230927preview, () => token(), serviceUri);
}

export interface DesiredTunnel {
  tunnelId: string;
  /** The cluster to create in (status keeps it after the first create; spec.region before). */
  region?: string;
  ownerId: string;
  tunnelUid: string;
  description: string;
  access: "Public" | "Private";
  /** Requested lifetime without activity, in seconds. */
  expirationS?: number;
}

export interface EnsuredTunnel {
  tunnel: Tunnel;
  /** Made by this call (a first create, or again after the service expired it). */
  created: boolean;
}

const anonymousConnect: TunnelAccessControlEntry = { type: "Anonymous" as TunnelAccessControlEntry["type"], subjects: [], scopes: ["connect"] };

function desiredShape(want: DesiredTunnel): Tunnel {
  return {
    tunnelId: want.tunnelId,
    ...(want.region ? { clusterId: want.region } : {}),
    labels: [OWNER_LABEL, ownerLabel(want.ownerId), tunnelLabel(want.tunnelUid)],
    description: want.description,
    accessControl: { entries: want.access === "Public" ? [anonymousConnect] : [] },
    ...(want.expirationS ? { customExpiration: want.expirationS } : {}),
  };
}

/** What we manage of a tunnel, for drift: labels, description, anonymous access, expiration asked. */
function projection(t: Tunnel): string {
  const anonymous = (t.accessControl?.entries ?? []).some((e) => String(e.type) === "Anonymous" && !e.isInherited && e.scopes.includes("connect"));
  return JSON.stringify({ labels: [...(t.labels ?? [])].sort(), description: t.description ?? "", anonymous, expiration: t.customExpiration ?? null });
}

/**
 * The dev tunnel, made if absent. Found by id in its region (or by its labels when the
 * region is not known yet); a 409 on create for a tunnel that is not ours is TunnelIdConflict,
 * never adopted. Drift of what we manage is put back.
 */
export async function ensureDevTunnel(client: TunnelManagementHttpClient, want: DesiredTunnel): Promise<EnsuredTunnel> {
  let found = await findTunnel(client, want);
  if (!found) {
    try {
      const created = await client.createTunnel(desiredShape(want), { tokenScopes: ["host"], includePorts: true });
      return { tunnel: created, created: true };
    } catch (error) {
      if (statusOf(error) !== 409) throw fromSdkError(error, "creating the dev tunnel");
      found = await findTunnel(client, { ...want, region: undefined });
      if (!found || !isOurs(found.labels, want.ownerId)) {
        throw new ProviderError("TunnelIdConflict", `a dev tunnel ${want.tunnelId} exists and is not this Tunnel's (no KTube labels); KTube will not take it over`, { terminal: true });
      }
    }
  }
  if (!isOurs(found.labels, want.ownerId) || !found.labels?.includes(tunnelLabel(want.tunnelUid))) {
    throw new ProviderError("TunnelIdConflict", `the dev tunnel ${want.tunnelId} is not this Tunnel's; KTube will not take it over`, { terminal: true });
  }
  const desired = { ...desiredShape(want), clusterId: found.clusterId! };
  if (projection(found) !== projection(desired)) {
    try {
      const updated = await client.updateTunnel(desired, { tokenScopes: ["host"], includePorts: true });
      return { tunnel: { ...updated, ports: found.ports ?? [] }, created: false };
    } catch (error) {
      throw fromSdkError(error, "updating the dev tunnel");
    }
  }
  return { tunnel: found, created: false };
}

async function findTunnel(client: TunnelManagementHttpClient, want: DesiredTunnel): Promise<Tunnel | undefined> {
  try {
    if (want.region) {
      return (await client.getTunnel({ tunnelId: want.tunnelId, clusterId: want.region }, { tokenScopes: ["host"], includePorts: true })) ?? undefined;
    }
    const listed = await client.listTunnels(undefined, undefined, { labels: [tunnelLabel(want.tunnelUid)], includePorts: true });
    const match = listed.find((t) => t.tunnelId === want.tunnelId);
    // The list carries no tokens: read it again in its region for the host token.
    return match ? ((await client.getTunnel({ tunnelId: match.tunnelId, clusterId: match.clusterId }, { tokenScopes: ["host"], includePorts: true })) ?? undefined) : undefined;
  } catch (error) {
    if (statusOf(error) === 404) return undefined;
    throw fromSdkError(error, "reading the dev tunnel");
  }
}

/**
 * Brings the tunnel's ports to the plan: creates missing ones, re-creates those whose
 * protocol changed (the service refuses to change it in place), deletes our ports no route
 * wants. Ports without our label are left alone. Returns the ports by number.
 */
export async function syncPorts(client: TunnelManagementHttpClient, tunnel: Tunnel, plan: readonly PortPlan[]): Promise<Map<number, TunnelPort>> {
  const ref = { tunnelId: tunnel.tunnelId, clusterId: tunnel.clusterId };
  const live = new Map((tunnel.ports ?? []).map((p) => [p.portNumber, p]));
  const wanted = new Set(plan.map((p) => p.port));
  try {
    for (const [number, port] of live) {
      const ours = port.labels?.some((l) => l.startsWith("ktube-route="));
      const want = plan.find((p) => p.port === number);
      if (ours && (!wanted.has(number) || (want && (port.protocol !== want.protocol || !port.labels?.includes(routeLabel(want.key)))))) {
        await client.deleteTunnelPort({ ...ref }, number);
        live.delete(number);
      }
    }
    for (const p of plan) {
      if (live.has(p.port)) continue;
      const created = await client.createTunnelPort({ ...ref }, { portNumber: p.port, protocol: p.protocol, labels: [routeLabel(p.key)] }, { tokenScopes: ["host"] });
      live.set(p.port, created);
    }
  } catch (error) {
    throw fromSdkError(error, "updating the dev tunnel's ports");
  }
  return live;
}

/** Deletes the dev tunnel (its ports go with it); gone already is fine. */
export async function deleteDevTunnel(client: TunnelManagementHttpClient, tunnelId: string, region: string): Promise<void> {
  try {
    await client.deleteTunnel({ tunnelId, clusterId: region });
  } catch (error) {
    if (statusOf(error) !== 404) throw fromSdkError(error, "deleting the dev tunnel");
  }
}

/** This installation's dev tunnels on the account (for the orphan sweep). */
export async function listOwnedTunnels(client: TunnelManagementHttpClient, ownerId: string): Promise<Tunnel[]> {
  try {
    const listed = await client.listTunnels(undefined, undefined, { labels: [OWNER_LABEL, ownerLabel(ownerId)], requireAllLabels: true });
    return listed.filter((t) => isOurs(t.labels, ownerId));
  } catch (error) {
    throw fromSdkError(error, "listing dev tunnels");
  }
}
