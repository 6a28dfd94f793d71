// WireGuard keys made in the cluster: WireGuard's keys are X25519 keys, and node:crypto's
// raw 32-byte X25519 keys in base64 are exactly what `wg genkey` / `wg pubkey` print.
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";

export interface WireGuardKeyPair {
  privateKey: string;
  publicKey: string;
}

const fromJwk = (value: string | undefined): string => Buffer.from(value ?? "", "base64url").toString("base64");

export function generateWireGuardKeyPair(): WireGuardKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  return { privateKey: fromJwk(privateKey.export({ format: "jwk" }).d), publicKey: fromJwk(publicKey.export({ format: "jwk" }).x) };
}

/** `wg pubkey`: the public key of a base64 private key; undefined when it is not one. */
export function wireGuardPublicKey(privateKey: string): string | undefined {
  const raw = Buffer.from(privateKey, "base64");
  if (raw.length !== 32) return undefined;
  try {
    const key = createPrivateKey({ key: { kty: "OKP", crv: "X25519", d: raw.toString("base64url"), x: "" }, format: "jwk" });
    return fromJwk(createPublicKey(key).export({ format: "jwk" }).x);
  } catch {
    return undefined;
  }
}
