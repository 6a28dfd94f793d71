// The cfd_tunnel of a Tunnel: found by its deterministic name, or created.
import type { Tunnel } from "@ktube/api";
import { CloudflareError, type CloudflareApi } from "./api.ts";
import type { IngressConfig } from "./ingress.ts";

export interface CfTunnel {
  id: string;
  name: string;
  status?: string;
  connections?: unknown[];
  deleted_at?: string | null;
}

/** `ktube-<namespace>-<name>-<uid prefix>`: the same object always maps to the same tunnel. */
export function tunnelName(tunnel: Tunnel): string {
  return `ktube-${tunnel.metadata.namespace}-${tunnel.metadata.name}-${String(tunnel.metadata.uid).slice(0, 8)}`;
}

export async function findTunnelByName(api: CloudflareApi, name: string): Promise<CfTunnel | undefined> {
  const found = await api.all("tunnels.list", (sdk) => sdk.zeroTrust.tunnels.cloudflared.list({ account_id: api.accountId, name, is_deleted: false, per_page: 100 }));
  return found.find((t) => t.name === name && !t.deleted_at) as CfTunnel | undefined;
}

/**
 * Returns the tunnel named `name`, creating it if none exists. A create that fails
 * with 1013 (name taken: an earlier attempt did create it) looks it up again.
 */
export async function findOrCreateTunnel(api: CloudflareApi, name: string): Promise<CfTunnel> {
  const existing = await findTunnelByName(api, name);
  if (existing) return existing;
  try {
    return (await api.call("tunnels.create", (sdk) =>
      sdk.zeroTrust.tunnels.cloudflared.create({ account_id: api.accountId, name, config_src: "cloudflare" }),
    )) as CfTunnel;
  } catch (error) {
    if (error instanceof CloudflareError && error.code === 1013) {
      const found = await findTunnelByName(api, name);
      if (found) return found;
    }
    throw error;
  }
}

export async function getTunnel(api: CloudflareApi, id: string): Promise<CfTunnel | undefined> {
  try {
    return (await api.call("tunnels.get", (sdk) => sdk.zeroTrust.tunnels.cloudflared.get(id, { account_id: api.accountId }))) as CfTunnel;
  } catch (error) {
    if (error instanceof CloudflareError && error.status === 404) return undefined;
    throw error;
  }
}

export async function tunnelToken(api: CloudflareApi, id: string): Promise<string> {
  return String(await api.call("tunnels.token.get", (sdk) => sdk.zeroTrust.tunnels.cloudflared.token.get(id, { account_id: api.accountId })));
}

export async function getIngressConfig(api: CloudflareApi, id: string): Promise<IngressConfig | undefined> {
  const result = await api.call("tunnels.configurations.get", (sdk) => sdk.zeroTrust.tunnels.cloudflared.configurations.get(id, { account_id: api.accountId }));
  return (result.config as IngressConfig | null | undefined) ?? undefined;
}

export async function putIngressConfig(api: CloudflareApi, id: string, config: IngressConfig): Promise<void> {
  await api.call("tunnels.configurations.update", (sdk) =>
    sdk.zeroTrust.tunnels.cloudflared.configurations.update(id, { account_id: api.accountId, config: config as never }),
  );
}

/** Drops the tunnel's connections, then deletes it; a tunnel already gone counts as deleted. */
export async function deleteTunnel(api: CloudflareApi, id: string): Promise<void> {
  try {
    await api.call("tunnels.connections.delete", (sdk) => sdk.zeroTrust.tunnels.cloudflared.connections.delete(id, { account_id: api.accountId }));
    await api.call("tunnels.delete", (sdk) => sdk.zeroTrust.tunnels.cloudflared.delete(id, { account_id: api.accountId }));
  } catch (error) {
    if (error instanceof CloudflareError && error.status === 404) return;
    throw error;
  }
}
