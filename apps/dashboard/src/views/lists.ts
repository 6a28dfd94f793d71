// The three list pages: providers, tunnels, bindings, each grouped by the scope it was listed in.
import type { Tunnel, TunnelBinding, TunnelProvider } from "@ktube/api";
import { html } from "hono/html";
import type { ListedScope, VisibleList } from "../access.ts";
import { type Html, problemNotice, publicUrl, relativeTime, statusBadge } from "./common.ts";

export interface ListPageData<T> {
  visible: VisibleList<T>;
  /** The namespace the user filtered on, if any. */
  namespace?: string;
}

function namespaceFilter(path: string, namespace: string | undefined): Html {
  return html`<form class="filter" method="get" action="${path}" role="search">
  <label for="namespace">Namespace</label>
  <input id="namespace" name="namespace" value="${namespace ?? ""}" placeholder="all you can list" autocomplete="off">
  <button type="submit">Show</button>
</form>`;
}

function unprobedNotice(visible: VisibleList<unknown>, what: string): Html {
  if (!visible.unprobedNamespaces) return html``;
  return html`<p class="notice info" role="note">You cannot list ${what} cluster-wide, and ${visible.unprobedNamespaces} more namespaces were not looked into one by one:
    choose a namespace with the filter above.</p>`;
}

function scopeHeading(scope: ListedScope<unknown>, clusterWide: boolean): Html {
  if (clusterWide || !scope.namespace) return html``;
  return html`<h2>Namespace <code>${scope.namespace}</code></h2>`;
}

function scopeSection<T>(
  scope: ListedScope<T>,
  clusterWide: boolean,
  what: string,
  empty: Html,
  table: (items: T[]) => Html,
): Html {
  return html`<section class="scope" data-namespace="${scope.namespace ?? ""}">
${scopeHeading(scope, clusterWide)}
${scope.problem ? problemNotice(scope.problem, what, scope.namespace) : scope.items.length === 0 ? html`<p class="empty">${empty}</p>` : table(scope.items)}
</section>`;
}

const key = (o: { metadata?: { namespace?: string; name?: string } }): string => `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;
const sorted = <T extends { metadata?: { namespace?: string; name?: string } }>(items: T[]): T[] => [...items].sort((a, b) => key(a).localeCompare(key(b)));

export function providersList(data: ListPageData<TunnelProvider>): Html {
  return html`${data.visible.scopes.map((scope) =>
    scopeSection(scope, true, "TunnelProviders", html`No providers yet. A platform admin creates one per provider account (see <code>examples/</code>).`, (items) => html`<table>
<caption>Tunnel providers</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Age</th></tr></thead>
<tbody>${sorted(items).map((p) => html`<tr id="provider-${p.metadata.name}">
<th scope="row">${p.metadata.name}</th><td>${p.spec.type}</td><td>${statusBadge(p)}</td><td>${relativeTime(p.metadata.creationTimestamp)}</td></tr>`)}</tbody>
</table>`),
  )}`;
}

export function tunnelsList(data: ListPageData<Tunnel>): Html {
  return html`${namespaceFilter("/tunnels", data.namespace)}${unprobedNotice(data.visible, "Tunnels")}
${data.visible.scopes.map((scope) =>
  scopeSection(scope, data.visible.clusterWide, "Tunnels", html`No tunnels yet${scope.namespace ? html` in <code>${scope.namespace}</code>` : ""}.`, (items) => html`<table>
<caption>Tunnels${scope.namespace ? html` in ${scope.namespace}` : ""}</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Namespace</th><th scope="col">Provider</th><th scope="col">Status</th><th scope="col">Routes</th><th scope="col">Age</th></tr></thead>
<tbody>${sorted(items).map((t) => html`<tr id="tunnel-${t.metadata.namespace}-${t.metadata.name}">
<th scope="row">${t.metadata.name}</th><td>${t.metadata.namespace}</td><td>${t.spec.providerRef.name}</td><td>${statusBadge(t)}</td><td>${t.status?.boundRoutes ?? 0}</td><td>${relativeTime(t.metadata.creationTimestamp)}</td></tr>`)}</tbody>
</table>`),
)}`;
}

export interface BindingsListData extends ListPageData<TunnelBinding> {
  /** Namespaces where the user may delete bindings (a Delete button per row there). */
  deletableIn: Set<string>;
  /** Where the Create link points, when the user may create bindings somewhere. */
  createIn?: string;
}

export function bindingsList(data: BindingsListData): Html {
  return html`<div class="toolbar">${namespaceFilter("/bindings", data.namespace)}
${data.createIn !== undefined ? html`<a class="button" href="/bindings/new${data.createIn ? `?namespace=${encodeURIComponent(data.createIn)}` : ""}">Create binding</a>` : ""}</div>
${unprobedNotice(data.visible, "TunnelBindings")}
${data.visible.scopes.map((scope) =>
  scopeSection(scope, data.visible.clusterWide, "TunnelBindings", html`No bindings yet${scope.namespace ? html` in <code>${scope.namespace}</code>` : ""}.`, (items) => html`<table>
<caption>Tunnel bindings${scope.namespace ? html` in ${scope.namespace}` : ""}</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Namespace</th><th scope="col">Tunnel</th><th scope="col">Status</th><th scope="col">URL</th><th scope="col">Age</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${sorted(items).map((b) => bindingRow(b, data.deletableIn.has(b.metadata.namespace ?? "")))}</tbody>
</table>`),
)}`;
}

function bindingRow(b: TunnelBinding, deletable: boolean): Html {
  const ns = b.metadata.namespace ?? "";
  const name = b.metadata.name ?? "";
  const url = b.status?.routes?.find((r) => r.url)?.url;
  return html`<tr id="binding-${ns}-${name}">
<th scope="row"><a href="/bindings/${encodeURIComponent(ns)}/${encodeURIComponent(name)}">${name}</a></th>
<td>${ns}</td>
<td>${b.spec.tunnelRef.namespace && b.spec.tunnelRef.namespace !== ns ? `${b.spec.tunnelRef.namespace}/` : ""}${b.spec.tunnelRef.name}</td>
<td>${statusBadge(b)}</td>
<td>${publicUrl(url)}</td>
<td>${relativeTime(b.metadata.creationTimestamp)}</td>
<td>${deletable ? deleteButton(b) : ""}</td>
</tr>`;
}

export function deleteButton(b: TunnelBinding): Html {
  const ns = b.metadata.namespace ?? "";
  const name = b.metadata.name ?? "";
  return html`<button type="button" class="danger" data-delete="/api/bindings/${encodeURIComponent(ns)}/${encodeURIComponent(name)}" data-uid="${b.metadata.uid ?? ""}" data-name="${ns}/${name}" aria-label="Delete binding ${ns}/${name}">Delete</button>`;
}
