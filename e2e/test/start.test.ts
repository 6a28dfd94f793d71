// `npm start` as a newcomer runs it: no kubeconfig, so a local control plane, the fake
// providers, a demo backend and the connectors as local processes; then the example
// manifests are applied with kubectl and the printed commands reach the demo backend. As root
// (CI), the self-hosted edge runs too: a local VPS and a node in network namespaces.
import { afterAll, describe, expect, it } from "@jest/globals";
import { eventually, freePort, isProcessAlive, kubectl } from "@ktube/testenv";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import type { TLSSocket } from "node:tls";
import { mkdtempSync, readFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..", "..");
let child: ChildProcess | undefined;

/** A GET to a loopback port with a Host header, as the printed `curl -H 'Host: …'` lines do. */
function get(port: number, host: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, headers: { host, connection: "close" } }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
  });
}

/** Sends `text` to a TCP address and reads until that much came back. */
function echo(address: string, text: string): Promise<string> {
  const [host, port] = address.replace("tcp://", "").split(":") as [string, string];
  return new Promise((resolve, reject) => {
    let got = "";
    const socket = net.connect(Number(port), host, () => socket.write(text));
    socket.setTimeout(5000, () => socket.destroy(new Error(`no echo from ${address}: ${got}`)));
    socket.on("data", (chunk: Buffer) => {
      got += chunk.toString();
      if (got.length >= text.length) (socket.end(), resolve(got));
    });
    socket.on("error", reject);
  });
}

/** An HTTPS GET to `address` for `hostname` (SNI and Host), trusting `ca`, as the printed `curl --resolve … --cacert …` lines do. */
function httpsGet(address: string, hostname: string, ca: string, path: string): Promise<{ status: number; body: string; certificate: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: address, servername: hostname, ca, path, agent: false, headers: { host: hostname } }, (res) => {
      const cn = (res.socket as TLSSocket).getPeerCertificate().subject?.CN;
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, certificate: String(cn) }));
    });
    req.setTimeout(5000, () => req.destroy(new Error(`no answer from ${hostname} at ${address}`)));
    req.on("error", reject);
  });
}

/** Everything a TCP server at address:port says until it closes, and this side's address as the server saw it. */
function readAll(address: string, port: number): Promise<{ text: string; local: string }> {
  return new Promise((resolve, reject) => {
    let text = "";
    const socket = net.connect(port, address);
    socket.setTimeout(5000, () => socket.destroy(new Error(`no end from ${address}:${port}: ${text}`)));
    socket.on("data", (chunk: Buffer) => (text += chunk.toString()));
    socket.on("end", () => resolve({ text, local: `${socket.localAddress}:${socket.localPort}` }));
    socket.on("error", reject);
  });
}

