// `npm start` as a newcomer runs it: no kubeconfig, so a local control plane and a
// fake Cloudflare account; then the example manifests are applied with kubectl.
import { afterAll, describe, expect, it } from "@jest/globals";
import { eventually, kubectl } from "@ktube/testenv";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..", "..");
let child: ChildProcess | undefined;

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill("SIGINT");
    await new Promise((resolve) => child!.once("exit", resolve));
  }
});

describe("npm start", () => {
  it("runs the controllers on a local control plane where the Cloudflare, ngrok and Dev Tunnels providers become Ready", async () => {
    const home = mkdtempSync(join(tmpdir(), "ktube-start-home-"));
    child = spawn(process.execPath, [join(ROOT, "scripts", "start.ts")], {
      cwd: ROOT,
      // A HOME without ~/.kube/config, but the usual cache of built control-plane binaries.
      env: { ...process.env, HOME: home, XDG_CACHE_HOME: process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), KUBECONFIG: "", NODE_OPTIONS: "", LOG_LEVEL: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
    const kubeconfig = await eventually(() => {
      const m = /export KUBECONFIG=(\S+)/.exec(out);
      if (!m) throw new Error(`not started yet:\n${out.slice(-2000)}`);
      return m[1]!;
    }, 120_000, 250);
    const k = (args: string[]) => kubectl([`--kubeconfig=${kubeconfig}`, ...args]);
    await k(["create", "namespace", "platform"]);
    await k(["create", "namespace", "shop"]);
    await k(["label", "namespace", "shop", "ktube.dev/tunnel-access=home"]);
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
    // The example's Services do not exist here: the binding says so instead of failing silently.
    await eventually(async () => {
      const { stdout } = await k(["-n", "shop", "get", "tb", "shop", "-o", "jsonpath={.status.conditions[?(@.type=='ResolvedRefs')].message}"]);
      expect(stdout).toContain("Service shop/shop-web not found");
    }, 30_000, 250);
    // The ngrok controller runs too, against the fake ngrok cloud.
    expect((await k(["apply", "-f", join(ROOT, "examples", "ngrok.yaml")])).code).toBe(0);
    await eventually(async () => {
      const { stdout } = await k(["get", "tp", "ngrok", "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].reason}"]);
      expect(stdout).toBe("CredentialsVerified");
    }, 30_000, 250);
    // And the Dev Tunnels controller, against the fake service: the example's dev tunnel is made.
    await k(["create", "namespace", "demo"]);
    expect((await k(["apply", "-f", join(ROOT, "examples", "devtunnels.yaml")])).code).toBe(0);
    await eventually(async () => {
      const { stdout } = await k(["-n", "demo", "get", "tun", "preview", "-o", "jsonpath={.status.tunnelId}/{.status.region}"]);
      expect(stdout).toMatch(/^kt-[0-9a-f]{16}\/euw$/);
    }, 30_000, 250);
    child.kill("SIGINT");
    const code = await new Promise((resolve) => child!.once("exit", resolve));
    expect(code).toBe(0);
  });
});
