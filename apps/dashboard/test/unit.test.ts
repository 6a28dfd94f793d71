// Pure functions: token expiry, status summaries, the URL-scheme filter, watch-list parsing.
import { describe, expect, test } from "@jest/globals";
import { safeHttpUrl, summarize } from "../src/status.ts";
import { apiServer } from "../src/kube.ts";
import { DEFAULT_MAX_SESSION_SECONDS, jwtExpiry, serviceAccountNamespace, sessionExpiry, signIn } from "../src/session.ts";
import { decodeWatches, encodeWatches } from "../src/stream.ts";

const jwt = (claims: object) => `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.c2ln`;

describe("session expiry", () => {
  test("a JWT's session ends at its exp, or at the maximum session if sooner", () => {
    expect(jwtExpiry(jwt({ exp: 2000 }))).toBe(2000);
    expect(sessionExpiry(jwt({ exp: 2000 }), 1000, DEFAULT_MAX_SESSION_SECONDS)).toBe(2000);
    expect(sessionExpiry(jwt({ exp: 10 ** 9 }), 1000, 3600)).toBe(4600);
  });

  test("a token that is not a JWT gets the maximum session (8 hours by default)", () => {
    expect(jwtExpiry("abcdef.0123456789abcdef")).toBeUndefined();
    expect(jwtExpiry(jwt({ sub: "x" }))).toBeUndefined();
    expect(sessionExpiry("static-token", 1000, DEFAULT_MAX_SESSION_SECONDS)).toBe(1000 + 8 * 3600);
  });

  test("tokens that cannot be kept in a cookie, or are already expired, are refused before any API call", async () => {
    const nowhere = apiServer("https://127.0.0.1:9", undefined);
    await expect(signIn(nowhere, "x".repeat(5000), 1000, 3600)).rejects.toMatchObject({ reason: "TooLarge" });
    await expect(signIn(nowhere, jwt({ exp: 999 }), 1000, 3600)).rejects.toMatchObject({ reason: "Expired" });
    await expect(signIn(nowhere, "  ", 1000, 3600)).rejects.toMatchObject({ reason: "Empty" });
  });

  test("the ServiceAccount namespace is read from the username", () => {
    expect(serviceAccountNamespace({ username: "system:serviceaccount:shop:alice", groups: [] })).toBe("shop");
    expect(serviceAccountNamespace({ username: "alice@example.com", groups: [] })).toBeUndefined();
  });
});

describe("status", () => {
  const ready = (status: "True" | "False") => [{ type: "Ready", status, reason: "R", message: "m", lastTransitionTime: "2026-01-01T00:00:00Z" }];

  test("summaries", () => {
    expect(summarize({ metadata: { generation: 1 } }).summary).toBe("Pending");
    expect(summarize({ metadata: { generation: 2 }, status: { observedGeneration: 1, conditions: ready("True") } }).summary).toBe("Reconciling");
    expect(summarize({ metadata: { generation: 2 }, status: { observedGeneration: 2, conditions: ready("True") } }).summary).toBe("Ready");
    expect(summarize({ metadata: { generation: 2 }, status: { observedGeneration: 2, conditions: ready("False") } })).toEqual({ summary: "Not ready", reason: "R", message: "m" });
    expect(summarize({ metadata: { generation: 2, deletionTimestamp: "2026-01-01T00:00:00Z" }, status: { observedGeneration: 2, conditions: ready("True") } }).summary).toBe("Deleting");
  });

  test("only http(s) URLs are links", () => {
    expect(safeHttpUrl("https://shop.example.com/")).toBe("https://shop.example.com/");
    expect(safeHttpUrl("http://x.example.com:8080/a")).toBe("http://x.example.com:8080/a");
    for (const bad of ["javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)", "data:text/html,<script>", "tcp://1.tcp.ngrok.io:12345", "vbscript:x", "//evil.example", "not a url"]) {
      expect(safeHttpUrl(bad)).toBeUndefined();
    }
  });
});

describe("watch lists in the stream URL", () => {
  test("round-trip, and anything else is refused", () => {
    const specs = [{ kind: "bindings" as const, namespace: "shop", resourceVersion: "42" }, { kind: "events" as const, namespace: "shop", fieldSelector: "regarding.uid=u" }];
    const url = new URL(encodeWatches(specs), "http://localhost");
    expect(decodeWatches(url.searchParams.getAll("w"))).toEqual(specs);
    expect(decodeWatches([JSON.stringify({ kind: "secrets" })])).toBeUndefined();
    expect(decodeWatches([JSON.stringify({ kind: "bindings", namespace: 3 })])).toBeUndefined();
    expect(decodeWatches(["{"])).toBeUndefined();
    expect(decodeWatches([])).toBeUndefined();
  });
});
