// Registers the cloudflare controllers on a manager (used by main.ts and by tests).
import type { Manager } from "@ktube/runtime";
import type { CloudflareOptions, Context } from "./context.ts";
import type { QuickTunnelEndpoint } from "./controllers/quick-tunnels.ts";
import { setupTunnelBindingController } from "./controllers/tunnelbinding.ts";
import { setupTunnelController } from "./controllers/tunnel.ts";
import { setupTunnelProviderController } from "./controllers/tunnelprovider.ts";
import { Accounts } from "./provider/accounts.ts";

export interface SetupOptions extends CloudflareOptions {
  /** Where quick tunnel URLs are read (tests stand in for the connectors' /quicktunnel). */
  quickTunnelEndpoint?: QuickTunnelEndpoint;
  /** Namespace whose Secrets hold provider credentials (the controller's own). */
  namespace: string;
  cloudflareApiUrl?: string;
  cloudflareCallsPer5m?: number;
}

export function setupCloudflareControllers(manager: Manager, options: SetupOptions): Context {
  const accounts = new Accounts({
    cache: manager.cache,
    namespace: options.namespace,
    metrics: manager.metrics,
    ...(options.cloudflareApiUrl ? { baseURL: options.cloudflareApiUrl } : {}),
    ...(options.cloudflareCallsPer5m ? { callsPer5m: options.cloudflareCallsPer5m } : {}),
  });
  const ctx: Context = { manager, accounts, options };
  setupTunnelProviderController(ctx);
  setupTunnelController(ctx);
  setupTunnelBindingController(ctx, options.quickTunnelEndpoint);
  return ctx;
}
