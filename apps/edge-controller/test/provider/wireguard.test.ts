// WireGuard keys made in the cluster are the keys `wg` makes, and the tunnel's addresses.
import { describe, expect, it } from "@jest/globals";
import { execFileSync } from "node:child_process";
import { generateWireGuardKeyPair, wireGuardPublicKey } from "../../src/provider/wireguard-keys.ts";
import { deriveTunnelKeys, tunnelAddresses } from "../../src/provider/wireguard.ts";

function wg(args: string[], input?: string): string {
  try {
    return execFileSync("wg", args, { input, encoding: "utf8" }).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new Error("this test needs wg: apt-get install -y wireguard-tools");
    throw error;
  }
}

describe("WireGuard keys", () => {
  it("makes key pairs whose public key is the one `wg pubkey` derives", () => {
    for (let i = 0; i < 5; i++) {
      const pair = generateWireGuardKeyPair();
      expect(wg(["pubkey"], pair.privateKey)).toBe(pair.publicKey);
      expect(wireGuardPublicKey(pair.privateKey)).toBe(pair.publicKey);
    }
    const fromWg = wg(["genkey"]);
    expect(wireGuardPublicKey(fromWg)).toBe(wg(["pubkey"], fromWg));
    expect(wireGuardPublicKey("not a key")).toBeUndefined();
  });

  it("derives each Tunnel's keys from the seed: the same every time, different per Tunnel and per seed, and keys `wg` accepts", () => {
    const seed = Buffer.alloc(32, 7);
    const first = deriveTunnelKeys(seed, "uid-1", 2);
    expect(deriveTunnelKeys(seed, "uid-1", 2)).toEqual(first);
    // More replicas keep the keys the others have.
    const more = deriveTunnelKeys(seed, "uid-1", 3);
    expect(more.vps).toBe(first.vps);
    expect(more.uplinks.slice(0, 2)).toEqual(first.uplinks);
    const all = [first.vps, ...more.uplinks, deriveTunnelKeys(seed, "uid-2", 1).vps, deriveTunnelKeys(Buffer.alloc(32, 8), "uid-1", 1).vps];
    expect(new Set(all).size).toBe(all.length);
    for (const key of all) expect(wireGuardPublicKey(key)).toBe(wg(["pubkey"], key));
  });
});

describe("tunnelAddresses", () => {
  it("puts the VPS first and the uplinks after it in the tunnel network", () => {
    expect(tunnelAddresses("10.200.0.0/24", 2)).toEqual({ vps: "10.200.0.1/24", uplinks: ["10.200.0.2", "10.200.0.3"] });
    expect(tunnelAddresses("172.16.5.77/28", 1)).toEqual({ vps: "172.16.5.65/28", uplinks: ["172.16.5.66"] });
  });
});
