// The cfd_tunnel of a Tunnel: found by its deterministic name, or created; its token
// and its remote-managed ingress document.
import type { Tunnel } from "@ktube/api";
import type { CloudflareApi } from "./api.ts";
import * as sdk from "./cloudflare-sdk.ts";
import type { CfTunnel } from "./cloudflare-sdk.ts";
import { CONFIG_PUT_OPERATION, CloudflareError } from "./errors.ts";
import type { IngressConfig } from "./ingress.ts";

export type { CfTunnel } from "./cloudflare-sdk.ts";

/** The schema's maximum for the tunnel list. */
const TUNNELS_PER_PAGE = 1000;

/** Cloudflare's "you already have a tunnel with this name". */
const TUNNEL_NAME_TAKEN = 1013;

/** `ktube-<namespace>-<name>-<uid prefix>`: the same object always maps to the same tunnel. */
export function tunnelName(tunnel: Pick<Tunnel, "metadata">): string {
  return `ktube-${tunnel.metadata.namespace}-${tunnel.metadata.name}-${String(tunnel.metadata.uid).slice(0, 8)}`;
}

/** Every live tunnel of the account, one listing for all (tunnel health, connections). */
export async function listTunnels(api: CloudflareApi): Promise<CfTunnel[]> {
  return (await api.all("tunnels.list", (client) => sdk.tunnelPages(client, api.accountId, TUNNELS_PER_PAGE))).filter((t) => !t.deleted_at);
}

export async function findTunnelByName(api: CloudflareApi, name: string): Promise<CfTunnel | undefined> {
  const found = await api.all("tunnels.list", (client) => sdk.tunnelPages(client, api.accountId, TUNNELS_PER_PAGE, name));
  return found.find((t) => t.name === name && !t.deleted_at);
}

/**
 * Returns the tunnel named `name`, creating it if none exists. Idempotent: a create
 * that committed but answered with an error is found by name on the next attempt, and
 * a create refused with 1013 (name taken: an earlier attempt did create it) looks it up
 * at once.
 */
export async function findOrCreateTunnel(api: CloudflareApi, name: string): Promise<CfTunnel> {
  const existing = await findTunnelByName(api, name);
  if (existing) return existing;
  try {
    return await api.call("tunnels.create", (client) => sdk.createTunnel(client, api.accountId, name));
  } catch (error) {
    if (error instanceof CloudflareError && error.code === TUNNEL_NAME_TAKEN) {
      const found = await findTunnelByName(api, name);
      if (found) return found;
    }
    throw error;
  }
}

/** The tunnel with this id, or undefined when Cloudflare has none (or it is deleted). */
export async function getTunnel(api: CloudflareApi, id: string): Promise<CfTunnel | undefined> {
  try {
    const tunnel = await api.call("tunnels.get", (client) => sdk.getTunnel(client, api.accountId, id));
    return tunnel.deleted_at ? undefined : tunnel;
  } catch (error) {
    if (error instanceof CloudflareError && error.status === 404) return undefined;
    throw error;
  }
}

/** The token cloudflared runs with. A secret: never log it or put it in a message. */
export async function tunnelToken(api: CloudflareApi, id: string): Promise<string> {
  return api.call("tunnels.token.get", (client) => sdk.tunnelToken(client, api.accountId, id));
}

export async function getIngressConfig(api: CloudflareApi, id: string): Promise<IngressConfig | undefined> {
  return api.call("tunnels.configurations.get", (client) => sdk.getTunnelConfig(client, api.accountId, id));
}

/**
 * Replaces the tunnel's ingress document. A 4xx answer (other than 401/403/404/429)
 * throws CloudflareError `ConfigRejected`, terminal: the document itself was refused.
 */
export async function putIngressConfig(api: CloudflareApi, id: string, config: IngressConfig): Promise<void> {
  await api.call(CONFIG_PUT_OPERATION, (client) => sdk.putTunnelConfig(client, api.accountId, id, config));
}

/** Drops the tunnel's connections, then deletes it; a tunnel already gone counts as deleted. */
export async function deleteTunnel(api: CloudflareApi, id: string): Promise<void> {
  try {
    await api.call("tunnels.connections.delete", (client) => sdk.deleteTunnelConnections(client, api.accountId, id));
    await api.call("tunnels.delete", (client) => sdk.deleteTunnel(client, api.accountId, id));
  } catch (error) {
    if (error instanceof CloudflareError && error.status === 404) return;
    throw error;
  }
}
