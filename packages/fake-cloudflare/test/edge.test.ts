// The fake edge with the cloudflared stand-in as a real process: registration with the
// tunnel token, connections in the API's listing, the pushed configuration followed, the
// public side routed by DNS, Access and missing connectors answered as Cloudflare does,
// and a SIGTERM that closes the connections.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import { createTestCa, eventually, TestProcess } from "@ktube/testenv";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type net from "node:net";
import type tls from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FakeCloudflareEdge } from "../src/index.ts";
import { type Setup, startFake } from "./support.ts";

const STAND_IN = join(import.meta.dirname, "..", "src", "cloudflared.ts");
const dir = mkdtempSync(join(tmpdir(), "ktube-fake-edge-"));
let s: Setup;
let edge: FakeCloudflareEdge;
let zoneId: string;
const connectors: TestProcess[] = [];
/** What each origin saw: host, path, SNI and the headers the edge added. */
const seen: Array<{ origin: string; host?: string; path?: string; servername?: string; proto?: string; connectingIp?: string; body: string }> = [];
const origins: Array<http.Server> = [];

function origin(name: string, server: http.Server): Promise<number> {
  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      seen.push({
        origin: name, body, host: req.headers.host, path: req.url, servername: (req.socket as tls.TLSSocket).servername || undefined,
        proto: req.headers["x-forwarded-proto"] as string, connectingIp: req.headers["cf-connecting-ip"] as string,
      });
      res.writeHead(200, { "x-origin": name }).end(`${name}\n`);
    });
  });
  origins.push(server);
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)));
}

/** A request to the public side for `host`, as a visitor's browser would send it to https://host. */
function visit(host: string, path: string, method = "GET", body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: edge.publicHttpPort, path, method, headers: { host, connection: "close" } }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function tunnelWithToken(name: string): Promise<{ id: string; tokenFile: string }> {
  const tunnel = await s.cf.zeroTrust.tunnels.cloudflared.create({ account_id: s.account, name, config_src: "cloudflare" });
  const token = await s.cf.zeroTrust.tunnels.cloudflared.token.get(tunnel.id!, { account_id: s.account });
  const tokenFile = join(dir, `${name}.token`);
  writeFileSync(tokenFile, String(token));
  return { id: tunnel.id!, tokenFile };
}

async function route(tunnelId: string, hostname: string): Promise<void> {
  await s.cf.dns.records.create({ zone_id: zoneId, type: "CNAME", name: hostname, content: `${tunnelId}.cfargotunnel.com`, proxied: true, ttl: 1 });
}

function configure(tunnelId: string, ingress: unknown[]): Promise<unknown> {
  return s.cf.zeroTrust.tunnels.cloudflared.configurations.update(tunnelId, { account_id: s.account, config: { ingress: ingress as never } });
}

