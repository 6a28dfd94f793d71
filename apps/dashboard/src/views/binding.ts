// One binding: its routes and URLs, its conditions, and the Events about it.
import type { TunnelBinding } from "@ktube/api";
import { html } from "hono/html";
import type { KubeEvent } from "../resources.ts";
import { summarize } from "../status.ts";
import { type Html, publicUrl, relativeTime, statusBadge } from "./common.ts";
import { deleteButton } from "./lists.ts";

export interface BindingPageData {
  binding: TunnelBinding;
  events: KubeEvent[] | { forbidden: string };
  deletable: boolean;
}

export function bindingDetail(data: BindingPageData): Html {
  const b = data.binding;
  const { summary } = summarize(b);
  const routeStatus = new Map((b.status?.routes ?? []).map((r) => [r.name, r]));
  return html`<div class="toolbar">
<p class="status-line">Status: ${statusBadge(b)}</p>
${data.deletable ? deleteButton(b) : ""}
</div>
${summary === "Reconciling"
  ? html`<p class="notice info" role="note">Reconciling: the controller has not yet acted on the latest change (generation ${b.metadata.generation}, observed ${b.status?.observedGeneration ?? "none"}).</p>`
  : ""}
<dl class="facts">
  <dt>Tunnel</dt><dd>${b.spec.tunnelRef.namespace ?? b.metadata.namespace}/${b.spec.tunnelRef.name}</dd>
  <dt>Created</dt><dd>${relativeTime(b.metadata.creationTimestamp)}</dd>
  <dt>Generation</dt><dd>${b.metadata.generation ?? ""} (observed ${b.status?.observedGeneration ?? "none"})</dd>
</dl>
<h2>Routes</h2>
<table>
<caption class="visually-hidden">Routes</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Protocol</th><th scope="col">Hostname</th><th scope="col">Service</th><th scope="col">URL</th><th scope="col">Ready</th><th scope="col">Message</th></tr></thead>
<tbody>${b.spec.routes.map((r) => {
  const s = routeStatus.get(r.name);
  return html`<tr><th scope="row">${r.name}</th><td>${r.protocol}</td><td>${r.hostname ?? ""}</td>
<td>${r.service ? `${r.service.name}:${r.service.port}` : r.address ? `${r.address.ip}:${r.address.port}` : ""}</td>
<td>${publicUrl(s?.url)}</td><td>${s ? (s.ready ? "Yes" : "No") : "Unknown"}</td><td>${s?.message ?? ""}</td></tr>`;
})}</tbody>
</table>
<h2>Conditions</h2>
${(b.status?.conditions ?? []).length === 0
  ? html`<p class="empty">No conditions yet: no controller has looked at this binding. Is a controller for its provider running?</p>`
  : html`<table>
<caption class="visually-hidden">Conditions</caption>
<thead><tr><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Reason</th><th scope="col">Message</th><th scope="col">Since</th></tr></thead>
<tbody>${(b.status?.conditions ?? []).map((c) => html`<tr><th scope="row">${c.type}</th><td>${c.status}</td><td>${c.reason}</td><td class="message">${c.message}</td><td>${relativeTime(c.lastTransitionTime)}</td></tr>`)}</tbody>
</table>`}
<h2>Events</h2>
${eventsTable(data.events)}`;
}

function eventTime(e: KubeEvent): string | undefined {
  return e.series?.lastObservedTime ?? e.eventTime ?? e.deprecatedLastTimestamp ?? e.metadata?.creationTimestamp ?? undefined;
}

function eventsTable(events: KubeEvent[] | { forbidden: string }): Html {
  if (!Array.isArray(events)) return html`<p class="notice warn" role="note"><strong>Forbidden:</strong> you cannot list events here. <span class="detail">${events.forbidden}</span></p>`;
  if (events.length === 0) return html`<p class="empty">No events. Events expire after about an hour.</p>`;
  const ordered = [...events].sort((a, b) => {
    const warn = Number(b.type === "Warning") - Number(a.type === "Warning");
    return warn !== 0 ? warn : (eventTime(b) ?? "").localeCompare(eventTime(a) ?? "");
  });
  return html`<table class="events">
<caption class="visually-hidden">Events, warnings first</caption>
<thead><tr><th scope="col">Type</th><th scope="col">Reason</th><th scope="col">Message</th><th scope="col">Count</th><th scope="col">Last seen</th></tr></thead>
<tbody>${ordered.map((e) => html`<tr class="${e.type === "Warning" ? "warning" : ""}">
<td>${e.type === "Warning" ? html`<span class="badge bad"><span aria-hidden="true">⚠</span> Warning</span>` : html`<span class="badge idle">Normal</span>`}</td>
<td>${e.reason ?? ""}</td><td class="message">${e.note ?? ""}</td><td>${e.series?.count ?? e.deprecatedCount ?? 1}</td><td>${relativeTime(eventTime(e))}</td></tr>`)}</tbody>
</table>
<p class="muted">Events expire after about an hour.</p>`;
}
