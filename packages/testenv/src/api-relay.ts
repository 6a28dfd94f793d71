// Run by LocalKubelet inside a Pod's network namespace: accepts TCP on `host:port` (the API
// server's loopback address) and passes each connection to the Unix socket on which the
// kubelet, in the machine's namespace, connects it on to the API server.
import net from "node:net";

const [listen = "", socket = ""] = process.argv.slice(2);
const [host, port] = [listen.slice(0, listen.lastIndexOf(":")), Number(listen.slice(listen.lastIndexOf(":") + 1))];
net
  .createServer((inbound) => {
    const outbound = net.connect(socket);
    inbound.pipe(outbound).pipe(inbound);
    inbound.on("error", () => outbound.destroy());
    outbound.on("error", () => inbound.destroy());
  })
  .listen(port, host, () => console.log(`listening on ${listen}`));
