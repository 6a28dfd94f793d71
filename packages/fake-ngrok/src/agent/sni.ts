// Reads the server name (SNI) out of a TLS ClientHello without terminating TLS, so the
// public TLS port can route by name and pass the untouched bytes to the agent.

export type ClientHelloScan =
  | { state: "incomplete" }
  | { state: "not-tls" }
  | { state: "done"; serverName: string | undefined };

/** Looks at the first bytes of a connection: a full ClientHello (one record) yields its SNI. */
export function scanClientHello(data: Buffer): ClientHelloScan {
  if (data.length < 5) return { state: "incomplete" };
  if (data[0] !== 0x16) return { state: "not-tls" }; // handshake record
  const recordLength = data.readUInt16BE(3);
  if (data.length < 5 + recordLength) return { state: "incomplete" };
  const hello = data.subarray(5, 5 + recordLength);
  try {
    return { state: "done", serverName: serverNameOf(hello) };
  } catch {
    return { state: "not-tls" };
  }
}

function serverNameOf(hello: Buffer): string | undefined {
  if (hello[0] !== 0x01) throw new Error("not a ClientHello");
  let at = 4 + 2 + 32; // handshake header, client version, random
  at += 1 + hello.readUInt8(at); // session id
  at += 2 + hello.readUInt16BE(at); // cipher suites
  at += 1 + hello.readUInt8(at); // compression methods
  if (at >= hello.length) return undefined; // no extensions
  const end = at + 2 + hello.readUInt16BE(at);
  at += 2;
  while (at + 4 <= end) {
    const type = hello.readUInt16BE(at);
    const length = hello.readUInt16BE(at + 2);
    const body = hello.subarray(at + 4, at + 4 + length);
    if (type === 0x0000) {
      // server_name_list: uint16 length, then entries of (uint8 type, uint16 length, name)
      let p = 2;
      while (p + 3 <= body.length) {
        const nameType = body.readUInt8(p);
        const nameLength = body.readUInt16BE(p + 1);
        if (nameType === 0) return body.subarray(p + 3, p + 3 + nameLength).toString("ascii").toLowerCase();
        p += 3 + nameLength;
      }
    }
    at += 4 + length;
  }
  return undefined;
}
