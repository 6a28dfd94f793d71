// cfd_tunnel: remote-managed tunnels, their configuration, connections and run token.
import { randomBytes, randomUUID } from "node:crypto";
import { type Body, CfError, type Connection, now, type Tunnel } from "./model.ts";
import type { Handler, Route, Store } from "./store.ts";

export function publicTunnel({ secret: _secret, ...tunnel }: Tunnel): Omit<Tunnel, "secret"> {
  return tunnel;
}

function tunnel({ store, params }: Route): Tunnel {
  const found = store.tunnels.get(params.tunnel_id!);
  if (!found || found.account_tag !== params.account_id) throw new CfError(404, 1003, "Tunnel not found");
  return found;
}

function createTunnel(store: Store, account: string, b: Body): Tunnel {
  const name = String(b.name);
  if ([...store.tunnels.values()].some((t) => t.account_tag === account && t.name === name && !t.deleted_at)) {
    throw new CfError(409, 1013, "You already have a tunnel with this name");
  }
  const configSrc = b.config_src === "cloudflare" ? "cloudflare" : "local";
  const created: Tunnel = {
    id: randomUUID(), account_tag: account, name, created_at: now(), deleted_at: null, config_src: configSrc,
    remote_config: configSrc === "cloudflare", status: "inactive", tun_type: "cfd_tunnel", connections: [],
    conns_active_at: null, conns_inactive_at: null, metadata: {},
    secret: typeof b.tunnel_secret === "string" ? b.tunnel_secret : randomBytes(32).toString("base64"),
  };
  store.tunnels.set(created.id, created);
  return created;
}

/** Simulates cloudflared connectors (none run here): `n` healthy connections, or none. */
export function setConnections(target: Tunnel, n: number): void {
  target.connections = Array.from({ length: n }, (_, i): Connection => ({
    id: randomUUID(), colo_name: ["ams", "fra", "lhr", "cdg"][i % 4]!, is_pending_reconnect: false, opened_at: now(),
    origin_ip: "198.51.100.7", uuid: randomUUID(), client_id: randomUUID(), client_version: "2025.11.1",
  }));
  target.status = n > 0 ? "healthy" : "inactive";
  if (n > 0) target.conns_active_at = now();
  else target.conns_inactive_at = now();
}

export const tunnelHandlers: Record<string, Handler> = {
  "tunnels.list": (r) => {
    const q = r.query;
    return r.page(
      [...r.store.tunnels.values()]
        .filter((t) => t.account_tag === r.params.account_id)
        .filter((t) => q.get("is_deleted") !== "false" || !t.deleted_at)
        .filter((t) => !q.get("name") || t.name === q.get("name"))
        .filter((t) => !q.get("uuid") || t.id === q.get("uuid"))
        .map(publicTunnel),
    );
  },
  "tunnels.create": (r) => ({ result: publicTunnel(createTunnel(r.store, r.params.account_id!, r.body)) }),
  "tunnels.get": (r) => ({ result: publicTunnel(tunnel(r)) }),
  "tunnels.edit": (r) => {
    const found = tunnel(r);
    if (typeof r.body.name === "string") found.name = r.body.name;
    return { result: publicTunnel(found) };
  },
  "tunnels.delete": (r) => {
    const found = tunnel(r);
    if (found.connections.length > 0) throw new CfError(400, 1022, "Cannot delete a tunnel with active connections");
    found.deleted_at = now();
    return { result: publicTunnel(found) };
  },
  "tunnels.configurations.get": (r) => {
    const found = tunnel(r);
    const config = r.store.configurations.get(found.id);
    return {
      result: {
        tunnel_id: found.id, account_id: found.account_tag, version: config?.version ?? 0, config: config?.config ?? null,
        source: "cloudflare", created_at: config?.created_at ?? found.created_at,
      },
    };
  },
  "tunnels.configurations.update": (r) => {
    const found = tunnel(r);
    const version = (r.store.configurations.get(found.id)?.version ?? 0) + 1;
    const entry = { version, config: (r.body.config ?? {}) as Record<string, unknown>, created_at: now() };
    r.store.configurations.set(found.id, entry);
    r.store.emit({ type: "configuration", tunnelId: found.id });
    return { result: { tunnel_id: found.id, account_id: found.account_tag, source: "cloudflare", ...entry } };
  },
  "tunnels.connections.get": (r) => {
    const found = tunnel(r);
    const client = { id: randomUUID(), features: [], version: "2025.11.1", arch: "linux_amd64", run_at: now(), conns: found.connections };
    return { result: found.connections.length ? [client] : [] };
  },
  "tunnels.connections.delete": (r) => {
    const found = tunnel(r);
    setConnections(found, 0);
    r.store.emit({ type: "connections-cleanup", tunnelId: found.id });
    return { result: null };
  },
  "tunnels.token.get": (r) => {
    const found = tunnel(r);
    return { result: Buffer.from(JSON.stringify({ a: found.account_tag, t: found.id, s: found.secret })).toString("base64") };
  },
};
