// WireGuard keys made in the cluster are the keys `wg` makes, and the tunnel's addresses.
import { describe, expect, it } from "@jest/globals";
import { execFileSync } from "node:child_process";
import { generateWireGuardKeyPair, wireGuardPublicKey } from "../../src/provider/wireguard-keys.ts";
import { tunnelAddresses, wireguardKeysSecret } from "../../src/provider/wireguard.ts";

const tunnel = { metadata: { name: "edge", namespace: "team", uid: "u1" } } as never;

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

  it("keeps keys already in the Secret, adds missing ones, and asks for no write when nothing is missing", () => {
    const first = wireguardKeysSecret(tunnel, undefined, 1);
    expect(first.secret?.metadata?.name).toBe("edge-edge-wireguard");
    const data = (first.secret as { data: Record<string, string> }).data;
    expect(Object.keys(data).sort()).toEqual(["uplink-0.key", "vps.key"]);

    const same = wireguardKeysSecret(tunnel, { metadata: {}, data }, 1);
    expect(same.secret).toBeUndefined();
    expect(same.keys).toEqual(first.keys);

    const more = wireguardKeysSecret(tunnel, { metadata: {}, data }, 2);
    expect(more.keys.vps).toBe(first.keys.vps);
    expect(more.keys.uplinks[0]).toBe(first.keys.uplinks[0]);
    expect(more.keys.uplinks[1]).toBeDefined();
    expect(Object.keys((more.secret as { data: Record<string, string> }).data).sort()).toEqual(["uplink-0.key", "uplink-1.key", "vps.key"]);
  });
});

describe("tunnelAddresses", () => {
  it("puts the VPS first and the uplinks after it in the tunnel network", () => {
    expect(tunnelAddresses("10.200.0.0/24", 2)).toEqual({ vps: "10.200.0.1/24", uplinks: ["10.200.0.2", "10.200.0.3"] });
    expect(tunnelAddresses("172.16.5.77/28", 1)).toEqual({ vps: "172.16.5.65/28", uplinks: ["172.16.5.66"] });
  });
});
