// The Authorization value the Dev Tunnels service takes: from a Microsoft Entra service
// principal (OAuth2 client credentials, cached until a minute before it expires, fetched
// again on demand), or a raw value a person pasted (it expires and is not refreshed).
// A plain fetch: @azure/identity would add a large dependency for one form POST.
import { ProviderError } from "@ktube/provider-kit";

export const DEV_TUNNELS_SCOPE = "46da2f7e-b5ef-422a-88d4-2a7f9de6a0b2/.default";
export const DEFAULT_AUTHORITY = "https://login.microsoftonline.com";

export interface EntraCredentials {
  tenantId: string;
  clientId: string;
  clientSecret: string;
}

export type TokenSource = () => Promise<string>;

/** A raw header value (`Bearer …`, `github …`, `tunnel …`); a bare token is taken as Bearer. */
export function rawToken(value: string): TokenSource {
  const header = /^(Bearer|github|tunnel|aad) /i.test(value.trim()) ? value.trim() : `Bearer ${value.trim()}`;
  return () => Promise.resolve(header);
}

/** Client credentials against Entra, with the token cached until shortly before it expires. */
export function entraToken(credentials: EntraCredentials, authority = DEFAULT_AUTHORITY, now: () => number = Date.now): TokenSource {
  let cached: { header: string; until: number } | undefined;
  let inflight: Promise<string> | undefined;
  const fetchToken = async (): Promise<string> => {
    const url = `${authority}/${encodeURIComponent(credentials.tenantId)}/oauth2/v2.0/token`;
    let response: Response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "client_credentials", client_id: credentials.clientId, client_secret: credentials.clientSecret, scope: DEV_TUNNELS_SCOPE }),
        signal: AbortSignal.timeout(20_000),
      });
    } catch (error) {
      throw new ProviderError("Unreachable", `Microsoft Entra ID could not be reached: ${(error as Error).message}`);
    }
    const body = (await response.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string; error_description?: string };
    if (!response.ok || !body.access_token) {
      // Entra's description names the problem (AADSTS7000215: invalid secret...) and holds no secret.
      const detail = (body.error_description ?? body.error ?? `HTTP ${response.status}`).split("\r\n")[0];
      throw new ProviderError("InvalidCredentials", `Microsoft Entra ID refused the client credentials: ${detail}`, { terminal: response.status === 400 || response.status === 401 });
    }
    cached = { header: `Bearer ${body.access_token}`, until: now() + Math.max(0, (body.expires_in ?? 3600) - 60) * 1000 };
    return cached.header;
  };
  return async () => {
    if (cached && cached.until > now()) return cached.header;
    inflight ??= fetchToken().finally(() => (inflight = undefined));
    return inflight;
  };
}
