// Does Cloudflare accept the session's API token, and is it active?
import type { CloudflareApi } from "./api.ts";
import { verifyAccountToken, verifyUserToken } from "./cloudflare-sdk.ts";
import { CloudflareError } from "./errors.ts";

/**
 * The token's status ("active", "disabled", "expired"). A user-owned token answers on
 * /user/tokens/verify, an account-owned one only on the account's endpoint, so that one
 * is asked when the first refuses. A token both refuse throws CloudflareError
 * `AuthenticationFailed`.
 */
export async function verifyToken(api: CloudflareApi): Promise<{ status: string }> {
  try {
    return await api.call("user.tokens.verify", (sdk) => verifyUserToken(sdk));
  } catch (error) {
    if (!(error instanceof CloudflareError && error.reason === "AuthenticationFailed")) throw error;
    return api.call("accounts.tokens.verify", (sdk) => verifyAccountToken(sdk, api.accountId));
  }
}
