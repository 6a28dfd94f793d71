// The TunnelBinding the create form describes, as sent to the API server. Deliberately not
// validated here: the server dry-runs it, so the user sees the API server's own messages.
import { API_VERSION, type TunnelBinding } from "@ktube/api";

/** The binding a form describes, as it is sent to the API server (which validates it). */
export function bindingFromForm(namespace: string, field: (key: string) => string): TunnelBinding {
  const tunnel = field("tunnel");
  const [tunnelNamespace, tunnelName] = tunnel.includes("/") ? tunnel.split("/", 2) : [undefined, tunnel];
  const port = field("servicePort");
  const hostname = field("hostname");
  return {
    apiVersion: API_VERSION,
    kind: "TunnelBinding",
    metadata: { name: field("name"), namespace },
    spec: {
      tunnelRef: { name: tunnelName ?? "", ...(tunnelNamespace ? { namespace: tunnelNamespace } : {}) },
      routes: [
        {
          name: field("routeName") || "web",
          // Not checked here: the API server's own validation (dry run) is what the form shows.
          protocol: (field("protocol") || "HTTP") as TunnelBinding["spec"]["routes"][number]["protocol"],
          ...(hostname ? { hostname } : {}),
          service: { name: field("serviceName"), port: /^\d+$/.test(port) ? Number(port) : port },
        },
      ],
    },
  };
}
