// The dashboard's HTTP app: pages, the JSON mutations, the live stream. Every Kubernetes call
// is made with the signed-in user's token; the app itself holds no Kubernetes identity.
import type { Tunnel, TunnelBinding, TunnelProvider } from "@ktube/api";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { Hono, type Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { html } from "hono/html";
import { streamSSE } from "hono/streaming";
import { bindingFromForm } from "./binding-form.ts";
import { AccessCache, listVisible, type VisibleList } from "./access.ts";
import { KubeApiError, UserClient, type ApiServer } from "./kube.ts";
import { Bindings, EventsResource, Providers, Tunnels, resourcePath, type KubeEvent } from "./resources.ts";
import { sameOriginJsonMutations, securityHeaders } from "./security.ts";
import { DEFAULT_MAX_SESSION_SECONDS, jwtExpiry, reviewSelf, serviceAccountNamespace, SESSION_COOKIE, SignInError, signIn, type Identity } from "./session.ts";
import { decodeWatches, DEFAULT_WATCH_TIMING, encodeWatches, runWatch, type WatchSpec } from "./stream.ts";
import { bindingDetail } from "./views/binding.ts";
import type { Html } from "./views/common.ts";
import { bindingForm } from "./views/form.ts";
import { errorPage, loginPage, page } from "./views/layout.ts";
import { bindingsList, providersList, tunnelsList } from "./views/lists.ts";

export interface DashboardOptions {
  server: ApiServer;
  /** Sessions of tokens without an expiry (not JWTs) end after this many seconds. */
  maxSessionSeconds?: number;
  /** The external origin, when a proxy in front rewrites Host or terminates TLS. */
  publicOrigin?: string;
  /** Users without cluster-wide list rights: at most this many namespaces are listed one by one. */
  maxProbedNamespaces?: number;
  /** Seconds between SSE heartbeat comments. */
  heartbeatSeconds?: number;
  /** How long one watch request lasts before it is renewed from its resourceVersion (the token is re-checked then). */
  watchTimeoutSeconds?: number;
  now?: () => number;
}

interface SignedIn {
  client: UserClient;
  identity: Identity;
}

const STATIC = {
  "app.js": { type: "text/javascript; charset=utf-8", body: readFileSync(new URL("../public/app.js", import.meta.url), "utf8") },
  "app.css": { type: "text/css; charset=utf-8", body: readFileSync(new URL("../public/app.css", import.meta.url), "utf8") },
} as const;

const IDENTITY_CACHE_MS = 30_000;

export function createDashboard(options: DashboardOptions): Hono {
  const now = options.now ?? (() => Date.now());
  const maxSession = options.maxSessionSeconds ?? DEFAULT_MAX_SESSION_SECONDS;
  const heartbeatMs = (options.heartbeatSeconds ?? 15) * 1000;
  const watchTiming = { ...DEFAULT_WATCH_TIMING, ...(options.watchTimeoutSeconds ? { timeoutSeconds: options.watchTimeoutSeconds } : {}) };
  const identities = new Map<string, { identity: Identity; until: number }>();
  const app = new Hono();

  app.use("*", securityHeaders);
  app.use("*", sameOriginJsonMutations(options.publicOrigin));

  /** The signed-in user of this request, or undefined (no cookie, expired, or refused by the API server). */
  async function signedIn(c: Context): Promise<SignedIn | undefined> {
    const token = getCookie(c, SESSION_COOKIE);
    if (!token) return undefined;
    const exp = jwtExpiry(token);
    if (exp !== undefined && exp * 1000 <= now()) return undefined;
    const key = createHash("sha256").update(token).digest("hex");
    const cached = identities.get(key);
    if (cached && cached.until > now()) return { client: new UserClient(options.server, token), identity: cached.identity };
    try {
      const identity = await reviewSelf(options.server, token);
      identities.set(key, { identity, until: now() + IDENTITY_CACHE_MS });
      if (identities.size > 10_000) identities.clear();
      return { client: new UserClient(options.server, token), identity };
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 401) return undefined;
      throw error;
    }
  }

  const toLogin = (c: Context) => {
    if (getCookie(c, SESSION_COOKIE)) deleteCookie(c, SESSION_COOKIE, { path: "/", secure: true });
    return c.redirect("/login", 303);
  };

  /** A full page, or only its live region when the client re-fetches after a change. */
  function render(c: Context, title: string, user: SignedIn, active: string, body: Html, watches: WatchSpec[], status: 200 | 403 | 404 = 200) {
    if (c.req.query("fragment") === "1") return c.html(body, status);
    return c.html(
      page({
        title,
        identity: user.identity,
        active,
        ...(watches.length > 0 ? { streamUrl: encodeWatches(watches) } : {}),
        body: html`<h1>${title}</h1><div id="live-region" aria-live="off">${body}</div>`,
      }),
      status,
    );
  }

  /** Runs a page handler as the signed-in user; a token the API server stops accepting signs the user out. */
  function userPage(handler: (c: Context, user: SignedIn) => Promise<Response>) {
    return async (c: Context) => {
      const user = await signedIn(c);
      if (!user) return toLogin(c);
      try {
        return await handler(c, user);
      } catch (error) {
        if (error instanceof KubeApiError && error.status === 401) return toLogin(c);
        throw error;
      }
    };
  }

  const watchesOf = (kind: WatchSpec["kind"], visible: VisibleList<unknown>): WatchSpec[] =>
    visible.scopes
      .filter((s) => !s.problem)
      .map((s) => ({ kind, ...(s.namespace ? { namespace: s.namespace } : {}), ...(s.resourceVersion ? { resourceVersion: s.resourceVersion } : {}) }));

  const candidates = (user: SignedIn, namespace: string | undefined): string[] =>
    [serviceAccountNamespace(user.identity), namespace].filter((n): n is string => !!n);

  app.get("/static/:file", (c) => {
    const name = c.req.param("file");
    if (!Object.hasOwn(STATIC, name)) return c.notFound();
    const file = STATIC[name as keyof typeof STATIC];
    return c.body(file.body, 200, { "Content-Type": file.type, "Cache-Control": "no-cache" });
  });

  app.get("/healthz", (c) => c.text("ok"));
  app.get("/", (c) => c.redirect("/bindings", 303));

  app.get("/login", (c) => c.html(loginPage(maxSession, c.req.query("ended") ? "Your session ended: sign in again." : undefined)));

  app.post("/login", async (c) => {
    const body = await c.req.json<{ token?: unknown }>().catch(() => ({}) as { token?: unknown });
    try {
      const session = await signIn(options.server, typeof body.token === "string" ? body.token : "", Math.floor(now() / 1000), maxSession);
      const maxAge = session.expiresAt - Math.floor(now() / 1000);
      setCookie(c, SESSION_COOKIE, session.token, {
        httpOnly: true,
        secure: true,
        sameSite: "Strict",
        path: "/",
        maxAge,
        expires: new Date(session.expiresAt * 1000),
      });
      return c.json({ location: "/bindings", username: session.identity.username });
    } catch (error) {
      if (error instanceof SignInError) return c.json({ message: error.message, reason: error.reason }, error.reason === "Unreachable" ? 502 : 401);
      throw error;
    }
  });

  app.post("/logout", (c) => {
    deleteCookie(c, SESSION_COOKIE, { path: "/", secure: true });
    return c.json({ location: "/login" });
  });

  app.get(
    "/providers",
    userPage(async (c, user) => {
      const visible = await listVisible<TunnelProvider>(user.client, Providers.resource, []);
      return render(c, "Providers", user, "providers", providersList({ visible }), watchesOf("providers", visible));
    }),
  );

  app.get(
    "/tunnels",
    userPage(async (c, user) => {
      const namespace = c.req.query("namespace") || undefined;
      const visible = await listVisible<Tunnel>(user.client, Tunnels.resource, candidates(user, namespace), namespace, options.maxProbedNamespaces);
      return render(c, "Tunnels", user, "tunnels", tunnelsList({ visible, ...(namespace ? { namespace } : {}) }), watchesOf("tunnels", visible));
    }),
  );

  app.get(
    "/bindings",
    userPage(async (c, user) => {
      const namespace = c.req.query("namespace") || undefined;
      const visible = await listVisible<TunnelBinding>(user.client, Bindings.resource, candidates(user, namespace), namespace, options.maxProbedNamespaces);
      const access = new AccessCache(user.client);
      const namespaces = new Set<string>();
      for (const scope of visible.scopes) {
        if (scope.namespace && !scope.problem) namespaces.add(scope.namespace);
        for (const b of scope.items) if (b.metadata.namespace) namespaces.add(b.metadata.namespace);
      }
      const deletableIn = new Set<string>();
      await Promise.all([...namespaces].map(async (ns) => (await access.can("delete", Bindings.resource, ns)) && deletableIn.add(ns)));
      // Filtered on one namespace: Create means "create here". Otherwise the first namespace the user may create in.
      const createIn = namespace
        ? (await access.can("create", Bindings.resource, namespace)) ? namespace : undefined
        : await firstAllowed(access, "create", [serviceAccountNamespace(user.identity), ...namespaces]);
      const data = { visible, deletableIn, ...(namespace ? { namespace } : {}), ...(createIn !== undefined ? { createIn } : {}) };
      return render(c, "Bindings", user, "bindings", bindingsList(data), watchesOf("bindings", visible));
    }),
  );

  app.get(
    "/bindings/new",
    userPage(async (c, user) => {
      const namespace = c.req.query("namespace") || serviceAccountNamespace(user.identity);
      return c.html(page({ title: "Create binding", identity: user.identity, active: "bindings", body: html`<h1>Create binding</h1>${bindingForm(namespace)}` }));
    }),
  );

  app.get(
    "/bindings/:namespace/:name",
    userPage(async (c, user) => {
      const { namespace, name } = c.req.param() as { namespace: string; name: string };
      const title = `Binding ${namespace}/${name}`;
      let binding: TunnelBinding;
      try {
        binding = await user.client.request<TunnelBinding>("GET", resourcePath(Bindings.resource, namespace, name));
      } catch (error) {
        if (error instanceof KubeApiError && (error.status === 403 || error.status === 404)) {
          const body = error.status === 403
            ? html`<p class="notice warn" role="note"><strong>Forbidden:</strong> you cannot read TunnelBindings in namespace <code>${namespace}</code>. <span class="detail">${error.message}</span></p>`
            : html`<p class="notice info" role="note">There is no binding <code>${namespace}/${name}</code> (any more). <a href="/bindings">All bindings</a></p>`;
          return render(c, title, user, "bindings", body, [], error.status);
        }
        throw error;
      }
      let events: KubeEvent[] | { forbidden: string };
      let eventsVersion: string | undefined;
      const eventSelector = `regarding.uid=${binding.metadata.uid}`;
      try {
        const list = await user.client.list<KubeEvent>(resourcePath(EventsResource, namespace), { fieldSelector: eventSelector });
        events = list.items;
        eventsVersion = list.metadata.resourceVersion;
      } catch (error) {
        if (!(error instanceof KubeApiError && error.status === 403)) throw error;
        events = { forbidden: error.message };
      }
      const deletable = await new AccessCache(user.client).can("delete", Bindings.resource, namespace);
      const watches: WatchSpec[] = [
        { kind: "bindings", namespace, fieldSelector: `metadata.name=${name}`, ...(binding.metadata.resourceVersion ? { resourceVersion: binding.metadata.resourceVersion } : {}) },
        ...(Array.isArray(events) ? [{ kind: "events" as const, namespace, fieldSelector: eventSelector, ...(eventsVersion ? { resourceVersion: eventsVersion } : {}) }] : []),
      ];
      return render(c, title, user, "bindings", bindingDetail({ binding, events, deletable }), watches);
    }),
  );

  app.post("/api/bindings", async (c) => {
    const user = await signedIn(c);
    if (!user) return c.json({ message: "Sign in first." }, 401);
    const form = await c.req.json<Record<string, unknown>>().catch(() => undefined);
    if (!form || typeof form !== "object") return c.json({ message: "The request body must be a JSON object." }, 400);
    const text = (key: string): string => (typeof form[key] === "string" ? (form[key] as string).trim() : "");
    const namespace = text("namespace");
    if (!namespace) return c.json({ message: "Namespace is required." }, 422);
    const binding = bindingFromForm(namespace, text);
    const path = resourcePath(Bindings.resource, namespace);
    try {
      // The dry run gives the API server's own schema and CEL messages without creating anything.
      await user.client.request("POST", path, { query: { dryRun: "All", fieldValidation: "Strict" }, body: binding });
      const created = await user.client.request<TunnelBinding>("POST", path, { query: { fieldValidation: "Strict" }, body: binding });
      return c.json({ location: `/bindings/${encodeURIComponent(namespace)}/${encodeURIComponent(created.metadata.name ?? "")}` }, 201);
    } catch (error) {
      if (error instanceof KubeApiError) return c.json({ message: error.message, reason: error.reason, causes: error.causes }, apiStatus(error.status));
      throw error;
    }
  });

  app.delete("/api/bindings/:namespace/:name", async (c) => {
    const user = await signedIn(c);
    if (!user) return c.json({ message: "Sign in first." }, 401);
    const { namespace, name } = c.req.param() as { namespace: string; name: string };
    const body = await c.req.json<{ uid?: unknown }>().catch(() => ({}) as { uid?: unknown });
    try {
      // The uid precondition: never delete a newer object that reuses the name.
      await user.client.request("DELETE", resourcePath(Bindings.resource, namespace, name), {
        body: { apiVersion: "v1", kind: "DeleteOptions", ...(typeof body.uid === "string" && body.uid ? { preconditions: { uid: body.uid } } : {}) },
      });
      return c.json({ location: "/bindings" });
    } catch (error) {
      if (error instanceof KubeApiError) return c.json({ message: error.message, reason: error.reason }, apiStatus(error.status));
      throw error;
    }
  });

  app.get("/stream", async (c) => {
    const user = await signedIn(c);
    if (!user) return c.json({ message: "Sign in first." }, 401);
    const specs = decodeWatches(c.req.queries("w") ?? []);
    if (!specs) return c.json({ message: "Bad watch list." }, 400);
    return streamSSE(c, async (stream) => {
      const abort = new AbortController();
      stream.onAbort(() => abort.abort());
      let ended = false;
      const sink = {
        changed: async (kind: WatchSpec["kind"]) => {
          if (!ended) await stream.writeSSE({ event: "change", data: JSON.stringify({ kind }) });
        },
        end: async (status: number, message: string) => {
          if (ended) return;
          ended = true;
          await stream.writeSSE({ event: "end", data: JSON.stringify({ status, message }) });
          abort.abort();
        },
      };
      // Comments keep proxies from closing an idle stream and let a dead client be noticed.
      const heartbeat = setInterval(() => void stream.write(": heartbeat\n\n").catch(() => abort.abort()), heartbeatMs);
      try {
        await stream.writeSSE({ event: "ready", data: "{}", retry: 3000 });
        await Promise.all(specs.map((spec) => runWatch(user.client, spec, sink, abort.signal, watchTiming)));
      } finally {
        clearInterval(heartbeat);
      }
    });
  });

  return app;
}

async function firstAllowed(access: AccessCache, verb: "create", namespaces: (string | undefined)[]): Promise<string | undefined> {
  if (await access.can(verb, Bindings.resource)) return namespaces.find((n) => n) ?? "";
  for (const ns of namespaces) if (ns && (await access.can(verb, Bindings.resource, ns))) return ns;
  return undefined;
}

type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 415 | 422 | 500 | 502;

function apiStatus(status: number): ErrorStatus {
  const known: ErrorStatus[] = [400, 401, 403, 404, 409, 422];
  return known.includes(status as ErrorStatus) ? (status as ErrorStatus) : 502;
}
