// PROXY protocol headers (haproxy.org proxy-protocol.txt). An endpoint bound with
// `proxyProto("1"|"2")` expects ngrok's edge to put one at the start of every
// connection; the agent reads it off the stream and passes it upstream.
import { isIPv4 } from "node:net";

export interface ConnectionAddrs {
  sourceAddress: string;
  sourcePort: number;
  destAddress: string;
  destPort: number;
}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

const plainV4 = (address: string): string => address.replace(/^::ffff:/, "");

export function proxyProtocolHeader(version: 1 | 2, addrs: ConnectionAddrs): Buffer {
  const source = plainV4(addrs.sourceAddress);
  const dest = plainV4(addrs.destAddress);
  const v4 = isIPv4(source) && isIPv4(dest);
  if (version === 1) {
    return Buffer.from(`PROXY ${v4 ? "TCP4" : "TCP6"} ${source} ${dest} ${addrs.sourcePort} ${addrs.destPort}\r\n`, "latin1");
  }
  if (!v4) throw new Error("fake-ngrok writes PROXY v2 headers for IPv4 only");
  const body = Buffer.alloc(12);
  source.split(".").forEach((octet, i) => body.writeUInt8(Number(octet), i));
  dest.split(".").forEach((octet, i) => body.writeUInt8(Number(octet), 4 + i));
  body.writeUInt16BE(addrs.sourcePort, 8);
  body.writeUInt16BE(addrs.destPort, 10);
  // 0x21: version 2, PROXY command; 0x11: AF_INET over STREAM.
  const head = Buffer.from([0x21, 0x11, 0x00, body.length]);
  return Buffer.concat([V2_SIGNATURE, head, body]);
}
