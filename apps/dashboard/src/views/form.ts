// The create-binding form. The browser posts it as JSON; the server dry-runs it first, so
// the API server's own validation messages come back into the form.
import { ROUTE_PROTOCOLS } from "@ktube/api";
import { html } from "hono/html";
import type { Html } from "./common.ts";

export function bindingForm(namespace: string | undefined): Html {
  return html`<form id="create-binding" action="/api/bindings" method="post" data-json class="stacked" novalidate>
<p class="error" role="alert" id="create-binding-error"></p>
<fieldset>
<legend>Binding</legend>
<label for="f-namespace">Namespace</label><input id="f-namespace" name="namespace" required value="${namespace ?? ""}" autocomplete="off">
<label for="f-name">Name</label><input id="f-name" name="name" required autocomplete="off">
<label for="f-tunnel">Tunnel</label><input id="f-tunnel" name="tunnel" required autocomplete="off" aria-describedby="f-tunnel-help">
<p class="help" id="f-tunnel-help">A Tunnel in the same namespace, or <code>namespace/name</code> for one that admits bindings from here.</p>
</fieldset>
<fieldset>
<legend>Route</legend>
<label for="f-route-name">Route name</label><input id="f-route-name" name="routeName" value="web" autocomplete="off">
<label for="f-protocol">Protocol</label>
<select id="f-protocol" name="protocol">${ROUTE_PROTOCOLS.map((p) => html`<option value="${p}">${p}</option>`)}</select>
<label for="f-hostname">Hostname</label><input id="f-hostname" name="hostname" autocomplete="off" placeholder="shop.example.com">
<label for="f-service">Service name</label><input id="f-service" name="serviceName" required autocomplete="off">
<label for="f-port">Service port (name or number)</label><input id="f-port" name="servicePort" required autocomplete="off">
</fieldset>
<button type="submit">Create binding</button>
</form>`;
}
