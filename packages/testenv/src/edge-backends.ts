// The Services' backends behind an EdgeCluster (edge-cluster.ts), run in the cluster node's
// namespace. Each spec in argv[3] (JSON) is one server on argv[2]'s address:
//   tcp:   greets `hello from <name> via <peer address>`, then answers each line with `<name>: <line>`
//   udp:   answers each datagram with `<name>: <datagram>`
//   tls:   a TLS server with its own certificate that greets like tcp
//   proxy: reads a PROXY protocol v2 header and answers `client <address>:<port>`
//   http:  answers every request with `hello from <name> via <peer address>: <method> <host><path>`
//   https: the same behind TLS with its own certificate
// Prints `listening` once all are.
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";

interface Spec {
  kind: "tcp" | "udp" | "tls" | "proxy" | "http" | "https";
  port: number;
  name: string;
  cert?: string;
  key?: string;
}

const host = process.argv[2]!;
const specs = JSON.parse(process.argv[3]!) as Spec[];

const talk = (name: string) => (socket: net.Socket) => {
  socket.on("error", () => undefined);
  socket.write(`hello from ${name} via ${socket.remoteAddress}\n`);
  let buffered = "";
  socket.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      socket.write(`${name}: ${buffered.slice(0, newline)}\n`);
      buffered = buffered.slice(newline + 1);
    }
  });
};

const answer = (name: string) => (request: http.IncomingMessage, response: http.ServerResponse) =>
  void response
    .writeHead(200, { "content-type": "text/plain" })
    .end(`hello from ${name} via ${request.socket.remoteAddress}: ${request.method} ${request.headers.host ?? ""}${request.url ?? "/"}\n`);

/** The source address of a PROXY v2 header (IPv4 or IPv6, PROXY command); undefined until it is complete. */
function proxySource(header: Buffer): string | undefined {
  const signature = Buffer.from("0d0a0d0a000d0a515549540a", "hex");
  if (header.length < 16) return undefined;
  if (!header.subarray(0, 12).equals(signature)) return "not a PROXY v2 header";
  const length = header.readUInt16BE(14);
  if (header.length < 16 + length) return undefined;
  const family = header[13]! >> 4;
  if (family === 1) return `${[...header.subarray(16, 20)].join(".")}:${header.readUInt16BE(24)}`;
  return `family ${family}`;
}

const servers = specs.map(
  (spec) =>
    new Promise<void>((resolve) => {
      if (spec.kind === "udp") {
        const socket = createSocket("udp4");
        socket.on("message", (message, peer) => socket.send(`${spec.name}: ${message.toString()}`, peer.port, peer.address));
        socket.bind(spec.port, host, resolve);
        return;
      }
      if (spec.kind === "http" || spec.kind === "https") {
        const server = spec.kind === "http" ? http.createServer(answer(spec.name)) : https.createServer({ cert: readFileSync(spec.cert!), key: readFileSync(spec.key!) }, answer(spec.name));
        server.listen(spec.port, host, resolve);
        return;
      }
      const server =
        spec.kind === "tls"
          ? tls.createServer({ cert: readFileSync(spec.cert!), key: readFileSync(spec.key!) }, talk(spec.name))
          : net.createServer(
              spec.kind === "tcp"
                ? talk(spec.name)
                : (socket) => {
                    socket.on("error", () => undefined);
                    let header = Buffer.alloc(0);
                    const onData = (chunk: Buffer): void => {
                      header = Buffer.concat([header, chunk]);
                      const source = proxySource(header);
                      if (source === undefined) return;
                      socket.off("data", onData);
                      socket.end(`client ${source}\n`);
                    };
                    socket.on("data", onData);
                  },
            );
      server.listen(spec.port, host, resolve);
    }),
);
await Promise.all(servers);
console.log("listening");
