// The PROXY protocol header Envoy's ProxyProtocolUpstreamTransport writes before the first
// proxied byte (https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt): V1 text
// (`PROXY TCP4 <src> <dst> <sport> <dport>\r\n`) or V2 binary, command PROXY, STREAM or DGRAM,
// no TLVs. Addresses are the downstream connection's (source = the client, destination = the
// address it connected to); for a connection Envoy opens itself (health checks) they are the
// upstream connection's own local and remote address, as in Envoy.
import { isIPv4 } from "node:net";

export interface ProxiedAddresses {
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
}

/** "::ffff:127.0.0.1" → "127.0.0.1": Node reports v4-mapped addresses on dual-stack sockets. */
export const plainAddress = (address: string): string => (address.startsWith("::ffff:") && isIPv4(address.slice(7)) ? address.slice(7) : address);

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

function ipBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split(".").map(Number));
  // IPv6: expand "::".
  const [head, tail] = address.includes("::") ? address.split("::") : [address, undefined];
  const headParts = head ? head.split(":") : [];
  const tailParts = tail ? tail.split(":") : [];
  const parts = tail === undefined ? headParts : [...headParts, ...Array<string>(8 - headParts.length - tailParts.length).fill("0"), ...tailParts];
  const out = Buffer.alloc(16);
  parts.forEach((part, i) => out.writeUInt16BE(parseInt(part || "0", 16), i * 2));
  return out;
}

export function proxyProtocolHeader(version: "V1" | "V2", addresses: ProxiedAddresses, transport: "stream" | "dgram" = "stream"): Buffer {
  const source = plainAddress(addresses.sourceAddress);
  const destination = plainAddress(addresses.destinationAddress);
  const v4 = isIPv4(source) && isIPv4(destination);
  if (version === "V1") {
    return Buffer.from(`PROXY ${v4 ? "TCP4" : "TCP6"} ${source} ${destination} ${addresses.sourcePort} ${addresses.destinationPort}\r\n`, "latin1");
  }
  const family = (v4 ? 0x10 : 0x20) | (transport === "stream" ? 0x01 : 0x02);
  const body = Buffer.concat([ipBytes(v4 ? source : source), ipBytes(destination), Buffer.alloc(4)]);
  body.writeUInt16BE(addresses.sourcePort, body.length - 4);
  body.writeUInt16BE(addresses.destinationPort, body.length - 2);
  const head = Buffer.alloc(4);
  head[0] = 0x21; // version 2, command PROXY
  head[1] = family;
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([V2_SIGNATURE, head, body]);
}

/** Parses a PROXY v1 or v2 header at the start of `data` (for tests' backends); undefined while incomplete. */
export function parseProxyProtocolHeader(data: Buffer): { version: 1 | 2; command: "PROXY" | "LOCAL"; addresses?: ProxiedAddresses; length: number } | undefined {
  if (data.length >= 16 && data.subarray(0, 12).equals(V2_SIGNATURE)) {
    const length = 16 + data.readUInt16BE(14);
    if (data.length < length) return undefined;
    const command = (data[12]! & 0x0f) === 1 ? "PROXY" : "LOCAL";
    const family = data[13]! >> 4;
    if (command === "LOCAL" || (family !== 1 && family !== 2)) return { version: 2, command, length };
    const size = family === 1 ? 4 : 16;
    const ip = (at: number): string =>
      size === 4 ? [...data.subarray(at, at + 4)].join(".") : [...Array(8).keys()].map((i) => data.readUInt16BE(at + i * 2).toString(16)).join(":");
    const ports = 16 + 2 * size;
    return {
      version: 2,
      command,
      length,
      addresses: { sourceAddress: ip(16), destinationAddress: ip(16 + size), sourcePort: data.readUInt16BE(ports), destinationPort: data.readUInt16BE(ports + 2) },
    };
  }
  if (data.subarray(0, 6).toString("latin1") === "PROXY ") {
    const end = data.indexOf("\r\n");
    if (end === -1) return undefined;
    const [, , src, dst, sport, dport] = data.subarray(0, end).toString("latin1").split(" ");
    return { version: 1, command: "PROXY", length: end + 2, addresses: { sourceAddress: src!, destinationAddress: dst!, sourcePort: Number(sport), destinationPort: Number(dport) } };
  }
  return undefined;
}
