// The tunnel's WireGuard side in the cluster: addresses in the tunnel network (the VPS is
// the first host, uplink replica i the (2+i)th) and the keys, derived from the controller's
// seed (see deriveTunnelKeys).
import type { EdgeTunnelSpec } from "@ktube/api";
import { hkdfSync } from "node:crypto";
import type { WireGuardSettings } from "./vps-files.ts";
import { wireGuardPublicKey } from "./wireguard-keys.ts";

export interface TunnelAddresses {
  /** The VPS's address with the network's prefix, e.g. 10.200.0.1/24. */
  vps: string;
  /** One per uplink replica, plain addresses. */
  uplinks: string[];
}

const toInt = (ip: string): number => ip.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
const toIp = (n: number): string => [24, 16, 8, 0].map((shift) => (n >>> shift) & 255).join(".");

export function tunnelAddresses(network: string, replicas: number): TunnelAddresses {
  const [base = "10.200.0.0", bits = "24"] = network.split("/");
  const prefix = Number(bits);
  const first = (toInt(base) & (prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0)) >>> 0;
  return { vps: `${toIp(first + 1)}/${prefix}`, uplinks: Array.from({ length: replicas }, (_, i) => toIp(first + 2 + i)) };
}

export interface TunnelKeys {
  vps: string;
  /** Private keys by replica index. */
  uplinks: string[];
}

/** The controller's seed: a Secret in its own namespace, made on first use. */
export const WIREGUARD_SEED_SECRET = "ktube-edge-wireguard-seed";
export const WIREGUARD_SEED_KEY = "seed";

/**
 * A Tunnel's keys, derived from the controller's seed and the Tunnel's uid (HKDF-SHA256,
 * clamped as `wg genkey` clamps): the same on every reconcile and every controller replica,
 * so the controller never stores or reads back a key in a Tunnel's namespace (it may write
 * the uplinks' key Secret but need not read any Secret there). A new seed gives every
 * Tunnel new keys, which the next reconcile puts on the VPS and in the uplinks' Secret.
 */
export function deriveTunnelKeys(seed: Buffer, tunnelUid: string, replicas: number): TunnelKeys {
  const key = (purpose: string): string => {
    const raw = Buffer.from(hkdfSync("sha256", seed, tunnelUid, `ktube edge wireguard ${purpose}`, 32));
    raw[0]! &= 248;
    raw[31] = (raw[31]! & 127) | 64;
    return raw.toString("base64");
  };
  return { vps: key("vps"), uplinks: Array.from({ length: replicas }, (_, i) => key(`uplink ${i}`)) };
}

export function wireguardSettings(edge: EdgeTunnelSpec, keys: TunnelKeys, addresses: TunnelAddresses): WireGuardSettings {
  return {
    privateKey: keys.vps,
    listenPort: edge.wireguard.listenPort,
    address: addresses.vps,
    mtu: edge.wireguard.mtu,
    peers: keys.uplinks.map((key, i) => ({ publicKey: wireGuardPublicKey(key)!, allowedIp: `${addresses.uplinks[i]}/32` })),
  };
}
