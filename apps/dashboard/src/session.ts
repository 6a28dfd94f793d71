// Signing in with a bearer token: checked with a SelfSubjectReview made *as* that token, kept
// only in an HttpOnly cookie whose lifetime never exceeds the token's own.
import type { ApiServer } from "./kube.ts";
import { KubeApiError, UserClient } from "./kube.ts";

/** `__Host-`: the browser keeps it only when Secure, Path=/ and without Domain (no subdomain can set or read it). */
export const SESSION_COOKIE = "__Host-ktube-session";

/** Browsers drop cookies over ~4 KB (name and attributes included): refuse instead of failing silently. */
export const MAX_TOKEN_BYTES = 3800;

/** Tokens that are not JWTs (static tokens, webhook tokens) carry no expiry: sessions end after this. */
export const DEFAULT_MAX_SESSION_SECONDS = 8 * 60 * 60;

export interface Identity {
  username: string;
  groups: string[];
}

export interface Session {
  token: string;
  identity: Identity;
  /** Seconds since the epoch when the cookie (and the session) ends. */
  expiresAt: number;
}

export class SignInError extends Error {
  override name = "SignInError";
  readonly reason: "Empty" | "Unauthorized" | "Expired" | "TooLarge" | "Unreachable";

  constructor(reason: SignInError["reason"], message: string) {
    super(message);
    this.reason = reason;
  }
}

/** The `exp` claim of a JWT, without verifying it (the API server verifies the token; this only bounds the cookie). */
export function jwtExpiry(token: string): number | undefined {
  const parts = token.split(".");
  if (parts.length !== 3 || !parts[1]) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8")) as { exp?: unknown };
    return typeof claims.exp === "number" && Number.isFinite(claims.exp) ? claims.exp : undefined;
  } catch {
    return undefined;
  }
}

export function sessionExpiry(token: string, now: number, maxSessionSeconds: number): number {
  const limit = now + maxSessionSeconds;
  const exp = jwtExpiry(token);
  return exp === undefined ? limit : Math.min(exp, limit);
}

interface SelfSubjectReview {
  status?: { userInfo?: { username?: string; groups?: string[] } };
}

/** Who `token` is, according to the API server; 401 means the token is not valid. */
export async function reviewSelf(server: ApiServer, token: string): Promise<Identity> {
  const review = await new UserClient(server, token).request<SelfSubjectReview>("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {
    body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
  });
  const info = review.status?.userInfo ?? {};
  return { username: info.username ?? "(unknown)", groups: info.groups ?? [] };
}

export async function signIn(server: ApiServer, rawToken: string, now: number, maxSessionSeconds: number): Promise<Session> {
  const token = rawToken.trim().replace(/^Bearer\s+/i, "");
  if (!token) throw new SignInError("Empty", "Paste a token to sign in.");
  if (token.length > MAX_TOKEN_BYTES) {
    throw new SignInError("TooLarge", `This token is ${token.length} bytes; the dashboard keeps tokens in one cookie, which holds at most ${MAX_TOKEN_BYTES}. Use a ServiceAccount token, or an identity provider that issues smaller tokens.`);
  }
  if (/[^\x21-\x7e]/.test(token)) throw new SignInError("Unauthorized", "That is not a valid token: it contains spaces or other characters a token cannot have.");
  const expiresAt = sessionExpiry(token, now, maxSessionSeconds);
  if (expiresAt <= now) throw new SignInError("Expired", "This token has expired: request a new one (kubectl create token ...).");
  try {
    const identity = await reviewSelf(server, token);
    return { token, identity, expiresAt };
  } catch (error) {
    if (error instanceof KubeApiError && error.status === 401) {
      throw new SignInError("Unauthorized", "The API server did not accept this token (401 Unauthorized). Check that you copied all of it and that it has not expired or been revoked.");
    }
    if (error instanceof KubeApiError) throw new SignInError("Unreachable", `The API server refused the sign-in check: ${error.message}`);
    throw new SignInError("Unreachable", `The API server could not be reached: ${(error as Error).message}`);
  }
}

/** The namespace of a ServiceAccount identity (`system:serviceaccount:<ns>:<name>`), a good first namespace to show. */
export function serviceAccountNamespace(identity: Identity): string | undefined {
  const match = /^system:serviceaccount:([^:]+):[^:]+$/.exec(identity.username);
  return match?.[1];
}
