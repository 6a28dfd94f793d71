// The page frame: navigation, who is signed in, the live indicator, and the one script.
import { html } from "hono/html";
import type { Identity } from "../session.ts";
import type { Html } from "./common.ts";

export interface PageOptions {
  title: string;
  identity?: Identity;
  /** The SSE URL this page listens to; absent: a page with no live data. */
  streamUrl?: string;
  active?: string;
  body: Html;
}

const NAV = [
  ["providers", "/providers", "Providers"],
  ["tunnels", "/tunnels", "Tunnels"],
  ["bindings", "/bindings", "Bindings"],
] as const;

export function page(options: PageOptions): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${options.title} · KTube</title>
<link rel="stylesheet" href="/static/app.css">
<script type="module" src="/static/app.js"></script>
</head>
<body${options.streamUrl ? html` data-stream="${options.streamUrl}"` : ""}>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="/">KTube</a>
  ${options.identity
    ? html`<nav aria-label="Main"><ul>${NAV.map(([key, href, label]) => html`<li><a href="${href}"${options.active === key ? html` aria-current="page"` : ""}>${label}</a></li>`)}</ul></nav>
  <div class="who">
    ${options.streamUrl ? html`<span id="live" class="live connecting" role="status">Connecting…</span>` : ""}
    <span class="user" title="${options.identity.groups.join(", ")}">Signed in as <strong>${options.identity.username}</strong></span>
    <button type="button" id="sign-out">Sign out</button>
  </div>`
    : ""}
</header>
<main id="main" tabindex="-1">
${options.body}
</main>
<dialog id="confirm-delete" aria-labelledby="confirm-delete-title">
  <form method="dialog">
    <h2 id="confirm-delete-title">Delete binding?</h2>
    <p>Delete <strong id="confirm-delete-name"></strong>? Its public URLs stop working once the controller has cleaned up.</p>
    <p class="error" role="alert" id="confirm-delete-error"></p>
    <div class="actions">
      <button value="cancel" type="submit" autofocus>Cancel</button>
      <button value="delete" type="submit" class="danger" id="confirm-delete-ok">Delete</button>
    </div>
  </form>
</dialog>
</body>
</html>`;
}

export function loginPage(maxSessionSeconds: number, message?: string): Html {
  return page({
    title: "Sign in",
    body: html`<section class="login">
  <h1>Sign in to KTube</h1>
  <p>Paste a Kubernetes bearer token. Everything you do here is done with this token's own rights; the dashboard has none of its own.
     For a ServiceAccount: <code>kubectl create token NAME -n NAMESPACE</code>.</p>
  <form id="sign-in" action="/login" method="post" data-json>
    <label for="token">Token</label>
    <textarea id="token" name="token" rows="5" required autocomplete="off" spellcheck="false"></textarea>
    <p class="error" role="alert" id="sign-in-error">${message ?? ""}</p>
    <button type="submit">Sign in</button>
  </form>
  <p class="muted">The token is kept only in an HttpOnly cookie that ends when the token does (or after ${formatHours(maxSessionSeconds)}, whichever comes first).</p>
</section>`,
  });
}

export function errorPage(title: string, identity: Identity | undefined, body: Html): Html {
  return page({ title, ...(identity ? { identity } : {}), body: html`<h1>${title}</h1>${body}` });
}

function formatHours(seconds: number): string {
  const hours = Math.round((seconds / 3600) * 10) / 10;
  return `${hours} hour${hours === 1 ? "" : "s"}`;
}
