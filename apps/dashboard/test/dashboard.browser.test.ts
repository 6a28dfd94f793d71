// The dashboard in a real browser (Debian's Chromium via playwright-core) against the real
// API server, with two users: an admin with cluster-wide rights and a namespace-only editor.
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import type { KubeConfig } from "@kubernetes/client-node";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { testKubeConfig } from "@ktube/testenv";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Browser, BrowserContext } from "playwright-core";
import { ARTIFACTS, axeViolations, launchChromium, signInThroughPage, startDashboard, waitLive, type RunningDashboard } from "./browser.ts";
import { createBinding, createTunnel, createUsers, recordEvent, setBindingStatus, type Users } from "./fixtures.ts";

let kc: KubeConfig;
let users: Users;
let browser: Browser;
let dashboard: RunningDashboard;
const contexts: BrowserContext[] = [];

async function newContext(colorScheme: "light" | "dark" = "light"): Promise<BrowserContext> {
  const context = await browser.newContext({ colorScheme, viewport: { width: 1280, height: 800 } });
  contexts.push(context);
  return context;
}

beforeAll(async () => {
  kc = testKubeConfig();
  [users, browser] = await Promise.all([createUsers(kc, "dash-ui"), launchChromium()]);
  await createTunnel(kc, users.editorNamespace, "home");
  await createTunnel(kc, users.otherNamespace, "home");
  await createBinding(kc, users.editorNamespace, "team-web", "home");
  await createBinding(kc, users.otherNamespace, "other-web", "home");
  dashboard = await startDashboard(kc);
});

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => undefined);
  await browser?.close();
  await dashboard?.close();
});

describe("signing in", () => {
  test("sign in shows who is signed in; sign out ends the session", async () => {
    const page = await (await newContext()).newPage();
    await signInThroughPage(page, dashboard.url, users.adminToken);
    await expect(page.getByText(`Signed in as ${users.adminName}`).isVisible()).resolves.toBe(true);
    const [cookie] = await page.context().cookies();
    expect(cookie).toMatchObject({ name: "__Host-ktube-session", httpOnly: true, secure: true, sameSite: "Strict", path: "/" });
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(`${dashboard.url}/login`);
    expect(await page.context().cookies()).toEqual([]);
    await page.goto(`${dashboard.url}/bindings`);
    expect(new URL(page.url()).pathname).toBe("/login");
  });

  test("a bad token is refused with a clear message", async () => {
    const page = await (await newContext()).newPage();
    await page.goto(`${dashboard.url}/login`);
    await page.getByLabel("Token").fill("eyJhbGciOiJSUzI1NiJ9.e30.bm90LWEtc2lnbmF0dXJl");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "did not accept this token" }).waitFor();
    expect(new URL(page.url()).pathname).toBe("/login");
    expect(await page.context().cookies()).toEqual([]);
  });
});

describe("rights", () => {
  test("the editor sees only its namespace, and no delete button where it may not delete", async () => {
    const page = await (await newContext()).newPage();
    await signInThroughPage(page, dashboard.url, users.editorToken);
    await page.getByRole("link", { name: "team-web" }).waitFor();
    expect(await page.getByRole("link", { name: "other-web" }).count()).toBe(0);
    expect(await page.getByRole("button", { name: `Delete binding ${users.editorNamespace}/team-web` }).count()).toBe(1);

    await page.getByLabel("Namespace").fill(users.otherNamespace);
    await page.getByLabel("Namespace").press("Enter");
    await page.getByText("Forbidden:", { exact: true }).waitFor();
    expect(await page.getByRole("button", { name: /^Delete binding/ }).count()).toBe(0);
    expect(await page.getByRole("link", { name: "Create binding" }).count()).toBe(0);
    await page.goto(`${dashboard.url}/bindings/${users.otherNamespace}/other-web`);
    await page.getByText("you cannot read TunnelBindings").waitFor();
    expect(await page.getByRole("button", { name: /^Delete/ }).count()).toBe(0);

    const admin = await (await newContext()).newPage();
    await signInThroughPage(admin, dashboard.url, users.adminToken);
    await admin.getByRole("button", { name: `Delete binding ${users.otherNamespace}/other-web` }).waitFor();
  });

  test("a cross-site form POST is refused", async () => {
    // An attacker's page on another site (127.0.0.1 is a different site from localhost).
    const attacker: Server = createServer((_req, res) => {
      res.setHeader("Content-Type", "text/html");
      res.end(`<form id="f" method="post" action="${dashboard.url}/api/bindings"><input name="namespace" value="${users.editorNamespace}"><input name="name" value="csrf"></form><script>document.getElementById("f").submit()</script>`);
    });
    await new Promise<void>((resolve) => attacker.listen(0, "127.0.0.1", resolve));
    try {
      const page = await (await newContext()).newPage();
      await signInThroughPage(page, dashboard.url, users.editorToken);
      const response = page.waitForResponse(`${dashboard.url}/api/bindings`);
      await page.goto(`http://127.0.0.1:${(attacker.address() as AddressInfo).port}/`);
      expect((await response).status()).toBe(403);
      const list = (await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group: "ktube.dev", version: "v1alpha1", namespace: users.editorNamespace, plural: "tunnelbindings" })) as { items: { metadata: { name: string } }[] };
      expect(list.items.map((b) => b.metadata.name)).not.toContain("csrf");
    } finally {
      attacker.close();
    }
  });
});

