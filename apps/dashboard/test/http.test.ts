// HTTP-level tests of the dashboard against the real API server (testenv): sign-in, cookie,
// CSRF defences, headers, escaping, per-user visibility, dry-run errors, the live stream.
import { beforeAll, describe, expect, test } from "@jest/globals";
import type { KubeConfig } from "@kubernetes/client-node";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { eventually, kubeConfigAs, kubectl, testKubeConfig } from "@ktube/testenv";
import type { Hono } from "hono";
import { listVisible } from "../src/access.ts";
import { apiServer, UserClient } from "../src/kube.ts";
import { Bindings } from "../src/resources.ts";
import { bindingsList } from "../src/views/lists.ts";
import { createDashboard } from "../src/server.ts";
import { encodeWatches } from "../src/stream.ts";
import { createBinding, createTunnel, createUsers, dashboardApiServer, recordEvent, setBindingStatus, SseReader, type Users } from "./fixtures.ts";

const ORIGIN = "http://localhost";
let kc: KubeConfig;
let users: Users;
let app: Hono;

function request(path: string, init: RequestInit & { cookie?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.cookie) headers.set("Cookie", init.cookie);
  return Promise.resolve(app.request(`${ORIGIN}${path}`, { ...init, headers }));
}

/** A same-origin JSON request, as the dashboard's own pages send them. */
function mutate(path: string, method: string, body: unknown, cookie?: string): Promise<Response> {
  return request(path, {
    method,
    headers: { "Content-Type": "application/json", Origin: ORIGIN, "Sec-Fetch-Site": "same-origin" },
    body: JSON.stringify(body),
    ...(cookie ? { cookie } : {}),
  });
}

async function signIn(token: string): Promise<string> {
  const response = await mutate("/login", "POST", { token });
  expect(response.status).toBe(200);
  const setCookie = response.headers.get("set-cookie")!;
  return setCookie.split(";")[0]!;
}

beforeAll(async () => {
  kc = testKubeConfig();
  users = await createUsers(kc, "dash-http");
  await createTunnel(kc, users.editorNamespace, "home");
  await createTunnel(kc, users.otherNamespace, "home");
  await createBinding(kc, users.editorNamespace, "team-web", "home");
  await createBinding(kc, users.otherNamespace, "other-web", "home");
  const { url, ca } = dashboardApiServer(kc);
  app = createDashboard({ server: apiServer(url, ca), heartbeatSeconds: 1 });
});

describe("sign-in", () => {
  test("pages redirect to the sign-in page without a session", async () => {
    const response = await request("/bindings");
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/login");
  });

  test("a bad token is refused with a clear message and no cookie", async () => {
    const response = await mutate("/login", "POST", { token: "not-a-real-token" });
    expect(response.status).toBe(401);
    expect(((await response.json()) as { message: string }).message).toMatch(/did not accept this token \(401 Unauthorized\)/);
    expect(response.headers.get("set-cookie")).toBeNull();
  });

  test("a good token sets an HttpOnly, Secure, SameSite=Strict cookie that ends no later than the token", async () => {
    const response = await mutate("/login", "POST", { token: users.editorToken });
    expect(response.status).toBe(200);
    const cookie = response.headers.get("set-cookie")!;
    expect(cookie).toMatch(/^__Host-ktube-session=/);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/; SameSite=Strict/);
    expect(cookie).toMatch(/; Path=\//);
    const maxAge = Number(/Max-Age=(\d+)/.exec(cookie)![1]);
    const exp = JSON.parse(Buffer.from(users.editorToken.split(".")[1]!, "base64url").toString()).exp as number;
    expect(maxAge).toBeGreaterThan(0);
    expect(Math.floor(Date.now() / 1000) + maxAge).toBeLessThanOrEqual(exp);
    const page = await request("/bindings", { cookie: cookie.split(";")[0]! });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(users.editorName);
  });

  test("sign-out clears the cookie", async () => {
    const cookie = await signIn(users.editorToken);
    const response = await mutate("/logout", "POST", {}, cookie);
    expect(response.status).toBe(200);
    expect(response.headers.get("set-cookie")).toMatch(/^__Host-ktube-session=; Max-Age=0/);
  });
});

