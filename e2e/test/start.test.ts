// `npm start` as a newcomer runs it: no kubeconfig, so a local control plane, the fake
// providers, a demo backend and the connectors as local processes; then the example
// manifests are applied with kubectl and the printed commands reach the demo backend.
import { afterAll, describe, expect, it } from "@jest/globals";
import { eventually, freePort, kubectl } from "@ktube/testenv";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { mkdtempSync } from "node:fs";
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

/** The connector processes (the `connector` subcommand of a controller's main.ts, and the cloudflared stand-in) started by `pid`. */
function connectorsOf(pid: number): number[] {
  const out = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(pid)], { encoding: "utf8" });
  return out.split("\n").filter((l) => /src\/main\.ts connector\b|src\/cloudflared\.ts tunnel\b/.test(l)).map((l) => Number.parseInt(l.trim(), 10));
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
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
  it("runs the controllers and connectors on a local control plane where the Cloudflare, ngrok and Dev Tunnels examples become Ready and answer, and the dashboard shows them", async () => {
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

    // Ctrl-C stops everything, the connectors too.
    const connectors = connectorsOf(child.pid!);
    expect(connectors.length).toBe(6); // two cloudflared and a quick tunnel's, two ngrok agents, one Dev Tunnels host
    child.kill("SIGINT");
    const code = await new Promise((resolve) => child!.once("exit", resolve));
    expect(code).toBe(0);
    expect(connectors.filter(alive)).toEqual([]);
  });
});
