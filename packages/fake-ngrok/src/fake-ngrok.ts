// FakeNgrok: one ngrok account with both of its doors, the agent ingress the SDK connects
// to and the REST API, for controller tests, benches and the local demo.
import http from "node:http";
import { randomBytes } from "node:crypto";
import { Account, type AccountOptions, type ReservedDomain } from "./account.ts";
import { AgentIngress } from "./agent/ingress.ts";
import { allocateTcpAddr } from "./agent/tcp-addrs.ts";
import { newAuthtoken } from "./agent/authtoken.ts";
import { NgrokApi, type NgrokApiOptions } from "./api/server.ts";

export interface FakeNgrokOptions extends AccountOptions {
  api?: Omit<NgrokApiOptions, "allocateTcpAddr">;
}

export class FakeNgrok {
  readonly account: Account;
  readonly ingress: AgentIngress;
  readonly api: NgrokApi;
  private apiBase = "";

  constructor(options: FakeNgrokOptions = {}) {
    this.account = new Account(options);
    this.ingress = new AgentIngress(this.account);
    // Both sides spell TCP addresses the same way (127.0.0.1:PORT).
    this.api = new NgrokApi(this.account, { ...options.api, allocateTcpAddr });
  }

  async start(): Promise<void> {
    await this.ingress.start();
    this.apiBase = await this.api.start();
  }

  async stop(): Promise<void> {
    await this.ingress.close();
    await this.api.close();
  }

  /** `host:port` of the agent ingress, for `SessionBuilder.serverAddr`. */
  get serverAddr(): string {
    return this.ingress.serverAddr;
  }

  /** PEM of the CA that signed the ingress's certificate, for `SessionBuilder.caCert`. */
  get caPem(): string {
    return this.ingress.caPem;
  }

  get apiUrl(): string {
    return this.apiBase;
  }

  /** A new valid agent authtoken of this account. */
  addAuthtoken(): string {
    const token = newAuthtoken();
    this.account.authtokens.add(token);
    return token;
  }

  /** A new valid REST API key of this account (ngrok's FIRSTPART_SECONDPART form). */
  addApiKey(): string {
    const key = `${randomBytes(14).toString("base64url").replace(/[-_]/g, "a")}_${randomBytes(24).toString("base64url").replace(/[-_]/g, "b")}`;
    this.account.apiKeys.add(key);
    return key;
  }

  /** Reserves a domain as a person would in ngrok's dashboard (not through the API). */
  reserveDomain(domain: string, description = ""): ReservedDomain {
    const reserved: ReservedDomain = {
      id: this.account.newId("rd"),
      domain: domain.toLowerCase(),
      region: this.account.region,
      description,
      metadata: "",
      createdAt: new Date().toISOString(),
      cnameTarget: null,
    };
    this.account.reservedDomains.set(reserved.id, reserved);
    return reserved;
  }

  /** A GET through the public HTTP listener, as a browser asking for `host` would. */
  httpGet(host: string, path: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = http.get({ host: "127.0.0.1", port: this.ingress.publicHttpPort, path, headers: { host, connection: "close" } }, (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
    });
  }
}