/** One UDP datagram and its answer. */
function udpAsk(address: string, port: number, message: string): Promise<string> {
  const socket = createSocket("udp4");
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer from udp ${address}:${port}`)), 2000);
    socket.once("message", (answer) => (clearTimeout(timer), resolve(answer.toString())));
    socket.send(message, port, address);
  }).finally(() => socket.close());
}

/** The network namespaces on this machine. */
const netnsList = (): string[] => execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).split("\n").map((l) => l.split(" ")[0]!).filter(Boolean);

/** The processes in a network namespace. */
const netnsPids = (namespace: string): number[] => execFileSync("ip", ["netns", "pids", namespace], { encoding: "utf8" }).split("\n").filter(Boolean).map(Number);

/** The connector processes (the `connector` subcommand of a controller's main.ts, and the cloudflared stand-in) started by `pid`. */
function connectorsOf(pid: number): number[] {
  const out = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(pid)], { encoding: "utf8" });
  return out.split("\n").filter((l) => /src\/main\.ts connector\b|src\/cloudflared\.ts tunnel\b/.test(l)).map((l) => Number.parseInt(l.trim(), 10));
}


/** Alive and not a zombie (killed processes reparented to an init that does not reap stay zombies). */
const running = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
};

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill("SIGINT");
    await new Promise((resolve) => child!.once("exit", resolve));
  }
});

describe("npm start", () => {
  it("runs the controllers and connectors on a local control plane where the Cloudflare, ngrok, Dev Tunnels and edge examples become Ready and answer, and the dashboard shows them", async () => {
    const home = mkdtempSync(join(tmpdir(), "ktube-start-home-"));
    const dashboardPort = await freePort();
    child = spawn(process.execPath, [join(ROOT, "scripts", "start.ts")], {
      cwd: ROOT,
      // A HOME without ~/.kube/config, but the usual cache of built control-plane binaries.
      env: {
        ...process.env,
        HOME: home,
        XDG_CACHE_HOME: process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"),
        KUBECONFIG: "",
        NODE_OPTIONS: "",
        LOG_LEVEL: "warn",
        KTUBE_DASHBOARD_PORT: String(dashboardPort),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
    const kubeconfig = await eventually(() => {
      const m = /export KUBECONFIG=(\S+)/.exec(out);
      if (!m || !out.includes("Ctrl-C stops everything")) throw new Error(`not started yet:\n${out.slice(-2000)}`);
      return m[1]!;
    }, 120_000, 250);
    const k = (args: string[]) => kubectl([`--kubeconfig=${kubeconfig}`, ...args]);
    const ngrokPublic = Number(/curl -H 'Host: api\.ngrok\.example\.com' http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)?.[1]);
    const relayPublic = Number(/curl -H "Host: \$\(.*\)" http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)?.[1]);
    const edgePublic = Number(/curl -H 'Host: shop\.example\.com' http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)?.[1]);
    expect(ngrokPublic).toBeGreaterThan(0);
    expect(relayPublic).toBeGreaterThan(0);
    expect(edgePublic).toBeGreaterThan(0);
    // The namespaces the examples use exist, shop with the label examples/cloudflare.yaml asks for.
    expect((await k(["get", "namespace", "shop", "-o", "jsonpath={.metadata.labels.ktube\\.dev/tunnel-access}"])).stdout).toBe("home");
    const applied = await k(["apply", "-f", join(ROOT, "examples", "cloudflare.yaml")]);
    expect(applied.code).toBe(0);
    await eventually(async () => {
      const { stdout } = await k(["get", "tp", "cloudflare-prod", "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].reason}"]);
      expect(stdout).toBe("CredentialsVerified");
    }, 30_000, 250);
    await eventually(async () => {
      const { stdout } = await k(["-n", "platform", "get", "tun", "home", "-o", "jsonpath={.status.tunnelId}"]);
      expect(stdout).toMatch(/^[0-9a-f-]{36}$/);
    }, 30_000, 250);
    // Its cloudflared replicas (the fake's stand-in) run as local processes and register with the fake edge: the binding
    // becomes Ready, its URL answers through the edge's public side, and the route behind Access leads to the Access login.
    expect((await k(["-n", "shop", "wait", "tb/shop", "--for=condition=Ready", "--timeout=90s"])).code).toBe(0);
    expect((await k(["-n", "shop", "get", "tb", "shop", "-o", "jsonpath={.status.routes[*].url}"])).stdout).toBe("https://shop.example.com/ https://admin.shop.example.com/ tcp://ssh.shop.example.com");
    await eventually(async () => {
      expect(await get(edgePublic, "shop.example.com", "/cart")).toEqual({ status: 200, body: "hello from KTube's demo backend: GET shop.example.com/cart\n" });
    }, 30_000, 250);
    const admin = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get({ host: "127.0.0.1", port: edgePublic, path: "/", headers: { host: "admin.shop.example.com" } }, (res) => (res.resume(), resolve(res))).on("error", reject),
    );
    expect(admin.statusCode).toBe(302);
    expect(admin.headers.location).toMatch(/^https:\/\/[a-z0-9-]+\.cloudflareaccess\.com\/cdn-cgi\/access\/login\/admin\.shop\.example\.com\?/);
    // A quick tunnel: the controller reads its random URL from the connector's Service (through the demo's stand-in for
    // cluster DNS and kube-proxy), and the URL answers on the same edge.
    expect((await k(["apply", "-f", join(ROOT, "examples", "cloudflare-quick.yaml")])).code).toBe(0);
    expect((await k(["-n", "demo", "wait", "tb/whoami", "--for=condition=Ready", "--timeout=90s"])).code).toBe(0);
    const quickUrl = new URL((await k(["-n", "demo", "get", "tb", "whoami", "-o", "jsonpath={.status.routes[0].url}"])).stdout);
    expect(quickUrl.host).toMatch(/^[a-z]+-[a-z]+-[a-z]+-[0-9a-f]{4}\.trycloudflare\.com$/);
    expect(await get(edgePublic, quickUrl.host, "/")).toEqual({ status: 200, body: `hello from KTube's demo backend: GET ${quickUrl.host}/\n` });
    // The ngrok controller runs too, against the fake ngrok cloud.
    expect((await k(["apply", "-f", join(ROOT, "examples", "ngrok.yaml")])).code).toBe(0);
    await eventually(async () => {
      const { stdout } = await k(["get", "tp", "ngrok", "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].reason}"]);
      expect(stdout).toBe("CredentialsVerified");
    }, 30_000, 250);
    // Its agents run as local processes: the binding becomes Ready, and both routes reach the demo backend.
    expect((await k(["-n", "shop", "wait", "tb/api", "--for=condition=Ready", "--timeout=90s"])).code).toBe(0);
    const ngrokUrls = (await k(["-n", "shop", "get", "tb", "api", "-o", "jsonpath={.status.routes[*].url}"])).stdout.split(" ");
    expect(ngrokUrls[0]).toBe("https://api.ngrok.example.com/");
    await eventually(async () => {
      expect(await get(ngrokPublic, "api.ngrok.example.com", "/orders")).toEqual({ status: 200, body: "hello from KTube's demo backend: GET api.ngrok.example.com/orders\n" });
    }, 30_000, 250);
    expect(ngrokUrls[1]).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(await echo(ngrokUrls[1]!, "SELECT 1;")).toBe("SELECT 1;");
    // And the Dev Tunnels controller, against the fake service: the dev tunnel is made, its host runs, its URL answers.
    expect((await k(["apply", "-f", join(ROOT, "examples", "devtunnels.yaml")])).code).toBe(0);
    await eventually(async () => {
      const { stdout } = await k(["-n", "demo", "get", "tun", "preview", "-o", "jsonpath={.status.tunnelId}/{.status.region}"]);
      expect(stdout).toMatch(/^kt-[0-9a-f]{16}\/euw$/);
    }, 30_000, 250);
    expect((await k(["-n", "demo", "wait", "tb/preview", "--for=condition=Ready", "--timeout=90s"])).code).toBe(0);
    const previewUrl = new URL((await k(["-n", "demo", "get", "tb", "preview", "-o", "jsonpath={.status.routes[0].url}"])).stdout);
    expect(previewUrl.host).toMatch(/^kt-[0-9a-f]{16}-3000\.euw\.devtunnels\.ms$/);
    await eventually(async () => {
      const answer = await get(relayPublic, previewUrl.host, "/docs");
      expect(answer.status).toBe(200);
      expect(answer.body).toMatch(/^hello from KTube's demo backend: GET \S+\/docs\n$/);
    }, 30_000, 250);

    // The self-hosted edge (root, as in CI): a VPS and a node in network namespaces of their own, and a copy of
    // examples/edge.yaml naming that VPS. The edge controller enrolls it over SSH, the uplinks (local processes in Pod
    // namespaces) dial it over WireGuard, and the printed commands reach the routes through the VPS's address.
    const edgeApply = /kubectl apply -f (\S+\/edge\.yaml) && kubectl -n shop wait tb\/edge-apps --for=condition=Ready --timeout=120s/.exec(out);
    if (!edgeApply) throw new Error(`no edge example in npm start's output: ${/examples\/edge\.yaml cannot run here.*/.exec(out)?.[0] ?? out.slice(-2000)}`);
    const passthrough = /curl --resolve shop\.example\.com:443:(\S+) --cacert (\S+) https:\/\/shop\.example\.com\//.exec(out);
    expect(passthrough).not.toBeNull();
    const [, vpsAddress, caFile] = passthrough as unknown as [string, string, string];
    expect(out).toContain(`curl --resolve api.example.com:443:${vpsAddress} --cacert ${caFile} https://api.example.com/`);
    const vpsNamespace = new RegExp(`a VPS at ${vpsAddress.replace(/\./g, "\\.")} \\(network namespace (ktvps-[0-9a-f]+)`).exec(out)?.[1];
    const nodePrefix = /a node \(network namespace (kt[0-9a-f]{4}-)node\)/.exec(out)?.[1];
    expect(vpsNamespace).toBeDefined();
    expect(nodePrefix).toBeDefined();
    expect((await k(["apply", "-f", edgeApply[1]!])).code).toBe(0);
    expect((await k(["-n", "shop", "wait", "tb/edge-apps", "--for=condition=Ready", "--timeout=120s"])).code).toBe(0);
    expect((await k(["-n", "shop", "get", "tb", "edge-apps", "-o", "jsonpath={.status.routes[*].url}"])).stdout).toBe(
      `tls://shop.example.com:443 tls://api.example.com:443 tcp://${vpsAddress}:25 udp://${vpsAddress}:53`,
    );
    const ca = readFileSync(caFile, "utf8");
    // TLS passthrough: shop-web's backend (HTTPS itself, its own certificate) answers; offload: the VPS ends TLS with
    // shop/api-tls and shop-api's plain HTTP backend answers. Both through an uplink Pod (its address is the peer).
    await eventually(async () => {
      const web = await httpsGet(vpsAddress, "shop.example.com", ca, "/cart");
      expect(web).toMatchObject({ status: 200, certificate: "shop.example.com" });
      expect(web.body).toMatch(/^hello from shop-web via \d+\.\d+\.\d+\.\d+: GET shop\.example\.com\/cart\n$/);
    }, 30_000, 250);
    const api = await eventually(() => httpsGet(vpsAddress, "api.example.com", ca, "/orders"), 30_000, 250);
    expect(api).toMatchObject({ status: 200, certificate: "api.example.com" });
    expect(api.body).toMatch(/^hello from shop-api via \d+\.\d+\.\d+\.\d+: GET api\.example\.com\/orders\n$/);
    // The SMTP port sends PROXY v2: the mail backend answers with this client's own address; DNS goes to the raw UDP target.
    const smtp = await eventually(() => readAll(vpsAddress, 25), 30_000, 250);
    expect(smtp.text).toBe(`client ${smtp.local}\n`);
    expect(await eventually(() => udpAsk(vpsAddress, 53, "query example.com A"), 30_000, 250)).toBe("dns: query example.com A");

    // The dashboard, signed in with the printed token, lists the binding with its URL.
    expect(out).toContain(`dashboard: http://localhost:${dashboardPort}/`);
    const token = /^dashboard token: (\S+)$/m.exec(out)?.[1];
    expect(token).toBeDefined();
    const origin = `http://127.0.0.1:${dashboardPort}`;
    const signIn = await fetch(`${origin}/login`, { method: "POST", headers: { Origin: origin, "Content-Type": "application/json" }, body: JSON.stringify({ token }) });
    expect(signIn.status).toBe(200);
    const cookie = signIn.headers.get("set-cookie")!.split(";")[0]!;
    const page = await fetch(`${origin}/bindings`, { headers: { Cookie: cookie } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("preview");
    expect(html).toContain(previewUrl.host);

    // Ctrl-C stops everything, the connectors too, and the edge's network namespaces with every process in them
    // (sshd, Envoy and wireguard-go on the VPS, the backends, the uplinks and their wireguard-go).
    const connectors = connectorsOf(child.pid!);
    expect(connectors.length).toBe(8); // two cloudflared and a quick tunnel's, two ngrok agents, one Dev Tunnels host, two edge uplinks
    const edgeNamespaces = netnsList().filter((ns) => ns === vpsNamespace || ns.startsWith(nodePrefix!));
    expect(edgeNamespaces.sort()).toEqual([vpsNamespace, `${nodePrefix}node`, `${nodePrefix}p0`, `${nodePrefix}p1`].sort());
    const edgeProcesses = edgeNamespaces.flatMap(netnsPids);
    expect(edgeProcesses.filter(running).length).toBeGreaterThanOrEqual(7); // at least the VPS's file system holder, sshd, Envoy, wireguard-go; the backends; the uplinks
    child.kill("SIGINT");
    const code = await new Promise((resolve) => child!.once("exit", resolve));
    expect(code).toBe(0);
    expect(connectors.filter(isProcessAlive)).toEqual([]);
    expect(netnsList().filter((ns) => edgeNamespaces.includes(ns))).toEqual([]);
    await eventually(() => expect(edgeProcesses.filter(running)).toEqual([]), 5_000, 100);
  });
});
