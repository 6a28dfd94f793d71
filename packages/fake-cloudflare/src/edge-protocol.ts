// How the fake edge (edge.ts) and the cloudflared stand-in (cloudflared.ts) talk. cloudflared's
// own transport (QUIC or HTTP/2 with Cap'n Proto RPC for registration) is not reproduced;
// this keeps its shape: the connector dials the edge, registers with the tunnel's
// credentials, and then serves HTTP/2 on that same connection, the edge being the HTTP/2
// client that sends it the configuration and the visitors' requests.
//
//   connector -> edge   one JSON line: Registration
//   edge -> connector   one JSON line: Registered, then HTTP/2 (edge = client) on the socket

/** What a connector sends first: the credentials of a tunnel token (`{a, t, s}`) and who it is. */
export interface Registration {
  accountTag: string;
  tunnelId: string;
  /** The tunnel secret, base64, as in the token. */
  tunnelSecret: string;
  /** One connector process opens several connections (cloudflared: 4); their index. */
  connIndex: number;
  /** The connector process's id, shared by its connections (Cloudflare's `client_id`). */
  clientId: string;
  version: string;
}

export type Registered = { ok: true; connectionId: string; location: string } | { ok: false; error: string };

/**
 * The header of the edge's request that carries a configuration (`{version, config}` as JSON)
 * instead of a visitor's request: cloudflared's HTTP/2 transport marks its control requests
 * with this header too.
 */
export const UPGRADE_HEADER = "cf-cloudflared-proxy-connection-upgrade";
export const UPDATE_CONFIGURATION = "update-configuration";

export interface ConfigurationUpdate {
  version: number;
  config: Record<string, unknown>;
}

/** Quick tunnels are asked of this host (`POST /tunnel`), which the edge's public side answers for. */
export const QUICK_SERVICE_HOST = "api.trycloudflare.com";

/** What api.trycloudflare.com answers, in `result` (`secret` base64, as Go encodes cloudflared's `[]byte`). */
export interface QuickTunnel {
  id: string;
  name: string;
  hostname: string;
  account_tag: string;
  secret: string;
}

/** Reads one `\n`-terminated JSON line from a socket, and puts back what came after it. */
export function readLine<T>(socket: import("node:net").Socket, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error(`no registration line within ${timeoutMs} ms`)), timeoutMs);
    const done = (error?: Error, value?: T): void => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.off("error", onError);
      if (error) reject(error);
      else resolve(value!);
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf(0x0a);
      if (end < 0) {
        if (buffered.length > 64 * 1024) done(new Error("registration line too long"));
        return;
      }
      socket.pause();
      const rest = buffered.subarray(end + 1);
      if (rest.length > 0) socket.unshift(rest);
      try {
        done(undefined, JSON.parse(buffered.subarray(0, end).toString("utf8")) as T);
      } catch (error) {
        done(new Error(`not a JSON line: ${String(error)}`));
      }
    };
    const onClose = (): void => done(new Error("connection closed during registration"));
    const onError = (error: Error): void => done(error);
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.once("error", onError);
  });
}

/** Headers that describe one hop (HTTP/1.1 connection handling, HTTP/2 pseudo-headers) and are not passed on. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "host", "http2-settings"]);

/** The headers of a request or response that go on to the next hop. */
export function forwardableHeaders(headers: Record<string, string | string[] | number | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(":") || HOP_BY_HOP.has(name.toLowerCase())) continue;
    out[name.toLowerCase()] = typeof value === "number" ? String(value) : value;
  }
  return out;
}
