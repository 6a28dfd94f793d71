// What Envoy's tls_inspector reads from the first bytes of a connection, without terminating
// TLS: whether it is TLS (a handshake record holding a ClientHello) and the SNI host name.
// The ClientHello may arrive in several TCP segments and span several records; `inspect` is
// called with everything read so far and says whether it needs more.

export type Inspection =
  | { done: false }
  | { done: true; tls: false }
  | { done: true; tls: true; serverName: string };

const MAX_CLIENT_HELLO = 64 * 1024; // Envoy's tls_inspector max_client_hello_size

export function inspectClientHello(data: Buffer): Inspection {
  if (data.length === 0) return { done: false };
  if (data[0] !== 0x16) return { done: true, tls: false };
  if (data.length >= 2 && data[1] !== 0x03) return { done: true, tls: false };
  // Reassemble the handshake message from consecutive handshake records.
  const handshake: Buffer[] = [];
  let have = 0;
  let at = 0;
  let needed: number | undefined;
  while (true) {
    if (data.length < at + 5) return data.length > MAX_CLIENT_HELLO ? { done: true, tls: false } : { done: false };
    if (data[at] !== 0x16) return { done: true, tls: false };
    const length = data.readUInt16BE(at + 3);
    if (data.length < at + 5 + length) return at + 5 + length > MAX_CLIENT_HELLO ? { done: true, tls: false } : { done: false };
    handshake.push(data.subarray(at + 5, at + 5 + length));
    have += length;
    at += 5 + length;
    if (needed === undefined && have >= 4) {
      const first = Buffer.concat(handshake);
      if (first[0] !== 0x01) return { done: true, tls: false };
      needed = 4 + first.readUIntBE(1, 3);
      if (needed > MAX_CLIENT_HELLO) return { done: true, tls: false };
    }
    if (needed !== undefined && have >= needed) break;
  }
  return { done: true, tls: true, serverName: serverNameOf(Buffer.concat(handshake).subarray(4, needed)) };
}

/** The host_name of the server_name extension of a ClientHello body ("" when absent or malformed). */
function serverNameOf(hello: Buffer): string {
  try {
    let at = 2 + 32; // client_version, random
    at += 1 + hello[at]!; // session_id
    at += 2 + hello.readUInt16BE(at); // cipher_suites
    at += 1 + hello[at]!; // compression_methods
    if (at + 2 > hello.length) return "";
    const end = at + 2 + hello.readUInt16BE(at);
    at += 2;
    while (at + 4 <= end) {
      const type = hello.readUInt16BE(at);
      const length = hello.readUInt16BE(at + 2);
      at += 4;
      if (type === 0) {
        let p = at + 2;
        const listEnd = at + 2 + hello.readUInt16BE(at);
        while (p + 3 <= listEnd) {
          const nameType = hello[p]!;
          const nameLength = hello.readUInt16BE(p + 1);
          if (nameType === 0) return hello.subarray(p + 3, p + 3 + nameLength).toString("latin1");
          p += 3 + nameLength;
        }
        return "";
      }
      at += length;
    }
  } catch {
    return "";
  }
  return "";
}
