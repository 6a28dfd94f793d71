// A real browser for the dashboard's tests: Debian's Chromium driven by playwright-core
// (never a downloaded browser), and the dashboard served on localhost.
import { serve, type ServerType } from "@hono/node-server";
import type { KubeConfig } from "@kubernetes/client-node";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { chromium, type Browser, type Page } from "playwright-core";
import { apiServer } from "../src/kube.ts";
import { createDashboard } from "../src/server.ts";
import { dashboardApiServer } from "./fixtures.ts";

export const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
export const ARTIFACTS = new URL("../test-artifacts/", import.meta.url);

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium was not found at ${CHROMIUM}: install Debian's package (apt-get update && apt-get install -y --no-install-recommends chromium) or set CHROMIUM_BIN. Do not run "playwright install".`);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  // No sandbox: the tests run as root in a container, and Chromium refuses to start its
  // sandbox as root (it needs an unprivileged user namespace or a setuid helper). The pages
  // it loads are the dashboard's own, served on loopback.
  return chromium.launch({ executablePath: CHROMIUM, chromiumSandbox: false, args: ["--no-sandbox"] });
}

export interface RunningDashboard {
  /** http://localhost:PORT: a secure context, so the browser keeps the Secure cookie over plain HTTP. */
  url: string;
  close(): Promise<void>;
}

/** Serves a dashboard on 127.0.0.1 (`port` 0: any free port; a fixed one to restart it where the browser expects it). */
export async function startDashboard(kc: KubeConfig, port = 0): Promise<RunningDashboard> {
  const { url, ca } = dashboardApiServer(kc);
  const app = createDashboard({ server: apiServer(url, ca) });
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port }, () => resolve(s));
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://localhost:${address.port}`,
    close: () =>
      new Promise((resolve) => {
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

export async function signInThroughPage(page: Page, base: string, token: string): Promise<void> {
  await page.goto(`${base}/login`);
  await page.getByLabel("Token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/bindings`);
}

export async function waitLive(page: Page): Promise<void> {
  await page.locator("#live", { hasText: /^Live$/ }).waitFor();
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/** axe-core's WCAG 2.x A/AA rules on the current page. Evaluated through the DevTools protocol, so the page's CSP still holds. */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: (ctx: Document, o: unknown) => Promise<{ violations: AxeViolation[]; passes: unknown[] }> } }).axe;
    const result = await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] } });
    // An empty result is only evidence when rules actually ran against this page.
    if (result.passes.length === 0) throw new Error("axe-core checked nothing on this page");
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) }));
  });
}
