// Traffic spot checks through the fake's public listeners: a few HTTP hostnames answered
// by the `web` backend, and one TCP address carrying a raw request to `echo`.
import net from "node:net";
import type { BenchOptions } from "./options.ts";
import { hostnameOf, isTcp, listBindings, type BenchEnv } from "./setup.ts";

export interface SpotCheck {
  what: string;
  ok: boolean;
  got: string;
}

export async function spotCheck(env: BenchEnv, options: BenchOptions): Promise<SpotCheck[]> {
  const indexes = Array.from({ length: options.bindings }, (_, i) => i);
  const http = indexes.filter((i) => !isTcp(i, options));
  const picks = [...new Set([http[0], http[Math.floor(http.length / 2)], http.at(-1)])].filter((i) => i !== undefined);
  const checks: SpotCheck[] = [];
  for (const i of picks) {
    const path = `/spot/${i}`;
    const reply = await env.fake.httpGet(hostnameOf(i), path).catch((e: Error) => ({ status: 0, body: e.message }));
    checks.push({ what: `GET http://${hostnameOf(i)}${path}`, ok: reply.status === 200 && reply.body === `web ${path}`, got: `${reply.status} ${reply.body}` });
  }
  const tcp = indexes.find((i) => isTcp(i, options));
  if (tcp !== undefined) {
    const binding = (await listBindings(env)).find((b) => b.metadata?.name === `b${tcp}`);
    const url = binding?.status?.routes?.[0]?.url;
    const reply = url ? await rawGet(new URL(url)).catch((e: Error) => e.message) : "no URL in status";
    checks.push({ what: `TCP ${url ?? `b${tcp}`}`, ok: reply.includes("echo /raw"), got: reply.split("\r\n\r\n")[1] ?? reply });
  }
  return checks;
}

/** An HTTP request written by hand over a TCP connection to `tcp://host:port`. */
function rawGet(url: URL): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname, () => socket.write("GET /raw HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    let data = "";
    socket.setTimeout(10_000, () => socket.destroy(new Error("no answer within 10 s")));
    socket.on("data", (d: Buffer) => (data += d.toString()));
    socket.on("end", () => resolve(data));
    socket.on("error", reject);
  });
}
