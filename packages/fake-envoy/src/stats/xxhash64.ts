// XXH64 (seed 0) over a string's UTF-8 bytes: what Envoy's `HashUtil::xxHash64` computes
// for the `<prefix>.version` gauge of an xDS subscription (the hash of `version_info`).
const MASK = (1n << 64n) - 1n;
const P1 = 0x9e3779b185ebca87n;
const P2 = 0xc2b2ae3d27d4eb4fn;
const P3 = 0x165667b19e3779f9n;
const P4 = 0x85ebca77c2b2ae63n;
const P5 = 0x27d4eb2f165667c5n;

const rotl = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & MASK;
const mul = (a: bigint, b: bigint): bigint => (a * b) & MASK;
const add = (a: bigint, b: bigint): bigint => (a + b) & MASK;

function round(acc: bigint, input: bigint): bigint {
  return mul(rotl(add(acc, mul(input, P2)), 31n), P1);
}

function mergeRound(acc: bigint, value: bigint): bigint {
  return add(mul(acc ^ round(0n, value), P1), P4);
}

export function xxHash64(input: string | Uint8Array, seed = 0n): bigint {
  const data = typeof input === "string" ? Buffer.from(input, "utf8") : Buffer.from(input);
  const length = data.length;
  let offset = 0;
  let hash: bigint;
  if (length >= 32) {
    let v1 = add(add(seed, P1), P2);
    let v2 = add(seed, P2);
    let v3 = seed;
    let v4 = (seed - P1) & MASK;
    while (offset <= length - 32) {
      v1 = round(v1, data.readBigUInt64LE(offset));
      v2 = round(v2, data.readBigUInt64LE(offset + 8));
      v3 = round(v3, data.readBigUInt64LE(offset + 16));
      v4 = round(v4, data.readBigUInt64LE(offset + 24));
      offset += 32;
    }
    hash = add(add(rotl(v1, 1n), rotl(v2, 7n)), add(rotl(v3, 12n), rotl(v4, 18n)));
    hash = mergeRound(hash, v1);
    hash = mergeRound(hash, v2);
    hash = mergeRound(hash, v3);
    hash = mergeRound(hash, v4);
  } else {
    hash = add(seed, P5);
  }
  hash = add(hash, BigInt(length));
  while (offset + 8 <= length) {
    hash ^= round(0n, data.readBigUInt64LE(offset));
    hash = add(mul(rotl(hash, 27n), P1), P4);
    offset += 8;
  }
  if (offset + 4 <= length) {
    hash ^= mul(BigInt(data.readUInt32LE(offset)), P1);
    hash = add(mul(rotl(hash, 23n), P2), P3);
    offset += 4;
  }
  while (offset < length) {
    hash ^= mul(BigInt(data[offset]!), P5);
    hash = mul(rotl(hash, 11n), P1);
    offset += 1;
  }
  hash ^= hash >> 33n;
  hash = mul(hash, P2);
  hash ^= hash >> 29n;
  hash = mul(hash, P3);
  hash ^= hash >> 32n;
  return hash;
}