describe("create, live updates, delete", () => {
  test("an invalid form shows the API server's own message and creates nothing", async () => {
    const page = await (await newContext()).newPage();
    await signInThroughPage(page, dashboard.url, users.editorToken);
    await page.getByRole("link", { name: "Create binding" }).click();
    await page.getByLabel("Name", { exact: true }).fill("bad-host");
    await page.getByLabel("Tunnel").fill("home");
    await page.getByLabel("Hostname").fill("Not A Hostname!");
    await page.getByLabel("Service name").fill("web");
    await page.getByLabel("Service port (name or number)").fill("80");
    await page.getByRole("button", { name: "Create binding" }).click();
    const alert = page.getByRole("alert").filter({ hasText: "spec.routes[0].hostname" });
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/TunnelBinding.ktube.dev "bad-host" is invalid/);
    expect(new URL(page.url()).pathname).toBe("/bindings/new");
    await page.goto(`${dashboard.url}/bindings/${users.editorNamespace}/bad-host`);
    await page.getByText("There is no binding").waitFor();
  });

  test("a binding created in the form appears and turns Ready live; delete removes it", async () => {
    const context = await newContext();
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: dashboard.url });
    const list = await context.newPage();
    await signInThroughPage(list, dashboard.url, users.editorToken);
    await waitLive(list);
    await list.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));

    const form = await context.newPage();
    await form.goto(`${dashboard.url}/bindings/new?namespace=${users.editorNamespace}`);
    await form.getByLabel("Name", { exact: true }).fill("shop");
    await form.getByLabel("Tunnel").fill("home");
    await form.getByLabel("Hostname").fill("shop.example.com");
    await form.getByLabel("Service name").fill("shop-web");
    await form.getByLabel("Service port (name or number)").fill("http");
    await form.getByRole("button", { name: "Create binding" }).click();
    await form.waitForURL(`${dashboard.url}/bindings/${users.editorNamespace}/shop`);
    await waitLive(form);

    const row = list.locator(`#binding-${users.editorNamespace}-shop`);
    await row.waitFor();
    await row.locator(".badge", { hasText: "Pending" }).waitFor();

    // The controller's part, simulated: it writes the binding's status. Keyboard focus stays
    // where it was across the live update.
    await row.getByRole("button", { name: `Delete binding ${users.editorNamespace}/shop` }).focus();
    const refreshes = await list.evaluate(() => Number(document.body.dataset.refreshed ?? "0"));
    await setBindingStatus(kc, users.editorNamespace, "shop", true, "https://shop.example.com/");
    await row.locator(".badge", { hasText: "Ready" }).waitFor();
    expect(await list.evaluate(() => Number(document.body.dataset.refreshed ?? "0"))).toBeGreaterThan(refreshes);
    expect(await list.evaluate(() => document.activeElement?.getAttribute("aria-label"))).toBe(`Delete binding ${users.editorNamespace}/shop`);
    await row.getByRole("link", { name: "https://shop.example.com/" }).waitFor();
    expect(await list.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    await form.getByRole("link", { name: "https://shop.example.com/" }).waitFor();
    await form.getByRole("cell", { name: "all routes are served" }).waitFor();

    // Keyboard: the copy button is a real button.
    await row.getByRole("button", { name: "Copy URL https://shop.example.com/" }).focus();
    await list.keyboard.press("Enter");
    await row.getByRole("button", { name: "Copy URL https://shop.example.com/" }).filter({ hasText: "Copied" }).waitFor();
    expect(await list.evaluate(() => navigator.clipboard.readText())).toBe("https://shop.example.com/");

    // Events about the binding arrive live on its page, warnings highlighted.
    const uid = await form.getByRole("button", { name: /^Delete binding/ }).getAttribute("data-uid");
    await recordEvent(users.editorNamespace, { kind: "TunnelBinding", name: "shop", uid: uid! }, "Warning", "HostnameConflict", "shop.example.com is claimed by team/older");
    await form.locator("tr.warning", { hasText: "HostnameConflict" }).waitFor();

    // Delete, keyboard first: Escape cancels and gives focus back to the button.
    const deleteButton = row.getByRole("button", { name: `Delete binding ${users.editorNamespace}/shop` });
    await deleteButton.focus();
    await list.keyboard.press("Enter");
    const dialog = list.getByRole("dialog", { name: "Delete binding?" });
    await dialog.waitFor();
    await list.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
    expect(await list.evaluate(() => document.activeElement?.getAttribute("aria-label"))).toBe(`Delete binding ${users.editorNamespace}/shop`);
    await row.waitFor();
    await deleteButton.click();
    await dialog.waitFor();
    await dialog.getByRole("button", { name: "Delete" }).click();
    await row.waitFor({ state: "detached" });
    expect(await list.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    await list.getByRole("link", { name: "team-web" }).waitFor();
  });
});

