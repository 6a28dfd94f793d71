// TCP addresses in the fake are loopback `host:port` pairs so tests can dial them. ngrok
// hands out `N.tcp.ngrok.io:PORT`; the fake hands out `127.0.0.1:PORT` for random TCP
// endpoints and for reservations (the REST side's POST /reserved_addrs calls
// `allocateTcpAddr`), and accepts reservations spelled `localhost:PORT` too.
import { createServer } from "node:net";

/** A `127.0.0.1:PORT` whose port was free a moment ago (the OS picked it). */
export async function allocateTcpAddr(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no TCP port allocated");
  return `127.0.0.1:${address.port}`;
}

/** Where the fake listens for an address: its port, always on 127.0.0.1. */
export function listenPortOf(addr: string): number | undefined {
  const match = /^(?:127\.0\.0\.1|localhost):(\d{1,5})$/.exec(addr);
  const port = match ? Number(match[1]) : NaN;
  return port > 0 && port < 65536 ? port : undefined;
}

/** Whether two addresses name the same loopback port (`localhost:P` and `127.0.0.1:P` do). */
export function sameTcpAddr(a: string, b: string): boolean {
  const pa = listenPortOf(a);
  return pa !== undefined ? pa === listenPortOf(b) : a.toLowerCase() === b.toLowerCase();
}
