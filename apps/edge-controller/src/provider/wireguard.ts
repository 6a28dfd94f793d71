// The tunnel's WireGuard side in the cluster: addresses in the tunnel network (the VPS is
// the first host, uplink replica i the (2+i)th) and the keys, generated here and kept only
// in the Tunnel's own Secret `<tunnel>-edge-wireguard` (`vps.key`, `uplink-<i>.key`).
import type { EdgeTunnelSpec } from "@ktube/api";
import type { TunnelObject } from "@ktube/provider-kit";
import type { KubeObject } from "@ktube/runtime";
import type { WireGuardSettings } from "./vps-files.ts";
import { generateWireGuardKeyPair, wireGuardPublicKey } from "./wireguard-keys.ts";

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

type SecretObject = KubeObject & { data?: Record<string, string> };

/**
 * The keys in the Tunnel's Secret, plus the Secret to write when keys are missing (a new
 * Tunnel, more replicas, a key that is not a key). Existing keys are never replaced.
 */
export function wireguardKeysSecret(tunnel: TunnelObject, live: SecretObject | undefined, replicas: number): { keys: TunnelKeys; secret?: KubeObject } {
  const data: Record<string, string> = { ...(live?.data ?? {}) };
  let changed = !live;
  const keyAt = (name: string): string => {
    const current = data[name] ? Buffer.from(data[name]!, "base64").toString("utf8").trim() : "";
    if (wireGuardPublicKey(current)) return current;
    const fresh = generateWireGuardKeyPair().privateKey;
    data[name] = Buffer.from(fresh).toString("base64");
    changed = true;
    return fresh;
  };
  const keys: TunnelKeys = { vps: keyAt("vps.key"), uplinks: Array.from({ length: replicas }, (_, i) => keyAt(`uplink-${i}.key`)) };
  if (!changed) return { keys };
  return {
    keys,
    secret: {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: `${tunnel.metadata.name}-edge-wireguard`, namespace: tunnel.metadata.namespace! },
      type: "Opaque",
      data,
    } as KubeObject,
  };
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
