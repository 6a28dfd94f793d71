// The servers at the far end, run inside a namespace with `ip netns exec` (node: modules
// only, started by the bench as its own process):
//
//   backend.ts backend <ip> <sinkPort> <echoPort> <readyPort>
//     sink: reads everything, and on the client's FIN answers the byte count and closes;
//     echo: sends back what it reads and closes after the client does;
//     ready: HTTP 200 on GET /ready (Envoy's health check when no uplink stands between).
//   backend.ts ready <ip> <port>
//     only the readiness endpoint: the uplink's, on its tunnel address.
//
// Prints "listening" once every socket is bound.
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server } from "node:net";

const [mode, ip, ...ports] = process.argv.slice(2);

function listen(server: Server | ReturnType<typeof createHttpServer>, port: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(port), ip, () => resolve());
  });
}

const ready = createHttpServer((req, res) => {
  res.statusCode = req.url === "/ready" ? 200 : 404;
  res.end(req.url === "/ready" ? "ready" : "not found");
});

if (mode === "backend") {
  const [sinkPort, echoPort, readyPort] = ports;
  const sink = createServer({ allowHalfOpen: true }, (socket) => {
    let bytes = 0;
    socket.on("data", (chunk: Buffer) => (bytes += chunk.length));
    socket.on("end", () => socket.end(String(bytes)));
    socket.on("error", () => socket.destroy());
  });
  const echo = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    socket.pipe(socket);
    socket.on("error", () => socket.destroy());
  });
  await Promise.all([listen(sink, sinkPort), listen(echo, echoPort), listen(ready, readyPort)]);
} else if (mode === "ready") {
  await listen(ready, ports[0]);
} else {
  throw new Error(`usage: backend.ts backend <ip> <sinkPort> <echoPort> <readyPort> | ready <ip> <port>`);
}
console.log("listening");
