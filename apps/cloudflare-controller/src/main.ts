#!/usr/bin/env node
// The Cloudflare Tunnel controller.
import { FlagError, parseDuration, parsePositive, runProviderController } from "@ktube/provider-kit";
import { DEFAULT_CLOUDFLARED_IMAGE, MANAGED_BY } from "./manifests/cloudflared.ts";
import { cloudflarePlugin } from "./plugin.ts";

await runProviderController({
  name: "cloudflare-controller",
  managedBy: MANAGED_BY,
  flags: {
    "owner-id": { type: "string", default: "default" },
    "cloudflared-image": { type: "string", default: DEFAULT_CLOUDFLARED_IMAGE },
    "cloudflare-api-url": { type: "string" },
    "cloudflare-calls-per-5m": { type: "string", default: "1000" },
    "config-delay": { type: "string", default: "1s" },
  },
  usage: `  --owner-id ID                   marks the DNS records and Access apps of this installation (default "default")
  --cloudflared-image IMAGE       default connector image (default ${DEFAULT_CLOUDFLARED_IMAGE})
  --cloudflare-api-url URL        Cloudflare API base URL ($CLOUDFLARE_BASE_URL; default the public API)
  --cloudflare-calls-per-5m N     call budget per API token (default 1000; Cloudflare allows 1200)
  --config-delay DURATION         gather binding changes this long before rebuilding a tunnel's config (default 1s)`,
  plugin(flags) {
    const ownerId = flags["owner-id"];
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(ownerId)) throw new FlagError("--owner-id must be a lowercase name of at most 63 characters");
    const apiUrl = flags["cloudflare-api-url"] ?? process.env.CLOUDFLARE_BASE_URL;
    return cloudflarePlugin({
      ownerId,
      cloudflaredImage: flags["cloudflared-image"],
      callsPer5m: parsePositive(flags["cloudflare-calls-per-5m"], "--cloudflare-calls-per-5m"),
      ...(apiUrl ? { apiUrl } : {}),
    });
  },
  configDelayMs: (flags) => parseDuration(flags["config-delay"], "--config-delay"),
});
