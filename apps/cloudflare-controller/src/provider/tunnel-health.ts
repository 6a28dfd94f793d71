// Connections of every tunnel of an account from one listing, shared by all its
// Tunnels: N tunnels cost one call per interval, not one GET each (which, for a
// hundred tunnels polled every 30 s, would spend the whole call budget).
import type { CloudflareApi } from "./api.ts";
import type { CfTunnel } from "./cloudflare-sdk.ts";
import { listTunnels } from "./tunnels.ts";

export interface TunnelHealthOptions {
  /** A listing this old is refreshed before use. */
  ttlMs?: number;
  /**
   * A tunnel being waited on (no connections yet) accepts a listing at most this old.
   * Default 0: what woke its reconcile (its connectors coming up) must be seen now;
   * concurrent callers still share one listing.
   */
  waitingTtlMs?: number;
}

export class TunnelHealth {
  private readonly ttlMs: number;
  private readonly waitingTtlMs: number;
  private snapshot?: { at: number; tunnels: Map<string, CfTunnel> };
  private listing?: Promise<{ at: number; tunnels: Map<string, CfTunnel> }>;

  constructor(options: TunnelHealthOptions = {}) {
    this.ttlMs = options.ttlMs ?? 25_000;
    this.waitingTtlMs = options.waitingTtlMs ?? 0;
  }

  /**
   * The tunnel as a recent listing of the account shows it; undefined when that listing
   * has no live tunnel with this id. Concurrent callers share one listing.
   */
  async tunnel(api: CloudflareApi, id: string): Promise<CfTunnel | undefined> {
    let snapshot = await this.current(api, this.ttlMs);
    const seen = snapshot.tunnels.get(id);
    if (!seen || (seen.connections?.length ?? 0) === 0) snapshot = await this.current(api, this.waitingTtlMs);
    return snapshot.tunnels.get(id);
  }

  /** Drops the listing: a tunnel was created, adopted or deleted. */
  forget(): void {
    this.snapshot = undefined;
  }

  private async current(api: CloudflareApi, maxAgeMs: number): Promise<{ at: number; tunnels: Map<string, CfTunnel> }> {
    if (this.snapshot && Date.now() - this.snapshot.at < maxAgeMs) return this.snapshot;
    this.listing ??= listTunnels(api)
      .then((list) => (this.snapshot = { at: Date.now(), tunnels: new Map(list.map((t) => [t.id, t])) }))
      .finally(() => (this.listing = undefined));
    return this.listing;
  }
}