describe("live indicator", () => {
  test("shows Reconnecting while the dashboard is down, then Live again with what changed meanwhile", async () => {
    let own = await startDashboard(kc);
    const port = Number(new URL(own.url).port);
    try {
      const page = await (await newContext()).newPage();
      await signInThroughPage(page, own.url, users.editorToken);
      await waitLive(page);
      await own.close();
      await page.locator("#live", { hasText: "Reconnecting…" }).waitFor();
      await createBinding(kc, users.editorNamespace, "while-down", "home");
      own = await startDashboard(kc, port);
      await waitLive(page);
      await page.getByRole("link", { name: "while-down" }).waitFor();
    } finally {
      await own.close();
    }
  });
});

describe("accessibility and appearance", () => {
  for (const scheme of ["light", "dark"] as const) {
    test(`no WCAG A/AA violations (${scheme}), screenshots kept`, async () => {
      const { uid } = await createBinding(kc, users.otherNamespace, `look-${scheme}`, "home");
      await setBindingStatus(kc, users.otherNamespace, `look-${scheme}`, false, "https://look.example.com/", "TunnelNotReady");
      await recordEvent(users.otherNamespace, { kind: "TunnelBinding", name: `look-${scheme}`, uid }, "Normal", "Accepted", "accepted by the cloudflare controller");
      await recordEvent(users.otherNamespace, { kind: "TunnelBinding", name: `look-${scheme}`, uid }, "Warning", "ServiceNotFound", "Service shop/web does not exist");
      const page = await (await newContext(scheme)).newPage();
      // The CSP blocks nothing the pages need: no console errors (CSP reports land there), no script errors.
      const problems: string[] = [];
      page.on("console", (message) => message.type() === "error" && problems.push(message.text()));
      page.on("pageerror", (error) => problems.push(error.message));
      await page.goto(`${dashboard.url}/login`);
      const pages: [string, string][] = [["login", "/login"]];
      expect(await axeViolations(page)).toEqual([]);
      await page.screenshot({ path: new URL(`login-${scheme}.png`, ARTIFACTS).pathname });
      await signInThroughPage(page, dashboard.url, users.adminToken);
      pages.push(["bindings", "/bindings"], ["binding", `/bindings/${users.otherNamespace}/look-${scheme}`], ["providers", "/providers"], ["tunnels", "/tunnels"], ["create", "/bindings/new"]);
      for (const [name, path] of pages.slice(1)) {
        await page.goto(`${dashboard.url}${path}`);
        if (name !== "create") await waitLive(page);
        expect({ page: name, violations: await axeViolations(page) }).toEqual({ page: name, violations: [] });
        await page.screenshot({ path: new URL(`${name}-${scheme}.png`, ARTIFACTS).pathname, fullPage: true });
      }
      expect(problems).toEqual([]);
    });
  }
});
