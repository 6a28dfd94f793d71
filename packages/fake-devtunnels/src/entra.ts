// A stand-in for Microsoft Entra ID's token endpoint (login.microsoftonline.com), for the
// client-credentials grant only: `POST /{tenant}/oauth2/v2.0/token` with a form body of
// grant_type=client_credentials, client_id, client_secret and the Dev Tunnels scope. A token
// it issues is a valid management token of the fake service (for the identity of that app).
// Errors use Entra's OAuth error body (`error`, `error_description` with the AADSTS code).
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { DevTunnelsService } from "./service.ts";

/** The Dev Tunnels first-party app; the only scope the fake issues for. */
export const DEV_TUNNELS_SCOPE = "46da2f7e-b5ef-422a-88d4-2a7f9de6a0b2/.default";

export interface EntraRequest {
  tenant: string;
  clientId?: string;
  status: number;
}

export class FakeEntra {
  private readonly service: DevTunnelsService;
  private readonly apps = new Map<string, { tenant: string; secret: string }>();
  private readonly server = http.createServer((req, res) => void this.handle(req, res));
  /** Every token request, for tests that count refreshes. */
  readonly requests: EntraRequest[] = [];
  /** Lifetime of issued tokens (Entra: about an hour). */
  tokenLifetimeS = 3600;
  private base = "";

  constructor(service: DevTunnelsService) {
    this.service = service;
  }

  /** Registers an app (service principal) with a client secret. */
  addApp(tenant: string, clientId: string, secret: string): void {
    this.apps.set(clientId, { tenant, secret });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.base;
  }

  /** The authority base URL, e.g. `http://127.0.0.1:PORT` (in place of https://login.microsoftonline.com). */
  get authority(): string {
    return this.base;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const match = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(req.url ?? "");
    const fail = (status: number, error: string, description: string, tenant = "", clientId?: string): void => {
      this.requests.push({ tenant, status, ...(clientId ? { clientId } : {}) });
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ error, error_description: description, error_codes: [Number(/AADSTS(\d+)/.exec(description)?.[1] ?? 0)] }));
    };
    if (req.method !== "POST" || !match) return fail(404, "invalid_request", "AADSTS900561: The endpoint only accepts POST requests.");
    const tenant = decodeURIComponent(match[1]!);
    if (!/^application\/x-www-form-urlencoded/.test(req.headers["content-type"] ?? "")) return fail(400, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'grant_type'.", tenant);
    let body = "";
    for await (const chunk of req) body += String(chunk);
    const form = new URLSearchParams(body);
    const clientId = form.get("client_id") ?? undefined;
    if (form.get("grant_type") !== "client_credentials") return fail(400, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.", tenant, clientId);
    const app = clientId ? this.apps.get(clientId) : undefined;
    if (!app || app.tenant !== tenant) return fail(400, "unauthorized_client", `AADSTS700016: Application with identifier '${clientId}' was not found in the directory '${tenant}'.`, tenant, clientId);
    if (form.get("client_secret") !== app.secret) return fail(401, "invalid_client", `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`, tenant, clientId);
    if (form.get("scope") !== DEV_TUNNELS_SCOPE) return fail(400, "invalid_scope", `AADSTS70011: The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid.`, tenant, clientId);
    const token = this.service.addUserToken(`sp-${clientId}`, this.tokenLifetimeS * 1000);
    this.requests.push({ tenant, clientId: clientId!, status: 200 });
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token_type: "Bearer", expires_in: this.tokenLifetimeS, ext_expires_in: this.tokenLifetimeS, access_token: token }));
  }
}
