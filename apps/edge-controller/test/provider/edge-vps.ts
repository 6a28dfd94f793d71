// A test VPS ready for enrollment: testenv's VPS (real sshd, its own network and file
// system), a CA it trusts, and an HTTPS server on the test machine's side of its link that
// serves "Envoy" (fake-envoy's one-file executable, or the real Envoy binary that ENVOY_BIN
// names where one exists; or any bytes a test wants to offer).
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeFakeEnvoyExecutable } from "@ktube/fake-envoy";
import { createTestCa, startVps, type Vps } from "@ktube/testenv";
import { shellQuote, type VpsTarget } from "../../src/provider/ssh.ts";
import { ENVOY_BOOTSTRAP } from "../../src/provider/vps-files.ts";

export interface EdgeVps {
  vps: Vps;
  /** https URL and SHA-256 of the fake-envoy executable. */
  envoy: Offer;
  /** The CA of the download server's certificate. */
  caCert: string;
  /** The fake-envoy executable itself, to offer again (e.g. slowly). */
  envoyExecutable: Buffer;
  /** Serves `content` at a new https URL the VPS can download from, after `delayMs`; `requested` resolves at the first request. */
  offer(content: Buffer | string, options?: { delayMs?: number; delayOnce?: boolean }): Offer;
  target(overrides?: Partial<VpsTarget>): VpsTarget;
  stop(): Promise<void>;
}

export interface Offer {
  url: string;
  sha256: string;
  requested: Promise<void>;
}

const sha256 = (content: Buffer | string): string => createHash("sha256").update(content).digest("hex");

/** The Envoy processes on the VPS (in its network namespace): pid, uid and effective/ambient capabilities. */
export async function envoyProcesses(edge: EdgeVps): Promise<Array<{ pid: number; uid: number; capEff: string; capAmb: string }>> {
  const pids = execFileSync("ip", ["netns", "pids", edge.vps.namespace], { encoding: "utf8" }).split("\n").filter(Boolean);
  const found: Array<{ pid: number; uid: number; capEff: string; capAmb: string }> = [];
  for (const pid of pids) {
    let cmdline: string;
    let status: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
      status = readFileSync(`/proc/${pid}/status`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    if (!cmdline.includes(`-c ${ENVOY_BOOTSTRAP}`) || /^State:\s+Z/m.test(status)) continue;
    const field = (name: string): string => new RegExp(`^${name}:\\s+(\\S+)`, "m").exec(status)?.[1] ?? "";
    found.push({ pid: Number(pid), uid: Number(field("Uid")), capEff: field("CapEff"), capAmb: field("CapAmb") });
  }
  return found;
}

/** The VPS trusts `caPem` the way a real one trusts the public CAs: in its CA bundle. */
export async function trustCa(vps: Vps, caPem: string): Promise<void> {
  const trust = await vps.exec(`printf '%s\\n' ${shellQuote(caPem)} >> /etc/ssl/certs/ca-certificates.crt`);
  if (trust.code !== 0) throw new Error(`could not add the test CA to the VPS: ${trust.stderr}`);
}

export async function startEdgeVps(): Promise<EdgeVps> {
  const scratch = mkdtempSync(join(tmpdir(), "ktube-edge-vps-"));
  const vps = await startVps();
  let server: Server | undefined;
  try {
    const ca = await createTestCa(scratch);
    const serving = await ca.issue("ktube-downloads", { ipAddresses: [vps.hostAddress] });
    await trustCa(vps, ca.cert);

    // fake-envoy runs on the VPS as the unprivileged envoy user (it finds a validator that user may run).
    const executable = join(scratch, "envoy");
    await writeFakeEnvoyExecutable(executable);

    const files = new Map<string, { body: Buffer; delayMs: number; delayOnce: boolean; requested: () => void }>();
    server = createServer({ cert: serving.cert, key: serving.key }, (request, response) => {
      const file = files.get(request.url ?? "");
      if (!file) return void response.writeHead(404).end();
      file.requested();
      const delay = file.delayMs;
      if (file.delayOnce) file.delayMs = 0;
      const timer = setTimeout(() => response.writeHead(200).end(file.body), delay);
      response.on("close", () => clearTimeout(timer));
    });
    await new Promise<void>((resolve) => server!.listen(0, vps.hostAddress, resolve));
    const port = (server.address() as AddressInfo).port;
    const offer = (content: Buffer | string, options: { delayMs?: number; delayOnce?: boolean } = {}): Offer => {
      const path = `/files/${files.size}`;
      let requested!: () => void;
      const seen = new Promise<void>((resolve) => (requested = resolve));
      files.set(path, { body: Buffer.from(content), delayMs: options.delayMs ?? 0, delayOnce: options.delayOnce ?? false, requested });
      return { url: `https://${vps.hostAddress}:${port}${path}`, sha256: sha256(content), requested: seen };
    };
    // A real Envoy where there is one (none can be installed on the machines this is built on).
    const envoyExecutable = readFileSync(process.env.ENVOY_BIN || executable);
    const envoy = offer(envoyExecutable);
    return {
      vps,
      envoy,
      envoyExecutable,
      caCert: ca.cert,
      offer,
      target: (overrides = {}) => ({
        host: vps.address,
        port: vps.port,
        user: vps.user,
        privateKey: vps.clientPrivateKey,
        knownHosts: `${vps.hostPublicKey}\n`,
        insecureSkipHostKeyVerification: false,
        ...overrides,
      }),
      async stop() {
        server?.close();
        await vps.stop();
        rmSync(scratch, { recursive: true, force: true });
      },
    };
  } catch (error) {
    server?.close();
    await vps.stop();
    rmSync(scratch, { recursive: true, force: true });
    throw error;
  }
}