describe("CSRF and headers", () => {
  test("a cross-site POST is refused with 403", async () => {
    const cookie = await signIn(users.adminToken);
    const crossSite = await request("/api/bindings", {
      method: "POST",
      headers: { Origin: "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "application/x-www-form-urlencoded" },
      body: "namespace=x&name=y",
      cookie,
    });
    expect(crossSite.status).toBe(403);
    // A sibling subdomain is same-site, not same-origin: still refused (CVE-2024-22424's lesson).
    const sameSite = await request("/api/bindings", {
      method: "POST",
      headers: { Origin: "https://other.localhost", "Sec-Fetch-Site": "same-site", "Content-Type": "application/json" },
      body: "{}",
      cookie,
    });
    expect(sameSite.status).toBe(403);
    const noOrigin = await request("/logout", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}", cookie });
    expect(noOrigin.status).toBe(403);
  });

  test("a same-origin mutation that is not JSON is refused with 415", async () => {
    const cookie = await signIn(users.adminToken);
    const response = await request("/api/bindings", {
      method: "POST",
      headers: { Origin: ORIGIN, "Sec-Fetch-Site": "same-origin", "Content-Type": "text/plain" },
      body: JSON.stringify({ namespace: users.editorNamespace, name: "x" }),
      cookie,
    });
    expect(response.status).toBe(415);
  });

  test("only the dashboard's own static files are served", async () => {
    expect((await request("/static/app.js")).headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    for (const name of ["constructor", "toString", "..%2Fsrc%2Fmain.ts", "nope.js"]) expect((await request(`/static/${name}`)).status).toBe(404);
  });

  test("pages carry a strict CSP and the other security headers", async () => {
    for (const path of ["/login", "/static/app.js"]) {
      const response = await request(path);
      const csp = response.headers.get("content-security-policy")!;
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("default-src 'none'");
      expect(csp).not.toContain("unsafe-inline");
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      expect(response.headers.get("referrer-policy")).toBe("no-referrer");
    }
    expect(await (await request("/login")).text()).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
  });
});

describe("views", () => {
  test("a javascript: URL in a status is shown as text, never as a link", async () => {
    await createBinding(kc, users.otherNamespace, "evil", "home");
    await setBindingStatus(kc, users.otherNamespace, "evil", true, "javascript:alert(document.cookie)");
    const cookie = await signIn(users.adminToken);
    const html = await (await request(`/bindings/${users.otherNamespace}/evil`, { cookie })).text();
    expect(html).toContain('<code class="url-text">javascript:alert(document.cookie)</code>');
    expect(html).not.toMatch(/href="javascript:/i);
    const list = await (await request("/bindings", { cookie })).text();
    expect(list).not.toMatch(/href="javascript:/i);
  });

  test("the editor sees only its namespace, with no delete button where it may not delete", async () => {
    const editor = await signIn(users.editorToken);
    const html = await (await request("/bindings", { cookie: editor })).text();
    expect(html).toContain(`binding-${users.editorNamespace}-team-web`);
    expect(html).not.toContain(users.otherNamespace);
    expect(html).toContain(`aria-label="Delete binding ${users.editorNamespace}/team-web"`);
    const other = await (await request(`/bindings?namespace=${users.otherNamespace}`, { cookie: editor })).text();
    expect(other).toContain("Forbidden:");
    expect(other).not.toContain("other-web");
    expect(other).not.toContain('aria-label="Delete binding');
    const detail = await request(`/bindings/${users.otherNamespace}/other-web`, { cookie: editor });
    expect(detail.status).toBe(403);
    expect(await detail.text()).not.toContain("data-delete");
    const providers = await (await request("/providers", { cookie: editor })).text();
    expect(providers).toContain("you cannot list TunnelProviders cluster-wide");

    const admin = await signIn(users.adminToken);
    const all = await (await request("/bindings", { cookie: admin })).text();
    expect(all).toContain(`binding-${users.editorNamespace}-team-web`);
    expect(all).toContain(`binding-${users.otherNamespace}-other-web`);
    expect(all).toContain(`aria-label="Delete binding ${users.otherNamespace}/other-web"`);
  });

  test("a user who may list namespaces but not bindings cluster-wide sees each namespace it may list, up to a limit", async () => {
    const ns = users.editorNamespace;
    const rbac = async (args: string[]) => expect((await kubectl(args)).stderr).toBe("");
    await rbac(["create", "serviceaccount", "lister", "-n", ns]);
    await rbac(["create", "clusterrole", `${ns}-namespaces`, "--verb=list", "--resource=namespaces"]);
    await rbac(["create", "clusterrolebinding", `${ns}-namespaces`, `--clusterrole=${ns}-namespaces`, `--serviceaccount=${ns}:lister`]);
    await rbac(["create", "role", "list-bindings", "-n", users.otherNamespace, "--verb=list,watch", "--resource=tunnelbindings.ktube.dev"]);
    await rbac(["create", "rolebinding", "lister", "-n", users.otherNamespace, "--role=list-bindings", `--serviceaccount=${ns}:lister`]);
    await rbac(["create", "rolebinding", "lister", "-n", ns, "--role=ktube-editor", `--serviceaccount=${ns}:lister`]);
    const token = (await kubeConfigAs(kc, ns, "lister")).getCurrentUser()!.token!;
    const cookie = await signIn(token);
    const html = await (await request("/bindings", { cookie })).text();
    expect(html).toContain(`binding-${ns}-team-web`);
    expect(html).toContain(`binding-${users.otherNamespace}-other-web`);
    expect(html).not.toContain("Forbidden");
    expect(html).not.toContain("not looked into");

    const { url, ca } = dashboardApiServer(kc);
    const limited = createDashboard({ server: apiServer(url, ca), maxProbedNamespaces: 2 });
    const page = await (await limited.request(`${ORIGIN}/bindings`, { headers: { Cookie: cookie } })).text();
    expect(page).toContain(`binding-${ns}-team-web`);
    expect(page).not.toContain(`binding-${users.otherNamespace}-other-web`);
    expect(page).toMatch(/\d+ more namespaces were not looked into one by one/);
  });

  test("'CRDs not installed' (404 on the API group) is told apart from 'forbidden' and 'none yet'", async () => {
    const { url, ca } = dashboardApiServer(kc);
    const client = new UserClient(apiServer(url, ca), users.adminToken);
    // A version of the group this API server does not serve: what a cluster without KTube's CRDs answers.
    const missing = { ...Bindings.resource, apiVersion: "ktube.dev/v1alpha9" };
    const visible = await listVisible(client, missing, []);
    expect(visible.scopes[0]!.problem?.kind).toBe("not-installed");
    const html = String(await bindingsList({ visible, deletableIn: new Set() }));
    expect(html).toContain("KTube is not installed in this cluster");
    expect(html).not.toContain("Forbidden");
  });

  test("an empty namespace says 'no bindings yet'", async () => {
    const admin = await signIn(users.adminToken);
    const html = await (await request("/bindings?namespace=kube-public", { cookie: admin })).text();
    expect(html).toContain("No bindings yet in <code>kube-public</code>");
  });

  test("a binding's page shows Reconciling, conditions and events with warnings first", async () => {
    const { uid } = await createBinding(kc, users.editorNamespace, "detail", "home");
    await setBindingStatus(kc, users.editorNamespace, "detail", false, "https://detail.example.com/", "TunnelNotReady");
    await recordEvent(users.editorNamespace, { kind: "TunnelBinding", name: "detail", uid }, "Normal", "Accepted", "the binding was accepted");
    await recordEvent(users.editorNamespace, { kind: "TunnelBinding", name: "detail", uid }, "Warning", "HostnameConflict", "<b>shop.example.com</b> is claimed by another binding");
    // A spec change the controller has not seen yet: generation moves past observedGeneration.
    await kc.makeApiClient(CustomObjectsApi).patchNamespacedCustomObject({
      group: "ktube.dev", version: "v1alpha1", namespace: users.editorNamespace, plural: "tunnelbindings", name: "detail",
      body: [{ op: "replace", path: "/spec/routes/0/hostname", value: "detail2.example.com" }],
    });
    const editor = await signIn(users.editorToken);
    const html = await (await request(`/bindings/${users.editorNamespace}/detail`, { cookie: editor })).text();
    expect(html).toContain("Reconciling: the controller has not yet acted on the latest change");
    expect(html).toContain("TunnelNotReady");
    expect(html).toContain('<tr class="warning">');
    expect(html).toContain("&lt;b&gt;shop.example.com&lt;/b&gt; is claimed by another binding");
    expect(html).toMatch(/<a href="https:\/\/detail\.example\.com\/"[^>]*>https:\/\/detail\.example\.com\/<\/a>/);
    expect(html).toMatch(/<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC">/);
  });
});

describe("create and delete", () => {
  test("an invalid binding returns the API server's own message from the dry run", async () => {
    const editor = await signIn(users.editorToken);
    const response = await mutate("/api/bindings", "POST", { namespace: users.editorNamespace, name: "gopher", tunnel: "home", protocol: "GOPHER", serviceName: "web", servicePort: "80" }, editor);
    expect(response.status).toBe(422);
    expect(((await response.json()) as { message: string }).message).toContain('Unsupported value: "GOPHER"');
    const after = await request(`/bindings/${users.editorNamespace}/gopher`, { cookie: editor });
    expect(after.status).toBe(404);
  });

  test("the editor creates and deletes in its namespace, and is refused elsewhere", async () => {
    const editor = await signIn(users.editorToken);
    const form = { namespace: users.editorNamespace, name: "made", tunnel: "home", protocol: "HTTP", hostname: "made.example.com", serviceName: "web", servicePort: "http" };
    const created = await mutate("/api/bindings", "POST", form, editor);
    expect(created.status).toBe(201);
    expect(((await created.json()) as { location: string }).location).toBe(`/bindings/${users.editorNamespace}/made`);
    const refused = await mutate("/api/bindings", "POST", { ...form, namespace: users.otherNamespace }, editor);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { message: string }).message).toContain("cannot create resource");
    const page = await (await request(`/bindings/${users.editorNamespace}/made`, { cookie: editor })).text();
    const uid = /data-uid="([^"]+)"/.exec(page)![1];
    const wrongUid = await mutate(`/api/bindings/${users.editorNamespace}/made`, "DELETE", { uid: "00000000-0000-0000-0000-000000000000" }, editor);
    expect(wrongUid.status).toBe(409);
    const deleted = await mutate(`/api/bindings/${users.editorNamespace}/made`, "DELETE", { uid }, editor);
    expect(deleted.status).toBe(200);
  });
});

describe("live stream", () => {
  async function openStream(cookie: string, url: string): Promise<SseReader> {
    const response = await request(url, { cookie });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    return new SseReader(response.body!);
  }

  test("an idle stream carries heartbeat comments", async () => {
    const editor = await signIn(users.editorToken);
    const stream = await openStream(editor, encodeWatches([{ kind: "bindings", namespace: users.editorNamespace }]));
    try {
      await stream.until("ready");
      await stream.until("change"); // the initial list
      // Nothing changes in this namespace now; only a heartbeat (every second in this app) can end the wait.
      const reading = stream.next();
      await eventually(() => expect(stream.comments).toContain("heartbeat"), 5_000);
      await stream.cancel();
      await reading.catch(() => undefined);
    } finally {
      await stream.cancel();
    }
  });

  test("a status change made by a controller reaches the stream", async () => {
    const editor = await signIn(users.editorToken);
    await createBinding(kc, users.editorNamespace, "live", "home");
    const list = (await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group: "ktube.dev", version: "v1alpha1", namespace: users.editorNamespace, plural: "tunnelbindings" })) as { metadata: { resourceVersion: string } };
    const stream = await openStream(editor, encodeWatches([{ kind: "bindings", namespace: users.editorNamespace, resourceVersion: list.metadata.resourceVersion }]));
    try {
      await stream.until("ready");
      await setBindingStatus(kc, users.editorNamespace, "live", true, "https://live.example.com/");
      expect(JSON.parse((await stream.until("change")).data)).toEqual({ kind: "bindings" });
    } finally {
      await stream.cancel();
    }
  });

  test("a resourceVersion too old for the watch cache is relisted (410 Gone), then changes still arrive", async () => {
    const editor = await signIn(users.editorToken);
    const stream = await openStream(editor, encodeWatches([{ kind: "bindings", namespace: users.editorNamespace, resourceVersion: "1" }]));
    try {
      await stream.until("ready");
      await stream.until("change"); // the relist after 410
      await createBinding(kc, users.editorNamespace, "after-relist", "home");
      await stream.until("change");
    } finally {
      await stream.cancel();
    }
  });

  test("a token that stops being valid ends the stream with 401 when the watch is renewed", async () => {
    const shortWatches = createDashboard({ server: apiServer(dashboardApiServer(kc).url, dashboardApiServer(kc).ca), watchTimeoutSeconds: 1 });
    const result = await kubectl(["create", "serviceaccount", "leaving", "-n", users.editorNamespace]);
    expect(result.stderr).toBe("");
    await kubectl(["create", "rolebinding", "leaving", "-n", users.editorNamespace, "--role=ktube-editor", `--serviceaccount=${users.editorNamespace}:leaving`]);
    const token = (await kubeConfigAs(kc, users.editorNamespace, "leaving")).getCurrentUser()!.token!;
    const login = await shortWatches.request(`${ORIGIN}/login`, { method: "POST", headers: { "Content-Type": "application/json", Origin: ORIGIN }, body: JSON.stringify({ token }) });
    const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
    const response = await shortWatches.request(`${ORIGIN}${encodeWatches([{ kind: "bindings", namespace: users.editorNamespace }])}`, { headers: { Cookie: cookie } });
    const stream = new SseReader(response.body!);
    await stream.until("ready");
    await stream.until("change"); // the initial list: the watch is running as this token
    // Deleting the ServiceAccount invalidates its bound tokens.
    expect((await kubectl(["delete", "serviceaccount", "leaving", "-n", users.editorNamespace])).code).toBe(0);
    // The API server caches token authentications for ~10 s, so the refusal comes at the first
    // renewal after that; the watches renew every second here.
    const end = await stream.until("end");
    expect(JSON.parse(end.data)).toMatchObject({ status: 401 });
    expect(await stream.next()).toBeUndefined();
  });

  test("a watch the user may not make ends the stream with 403", async () => {
    const editor = await signIn(users.editorToken);
    const stream = await openStream(editor, encodeWatches([{ kind: "bindings", namespace: users.otherNamespace, resourceVersion: "0" }]));
    const end = await stream.until("end");
    expect(JSON.parse(end.data)).toMatchObject({ status: 403 });
    expect(await stream.next()).toBeUndefined();
  });
});