/** The stand-in run as a cloudflared Pod runs it (a named tunnel's token file, or a quick tunnel's `--url`), with the loopback overrides a local run needs. */
function runConnector(tokenFile: string | { url: string }, overrides: Record<string, string>): TestProcess {
  const command = typeof tokenFile === "string" ? ["run", "--token-file", tokenFile] : ["--url", tokenFile.url];
  const child = spawn(process.execPath, [STAND_IN, "tunnel", "--no-autoupdate", "--metrics", "0.0.0.0:2000", ...command], {
    env: {
      PATH: process.env.PATH, TUNNEL_EDGE: edge.address, TUNNEL_QUICK_SERVICE: edge.quickServiceUrl,
      KTUBE_PROBE_ADDRESS: "127.0.0.1:0", KTUBE_UPSTREAM_OVERRIDES: JSON.stringify(overrides),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const connector = new TestProcess(child);
  connectors.push(connector);
  return connector;
}

/** A GET to the connector's metrics server, whose port it logs. */
async function metricsOf<T>(connector: TestProcess, path: string): Promise<T> {
  const port = await eventually(() => {
    const m = /Starting metrics server on [\d.]+:(\d+)\/metrics/.exec(connector.output);
    if (!m) throw new Error(`no metrics server yet: ${connector.output}`);
    return Number(m[1]);
  });
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return (await res.json()) as T;
}

const readyOf = (connector: TestProcess) => metricsOf<{ status: number; readyConnections: number }>(connector, "/ready");

let webPort: number;
let apiPort: number;
let securePort: number;

beforeAll(async () => {
  s = await startFake();
  edge = await s.fake.startEdge();
  zoneId = s.fake.addZone("example.com", s.account).id;
  const ca = await createTestCa(dir, "edge-test-ca");
  const leaf = await ca.issue("admin", { dnsNames: ["admin.shop.svc"] });
  webPort = await origin("web", http.createServer());
  apiPort = await origin("api", http.createServer());
  securePort = await origin("admin", https.createServer({ cert: leaf.cert, key: leaf.key }));
}, 30_000);

afterEach(() => {
  expect(s.fake.schemaViolations).toEqual([]);
});

afterAll(async () => {
  await Promise.all(connectors.map((c) => c.kill()));
  await s.fake.stop();
  for (const o of origins) (o.closeAllConnections(), o.close());
});

describe("the fake edge and the cloudflared stand-in", () => {
  it("registers a connector with the tunnel token, lists its connections, and follows each pushed ingress configuration", async () => {
    const { id, tokenFile } = await tunnelWithToken("home");
    await route(id, "shop.example.com");
    await configure(id, [{ hostname: "shop.example.com", service: "http://web.shop.svc.cluster.local:80" }, { service: "http_status:404" }]);
    const connector = runConnector(tokenFile, { "web.shop.svc.cluster.local:80": `127.0.0.1:${webPort}`, "api.shop.svc.cluster.local:8080": `127.0.0.1:${apiPort}` });
    await eventually(async () => expect(await readyOf(connector)).toEqual(expect.objectContaining({ status: 200, readyConnections: 4 })), 10_000);
    const listed = await s.cf.zeroTrust.tunnels.cloudflared.get(id, { account_id: s.account });
    expect(listed.status).toBe("healthy");
    expect(listed.connections).toHaveLength(4);
    expect(new Set(listed.connections!.map((c) => c.client_id)).size).toBe(1);

    await eventually(async () => expect((await visit("shop.example.com", "/cart?x=1")).body).toBe("web\n"), 5000);
    const posted = await visit("shop.example.com", "/orders", "POST", "one order");
    expect(posted).toMatchObject({ status: 200, headers: expect.objectContaining({ "x-origin": "web", server: "cloudflare", "cf-ray": expect.stringMatching(/^[0-9a-f]{16}-LO1$/) }) });
    expect(seen.at(-1)).toEqual(expect.objectContaining({ origin: "web", host: "shop.example.com", path: "/orders", body: "one order", proto: "https", connectingIp: "127.0.0.1" }));
    // The catch-all answers what is not the rule's hostname; a hostname without a record is not the fake's.
    await route(id, "other.example.com");
    expect((await visit("other.example.com", "/")).status).toBe(404);
    expect(await visit("nowhere.example.com", "/")).toMatchObject({ status: 404, body: expect.stringContaining("no proxied DNS record for nowhere.example.com") });

    // A new version: a longer path first, as the controller renders it. The connectors follow it at once.
    await configure(id, [
      { hostname: "shop.example.com", path: "^/api(/.*)?$", service: "http://api.shop.svc.cluster.local:8080", originRequest: { httpHostHeader: "api.internal" } },
      { hostname: "shop.example.com", service: "http://web.shop.svc.cluster.local:80" },
      { service: "http_status:404" },
    ]);
    await eventually(async () => expect((await visit("shop.example.com", "/api/v1")).body).toBe("api\n"), 5000);
    expect(seen.at(-1)).toEqual(expect.objectContaining({ origin: "api", host: "api.internal", path: "/api/v1" }));
    expect((await visit("shop.example.com", "/apiary")).body).toBe("web\n");
    expect(connector.output).toMatch(/Updated to new configuration version=2/);
  }, 30_000);

  it("proxies https origins with the rule's TLS options, and refuses an origin it cannot verify or does not implement", async () => {
    const { id, tokenFile } = await tunnelWithToken("tls");
    for (const host of ["admin.example.com", "strict.example.com", "ssh.example.com"]) await route(id, host);
    const service = "https://admin.shop.svc.cluster.local:8443";
    await configure(id, [
      { hostname: "admin.example.com", service, originRequest: { noTLSVerify: true, originServerName: "admin.shop.svc", connectTimeout: 5 } },
      { hostname: "strict.example.com", service },
      { hostname: "ssh.example.com", service: "tcp://bastion.shop.svc.cluster.local:22" },
      { service: "http_status:404" },
    ]);
    const connector = runConnector(tokenFile, { "admin.shop.svc.cluster.local:8443": `127.0.0.1:${securePort}` });
    await eventually(async () => expect((await readyOf(connector)).readyConnections).toBe(4), 10_000);
    await eventually(async () => expect((await visit("admin.example.com", "/")).body).toBe("admin\n"), 5000);
    expect(seen.at(-1)).toEqual(expect.objectContaining({ origin: "admin", servername: "admin.shop.svc", host: "admin.example.com" }));
    // Without noTLSVerify the origin's certificate (not from a public CA) is not trusted: 502.
    expect(await visit("strict.example.com", "/")).toMatchObject({ status: 502, body: expect.stringMatching(/^Bad Gateway: .*certificate/) });
    expect(await visit("ssh.example.com", "/")).toMatchObject({ status: 502, body: "the cloudflared stand-in does not implement tcp://bastion.shop.svc.cluster.local:22\n" });
  }, 30_000);

  it("makes a quick tunnel for `--url`: a random trycloudflare.com hostname, told at /quicktunnel, that serves everything to the origin", async () => {
    const connector = runConnector({ url: "http://whoami.demo.svc.cluster.local:80" }, { "whoami.demo.svc.cluster.local:80": `127.0.0.1:${webPort}` });
    await eventually(async () => expect((await readyOf(connector)).readyConnections).toBe(4), 10_000);
    const { hostname } = await metricsOf<{ hostname: string }>(connector, "/quicktunnel");
    expect(hostname).toMatch(/^[a-z]+-[a-z]+-[a-z]+-[0-9a-f]{4}\.trycloudflare\.com$/);
    expect(connector.output).toContain(`Visit it at: https://${hostname}`);
    expect(await visit(hostname, "/anything/at/all")).toMatchObject({ status: 200, body: "web\n" });
    expect(seen.at(-1)).toEqual(expect.objectContaining({ origin: "web", host: hostname, path: "/anything/at/all" }));
    // Outside every account: the account's tunnels are the ones the other tests made.
    expect(s.fake.liveTunnels().map((t) => t.name).sort()).toEqual(["home", "tls"]);
    expect((await visit("not-made-yet.trycloudflare.com", "/")).status).toBe(404);
  }, 30_000);

  it("sends a hostname behind Access to the Access login, and answers 530 (error 1033) for a tunnel without connectors", async () => {
    const { id } = await tunnelWithToken("idle");
    await route(id, "idle.example.com");
    await route(id, "private.example.com");
    await s.cf.zeroTrust.access.applications.create({ account_id: s.account, type: "self_hosted", domain: "private.example.com", name: "private" });
    expect(await visit("idle.example.com", "/")).toMatchObject({ status: 530, body: expect.stringMatching(/^error code: 1033/) });
    const login = await visit("private.example.com", "/reports?q=1");
    expect(login.status).toBe(302);
    const location = new URL(login.headers.location!);
    expect(`${location.origin}${location.pathname}`).toBe("https://ktube-demo.cloudflareaccess.com/cdn-cgi/access/login/private.example.com");
    expect(location.searchParams.get("redirect_url")).toBe("/reports?q=1");
  });

  it("refuses a connector with a wrong secret, and on SIGTERM closes the connections, exits 0 and lets the tunnel be deleted", async () => {
    const { id, tokenFile } = await tunnelWithToken("bye");
    const forged = join(dir, "forged.token");
    const [a, t] = [s.account, id];
    writeFileSync(forged, Buffer.from(JSON.stringify({ a, t, s: Buffer.from("not the secret").toString("base64") })).toString("base64"));
    const impostor = runConnector(forged, {});
    await eventually(() => expect(impostor.output).toMatch(/Serve tunnel error connIndex=\d error=Unauthorized: Invalid tunnel secret/), 10_000);
    expect(edge.connections(id)).toBe(0);
    await impostor.stop();

    const connector = runConnector(tokenFile, {});
    await eventually(() => expect(edge.connections(id)).toBe(4), 10_000);
    expect((await s.cf.zeroTrust.tunnels.cloudflared.delete(id, { account_id: s.account }).then(() => 200, (e: { status: number }) => e.status))).toBe(400);
    await connector.stop();
    expect(await connector.exited).toBe(0);
    expect(connector.output).toMatch(/Initiating graceful shutdown due to signal terminated/);
    // The edge sees each connection close (no barrier needed: this waits for a change, not its absence).
    await eventually(() => expect(edge.connections(id)).toBe(0));
    expect((await s.cf.zeroTrust.tunnels.cloudflared.get(id, { account_id: s.account })).status).toBe("down");
    await s.cf.zeroTrust.tunnels.cloudflared.delete(id, { account_id: s.account });
  }, 30_000);
});
