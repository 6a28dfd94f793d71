// One uplink replica: keeps its WireGuard interface to the VPS and its nftables table equal
// to the route table, serves /ready on its tunnel address for Envoy's health checks (only
// while the table is applied and the handshake with the VPS is fresh), repairs what
// disappears (an interface or table deleted by hand), and on stop drains: it reports not
// ready, keeps forwarding until Envoy's health checks have taken it out, then removes its
// rules and interface.
import type { Logger } from "@ktube/runtime";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { tableHash, uplinkKeyFile, type UplinkReport, type UplinkTable } from "../manifests/uplink.ts";
import { applyUplinkRules, removeUplinkRules, renderUplinkRules, UPLINK_TABLE, type UplinkRules } from "./nftables.ts";
import { bringUpWireGuard, HANDSHAKE_FRESH_MS, latestHandshake, localExec, removeWireGuard, type Exec, type UplinkWireGuard } from "./wireguard.ts";

export interface UplinkOptions {
  /** The replica's ordinal: which key and tunnel address are its own. */
  ordinal: number;
  iface: string;
  /** Where the uplinks' Secret is mounted (`uplink-<ordinal>.key`). */
  keyDir: string;
  logger: Logger;
  exec?: Exec;
  /** How often the interface, the table and the handshake are checked once serving (default 5 s; 1 s until then). */
  pollMs?: number;
}

interface Problem {
  reason: string;
  message: string;
}

export class Uplink {
  private readonly options: UplinkOptions;
  private readonly exec: Exec;
  private table: UplinkTable | undefined;
  /** What is in place: the WireGuard settings and the ruleset as last applied, and the table they came from. */
  private wireguard: UplinkWireGuard | undefined;
  /** The key file's hash when the interface was set up: a rotated key (a new seed) is picked up from the mounted Secret. */
  private keyHash: string | undefined;
  private rules: string | undefined;
  private applied: string | undefined;
  private implementation: UplinkReport["wireguard"];
  private handshakeFresh = false;
  private problem: Problem | undefined;
  private stopping = false;
  private running: Promise<void> | undefined;
  private again = false;
  private failures = 0;
  private retry: NodeJS.Timeout | undefined;
  private readonly poller: NodeJS.Timeout;
  private polling = false;
  private lastPoll = 0;
  private readyServer: { address: string; port: number; server: http.Server } | undefined;
  onReport: (report: UplinkReport) => void = () => undefined;

  constructor(options: UplinkOptions) {
    this.options = options;
    this.exec = options.exec ?? localExec;
    this.poller = setInterval(() => void this.poll(), 1000);
  }

  setTable(table: UplinkTable): void {
    this.table = table;
    this.kick();
  }

  ready(): boolean {
    return !this.stopping && this.table !== undefined && this.applied === tableHash(this.table) && this.handshakeFresh;
  }

  /** Drains, then removes the rules and the interface. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.poller);
    clearTimeout(this.retry);
    this.report();
    await this.running;
    if (this.applied !== undefined && this.table) {
      this.options.logger.info({ seconds: this.table.drainSeconds }, "draining: reporting not ready until Envoy's health checks take this uplink out");
      await sleep(this.table.drainSeconds * 1000);
    }
    this.readyServer?.server.close();
    await removeUplinkRules();
    await removeWireGuard(this.options.iface, this.exec);
  }

  private kick(): void {
    if (this.stopping) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.retry);
    this.running = this.apply().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  private async apply(): Promise<void> {
    const table = this.table;
    if (!table) return;
    try {
      const keyHash = this.keyFileHash();
      const problem = this.checkForwarding() ?? this.checkTable(table, keyHash);
      if (problem) throw Object.assign(new Error(problem.message), { problem });
      const { iface, ordinal, keyDir } = this.options;
      const wireguard: UplinkWireGuard = {
        iface,
        privateKeyFile: join(keyDir, uplinkKeyFile(ordinal)),
        address: table.addresses[ordinal]!,
        mtu: table.mtu,
        vps: table.vps,
        persistentKeepalive: table.persistentKeepalive,
      };
      if (JSON.stringify(wireguard) !== JSON.stringify(this.wireguard) || keyHash !== this.keyHash) {
        // A moved tunnel network: the old address goes, or the interface would answer on both.
        if (this.wireguard && this.wireguard.address !== wireguard.address) await this.exec("ip", ["address", "flush", "dev", iface]).catch(() => undefined);
        const kind = await bringUpWireGuard(wireguard, this.exec);
        if (kind !== "existing") this.implementation = kind;
        this.implementation ??= await this.detectImplementation();
        this.wireguard = wireguard;
        this.keyHash = keyHash;
        this.options.logger.info({ iface, address: wireguard.address, endpoint: wireguard.vps.endpoint, implementation: this.implementation }, "WireGuard interface up");
      }
      const spec: UplinkRules = {
        iface,
        readyPort: table.readyPort,
        rules: table.routes.map((route) => ({ protocol: route.protocol, tunnelPort: route.tunnelPort, target: route.target })),
      };
      const rules = renderUplinkRules(spec);
      if (rules !== this.rules) {
        await applyUplinkRules(spec);
        this.rules = rules;
        this.options.logger.info({ routes: table.routes.length }, "forwarding rules applied");
      }
      await this.listenReady(wireguard.address.split("/")[0]!, table.readyPort);
      this.applied = tableHash(table);
      this.problem = undefined;
      this.failures = 0;
    } catch (error) {
      this.problem = (error as { problem?: Problem }).problem ?? { reason: "ApplyFailed", message: error instanceof Error ? error.message : String(error) };
      this.options.logger.error({ reason: this.problem.reason, error: this.problem.message }, "the route table could not be applied; retrying");
      this.failures++;
      this.retry = setTimeout(() => this.kick(), Math.min(30_000, 500 * 2 ** this.failures));
    }
    await this.poll(true);
  }

  /** Forwarding is per network namespace; pods inherit the node's, which Kubernetes networking needs on. */
  private checkForwarding(): Problem | undefined {
    const path = "/proc/sys/net/ipv4/ip_forward";
    if (readFileSync(path, "utf8").trim() === "1") return undefined;
    try {
      writeFileSync(path, "1");
      return undefined;
    } catch {
      return {
        reason: "ForwardingDisabled",
        message: "net.ipv4.ip_forward is 0 in the uplink's network namespace and cannot be set from the container: enable IP forwarding on the node (Kubernetes networking normally needs it on)",
      };
    }
  }

