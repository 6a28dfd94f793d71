// Headers every response carries, and the CSRF defence for every mutation: the request must
// come from this origin (Origin / Sec-Fetch-Site) and be JSON (a cross-site form cannot send
// application/json without a CORS preflight, which this server never grants).
import type { MiddlewareHandler } from "hono";

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

export const securityHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  c.header("Content-Security-Policy", CONTENT_SECURITY_POLICY);
  c.header("X-Content-Type-Options", "nosniff");
  c.header("X-Frame-Options", "DENY");
  c.header("Referrer-Policy", "no-referrer");
  c.header("Cross-Origin-Opener-Policy", "same-origin");
  c.header("Cross-Origin-Resource-Policy", "same-origin");
  if (!c.res.headers.has("Cache-Control")) c.header("Cache-Control", "no-store");
};

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * `publicOrigin`: the dashboard's external origin when it runs behind a proxy that rewrites
 * Host; by default the request's own origin (which a cross-site page cannot forge).
 */
export function sameOriginJsonMutations(publicOrigin?: string): MiddlewareHandler {
  return async (c, next) => {
    if (SAFE_METHODS.has(c.req.method)) return next();
    const fetchSite = c.req.header("Sec-Fetch-Site");
    const origin = c.req.header("Origin");
    const expected = publicOrigin ?? new URL(c.req.url).origin;
    if ((fetchSite !== undefined && fetchSite !== "same-origin") || origin !== expected) {
      return c.json({ message: "Cross-site request refused: mutations must come from the dashboard's own pages." }, 403);
    }
    const type = (c.req.header("Content-Type") ?? "").split(";")[0]?.trim().toLowerCase();
    if (type !== "application/json") {
      return c.json({ message: "Mutations must be sent as application/json." }, 415);
    }
    return next();
  };
}
