// The account's zones, and which one a hostname belongs to (the longest suffix).
import type { CloudflareApi } from "./api.ts";

export interface ZoneRef {
  id: string;
  name: string;
}

const ZONES_PER_PAGE = 50;

export class ZoneDirectory {
  private cached?: { zones: ZoneRef[]; at: number };
  private listing?: Promise<ZoneRef[]>;
  private readonly ttlMs: number;

  constructor(ttlMs = 5 * 60_000) {
    this.ttlMs = ttlMs;
  }

  /** The account's zones; concurrent callers share one listing. */
  async zones(api: CloudflareApi): Promise<ZoneRef[]> {
    if (this.cached && Date.now() - this.cached.at < this.ttlMs) return this.cached.zones;
    this.listing ??= api
      .all("zones.list", (sdk) => sdk.zones.list({ account: { id: api.accountId }, per_page: ZONES_PER_PAGE }), ZONES_PER_PAGE)
      .then((zones) => {
        this.cached = { zones: zones.map((z) => ({ id: z.id, name: z.name })), at: Date.now() };
        return this.cached.zones;
      })
      .finally(() => (this.listing = undefined));
    return this.listing;
  }

  /** The zone whose name is the longest suffix of `hostname`, if any. */
  async zoneFor(api: CloudflareApi, hostname: string): Promise<ZoneRef | undefined> {
    return zoneForHostname(await this.zones(api), hostname);
  }
}

export function zoneForHostname(zones: ZoneRef[], hostname: string): ZoneRef | undefined {
  const bare = hostname.replace(/^\*\./, "");
  return zones
    .filter((z) => bare === z.name || bare.endsWith(`.${z.name}`))
    .sort((a, b) => b.name.length - a.name.length)[0];
}