  private checkTable(table: UplinkTable, keyHash: string | undefined): Problem | undefined {
    const { ordinal } = this.options;
    if (!table.addresses[ordinal]) {
      return { reason: "NoTunnelAddress", message: `replica ${ordinal} has no tunnel address: the table has ${table.addresses.length} (spec.edge.uplink.replicas)` };
    }
    if (keyHash === undefined) return { reason: "KeyMissing", message: `${uplinkKeyFile(ordinal)} is not in the mounted key Secret yet` };
    return undefined;
  }

  private keyFileHash(): string | undefined {
    try {
      return createHash("sha256").update(readFileSync(join(this.options.keyDir, uplinkKeyFile(this.options.ordinal)))).digest("hex");
    } catch {
      return undefined;
    }
  }

  private async detectImplementation(): Promise<UplinkReport["wireguard"]> {
    const type = await this.exec("ip", ["-d", "link", "show", "dev", this.options.iface]).catch(() => "");
    return /\bwireguard\b/.test(type) ? "kernel" : "wireguard-go";
  }

  private async listenReady(address: string, port: number): Promise<void> {
    if (this.readyServer?.address === address && this.readyServer.port === port) return;
    this.readyServer?.server.close();
    const server = http.createServer((req, res) => {
      const ready = req.url === "/ready" && this.ready();
      res.writeHead(req.url === "/ready" ? (ready ? 200 : 503) : 404).end(ready ? "ready\n" : "not ready\n");
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, address, () => resolve());
    });
    this.readyServer = { address, port, server };
  }

  /** Checks the handshake, and that the interface and the table are still there (repairing them when not). */
  private async poll(force = false): Promise<void> {
    if (this.polling || this.stopping || !this.wireguard) return;
    const interval = this.handshakeFresh ? (this.options.pollMs ?? 5000) : 1000;
    if (!force && Date.now() - this.lastPoll < interval) return;
    this.polling = true;
    this.lastPoll = Date.now();
    try {
      const handshake = await latestHandshake(this.options.iface, this.exec).catch(() => undefined);
      const fresh = handshake !== undefined && Date.now() - handshake.getTime() < HANDSHAKE_FRESH_MS;
      if (fresh !== this.handshakeFresh) {
        this.handshakeFresh = fresh;
        this.options.logger.info({ endpoint: this.wireguard.vps.endpoint }, fresh ? "handshake with the VPS" : "no fresh handshake with the VPS");
      }
      const iface = await this.exec("ip", ["link", "show", "dev", this.options.iface]).then(
        () => true,
        () => false,
      );
      const rules = await this.exec("nft", ["list", "table", "ip", UPLINK_TABLE]).then(
        () => true,
        () => false,
      );
      if (!iface || !rules) {
        this.options.logger.warn({ iface, rules }, "the interface or the forwarding table disappeared; restoring");
        if (!iface) this.wireguard = undefined;
        this.rules = undefined;
        this.kick();
      } else if (this.keyFileHash() !== this.keyHash) {
        this.options.logger.info("the uplink's key changed; setting it");
        this.kick();
      }
    } finally {
      this.polling = false;
      this.report();
    }
  }

  private report(): void {
    const report: UplinkReport = { ready: this.ready(), ...(this.applied ? { table: this.applied } : {}), ...(this.implementation ? { wireguard: this.implementation } : {}) };
    const problem: Problem | undefined = this.stopping
      ? { reason: "Draining", message: "the uplink is stopping" }
      : (this.problem ??
        (this.wireguard && !this.handshakeFresh
          ? { reason: "NoHandshake", message: `no WireGuard handshake with the VPS at ${this.wireguard.vps.endpoint} in the last ${HANDSHAKE_FRESH_MS / 1000} s: can this pod reach UDP ${this.wireguard.vps.endpoint}?` }
          : undefined));
    this.onReport(problem && !report.ready ? { ...report, ...problem } : report);
  }
}
