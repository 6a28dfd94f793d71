// The zones one token sees in one account, and which one a hostname belongs to (the
// longest suffix).
import type { CloudflareApi } from "./api.ts";
import { zonePages, type ZoneRef } from "./cloudflare-sdk.ts";

export type { ZoneRef } from "./cloudflare-sdk.ts";

/** The schema's maximum for GET /zones. */
const ZONES_PER_PAGE = 50;

export class ZoneDirectory {
  private cached?: { zones: ZoneRef[]; at: number };
  private listing?: Promise<ZoneRef[]>;
  private readonly ttlMs: number;

  constructor(ttlMs = 5 * 60_000) {
    this.ttlMs = ttlMs;
  }

  /** The account's zones, every page; concurrent callers share one listing. */
  async zones(api: CloudflareApi): Promise<ZoneRef[]> {
    if (this.cached && Date.now() - this.cached.at < this.ttlMs) return this.cached.zones;
    this.listing ??= api
      .all("zones.list", (sdk) => zonePages(sdk, api.accountId, ZONES_PER_PAGE))
      .then((zones) => {
        this.cached = { zones, at: Date.now() };
        return zones;
      })
      .finally(() => (this.listing = undefined));
    return this.listing;
  }

  /** The zone whose name is the longest suffix of `hostname`, if any. */
  async zoneFor(api: CloudflareApi, hostname: string): Promise<ZoneRef | undefined> {
    return zoneForHostname(await this.zones(api), hostname);
  }

  /** Drops the listing (a zone was added, or a call said the zone is gone). */
  forget(): void {
    this.cached = undefined;
  }
}

export function zoneForHostname(zones: readonly ZoneRef[], hostname: string): ZoneRef | undefined {
  const bare = hostname.replace(/^\*\./, "");
  return zones
    .filter((z) => bare === z.name || bare.endsWith(`.${z.name}`))
    .sort((a, b) => b.name.length - a.name.length)[0];
}
