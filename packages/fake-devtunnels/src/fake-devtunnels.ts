// FakeDevTunnels: the Dev Tunnels service with its three doors, for controller tests, benches
// and the local demo: the management API, the relay (hosts connect, web forwarding serves the
// ports on loopback) and a Microsoft Entra token endpoint issuing management tokens.
import http from "node:http";
import { FakeEntra } from "./entra.ts";
import { ManagementApi, type ManagementApiOptions } from "./management/server.ts";
import { Relay, type RelayOptions } from "./relay/relay.ts";
import { DEFAULT_WEB_FORWARDING_DOMAIN } from "./relay/web-forwarding.ts";
import { DevTunnelsService, type ServiceOptions } from "./service.ts";

export interface FakeDevTunnelsOptions extends ServiceOptions {
  management?: Omit<ManagementApiOptions, "relayUri" | "webForwardingBase">;
  relay?: RelayOptions;
}

export class FakeDevTunnels {
  readonly service: DevTunnelsService;
  readonly relay: Relay;
  readonly management: ManagementApi;
  readonly entra: FakeEntra;
  private managementBase = "";

  constructor(options: FakeDevTunnelsOptions = {}) {
    this.service = new DevTunnelsService(options);
    this.relay = new Relay(this.service, options.relay);
    this.management = new ManagementApi(this.service, {
      ...options.management,
      relayUri: (tunnelId) => this.relay.hostRelayUri(tunnelId),
      // The relay serves what the ports' URLs name (`port` may be the "{port}" placeholder).
      webForwardingBase: (tunnelId, port) => `https://${tunnelId}-${port}.${this.service.clusterId}.${options.relay?.webForwardingDomain ?? DEFAULT_WEB_FORWARDING_DOMAIN}/`,
    });
    this.entra = new FakeEntra(this.service);
  }

  async start(): Promise<void> {
    await this.relay.start();
    this.managementBase = await this.management.start();
    await this.entra.start();
  }

  async stop(): Promise<void> {
    await this.management.close();
    await this.relay.close();
    await this.entra.close();
  }

  /** The management API's base URL (`http://localhost:PORT/`): what the SDK's client is given. */
  get serviceUrl(): string {
    return `${this.managementBase.replace(/\/$/, "")}/`;
  }

  /** An Entra app (service principal) whose client credentials get management tokens. */
  addApp(tenantId: string, clientId: string, clientSecret: string): void {
    this.entra.addApp(tenantId, clientId, clientSecret);
  }

  /** A GET through web forwarding, as a browser opening a port's URL would (`url` from portForwardingUris). */
  httpGet(url: string, path = "/"): Promise<{ status: number; body: string }> {
    const host = new URL(url).host;
    return new Promise((resolve, reject) => {
      const req = http.get({ host: "127.0.0.1", port: this.relay.publicHttpPort, path, headers: { host, connection: "close", accept: "text/plain" } }, (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
    });
  }
}
