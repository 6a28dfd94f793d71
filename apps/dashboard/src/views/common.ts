// Small pieces every page uses: times, status badges, public URLs, notices.
import { html } from "hono/html";
import type { ListProblem } from "../access.ts";
import { safeHttpUrl, summarize, type StatusLike } from "../status.ts";

export type Html = ReturnType<typeof html>;

/** "5 minutes ago", with the absolute time in `title` and `datetime` (app.js keeps the text fresh). */
export function relativeTime(value: string | Date | null | undefined, now: Date = new Date()): Html {
  if (!value) return html`<span class="muted">unknown</span>`;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return html`${String(value)}`;
  const absolute = date.toISOString().replace("T", " ").replace(/\.\d{3}Z$/, " UTC");
  return html`<time datetime="${date.toISOString()}" title="${absolute}">${describeAge(now.getTime() - date.getTime())}</time>`;
}

export function describeAge(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 10) return "just now";
  const units: [number, string][] = [[86400, "day"], [3600, "hour"], [60, "minute"], [1, "second"]];
  for (const [size, unit] of units) {
    const count = Math.floor(seconds / size);
    if (count >= 1) return `${count} ${unit}${count === 1 ? "" : "s"} ago`;
  }
  return "just now";
}

const BADGE_CLASS = { Ready: "ok", "Not ready": "bad", Reconciling: "busy", Deleting: "busy", Pending: "idle" } as const;
const BADGE_ICON = { Ready: "✓", "Not ready": "✗", Reconciling: "↻", Deleting: "⌫", Pending: "…" } as const;

export function statusBadge(object: StatusLike): Html {
  const { summary, reason } = summarize(object);
  return html`<span class="badge ${BADGE_CLASS[summary]}"><span aria-hidden="true">${BADGE_ICON[summary]}</span> ${summary}</span>${reason ? html` <span class="reason">${reason}</span>` : ""}`;
}

/** A public URL: a link plus a copy button when it is http(s), plain text otherwise. */
export function publicUrl(url: string | undefined): Html {
  if (!url) return html`<span class="muted">none yet</span>`;
  const href = safeHttpUrl(url);
  const copy = html`<button type="button" class="copy" data-copy="${url}" aria-label="Copy URL ${url}">Copy</button>`;
  if (!href) return html`<code class="url-text">${url}</code> ${copy}`;
  return html`<a href="${href}" rel="noopener noreferrer" target="_blank">${url}</a> ${copy}`;
}

export function problemNotice(problem: ListProblem, what: string, namespace?: string): Html {
  if (problem.kind === "not-installed") {
    return html`<div class="notice warn" role="note"><strong>KTube is not installed in this cluster.</strong> The API server does not serve
      ${what} (API group <code>ktube.dev/v1alpha1</code>). Install the CRDs: <code>kubectl apply -f crds/</code></div>`;
  }
  return html`<div class="notice warn" role="note"><strong>Forbidden:</strong> you cannot list ${what}${namespace ? html` in namespace <code>${namespace}</code>` : " cluster-wide"}.
    <span class="detail">The API server said: ${problem.message}</span></div>`;
}
