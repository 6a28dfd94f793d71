// Reserved TCP addresses: a TCP route on a provider with an API key gets an address of
// its own (stable across agent restarts, pooled across replicas), reserved through the
// REST API. Each reservation carries KTube's mark in its metadata: the provider it was made
// for and a hash of namespace/binding/route (no names in clear), plus the reclaim policy it
// was made under. Only marked reservations are ever adopted or released.
import type { RouteReservation } from "@ktube/api";
import { apiRequest, type ApiOptions } from "./api.ts";
import { NgrokError } from "./errors.ts";
import { shortHash } from "./route-table.ts";

export type ReclaimPolicy = "Delete" | "Retain";

interface ReservedAddr {
  id: string;
  addr: string;
  metadata: string;
  description: string;
}

interface Page {
  reserved_addrs: ReservedAddr[];
  next_page_uri: string | null;
}

export interface ReservationMark {
  /** A hash of the TunnelProvider's uid: two installations or providers on one account never touch each other's. */
  provider: string;
  /** A hash of namespace/binding/route. */
  route: string;
  /** A hash of the binding's uid: which incarnation made it (for release on deletion). */
  binding: string;
  reclaim: ReclaimPolicy;
}

export const routeMark = (providerUid: string, bindingUid: string, routeKey: string, reclaim: ReclaimPolicy): ReservationMark => ({
  provider: shortHash(providerUid),
  route: shortHash(routeKey),
  binding: shortHash(bindingUid),
  reclaim,
});

function parseMark(metadata: string): ReservationMark | undefined {
  try {
    const mark = (JSON.parse(metadata) as { ktube?: ReservationMark }).ktube;
    return mark && typeof mark.provider === "string" && typeof mark.route === "string" ? mark : undefined;
  } catch {
    return undefined;
  }
}

type Marked = ReservedAddr & { mark: ReservationMark };

/**
 * One listing serves every reconcile of a burst: concurrent callers share it, and it stays
 * current for a few seconds with the reservations this process makes and releases. (One
 * listing per new route spent 40 of a 120-a-minute budget on 40 TCP routes.)
 */
const LISTING_TTL_MS = 5_000;
const listings = new Map<string, { at: number; addrs: Promise<Marked[]> }>();
const listingKey = (apiKey: string, provider: string): string => `${shortHash(apiKey)}/${provider}`;

function sharedListing(apiKey: string, provider: string, api: ApiOptions): Promise<Marked[]> {
  const key = listingKey(apiKey, provider);
  const cached = listings.get(key);
  if (cached && Date.now() - cached.at < LISTING_TTL_MS) return cached.addrs;
  const addrs = listMarkedAddrs(apiKey, provider, api);
  listings.set(key, { at: Date.now(), addrs });
  addrs.catch(() => listings.delete(key));
  return addrs;
}

async function remember(apiKey: string, provider: string, change: (addrs: Marked[]) => Marked[]): Promise<void> {
  const cached = listings.get(listingKey(apiKey, provider));
  if (cached) cached.addrs = cached.addrs.then(change, () => []);
}

/** The account's reserved addresses that carry this provider's mark (every page). */
export async function listMarkedAddrs(apiKey: string, provider: string, api: ApiOptions): Promise<Marked[]> {
  const found: Array<ReservedAddr & { mark: ReservationMark }> = [];
  let path: string | undefined = "/reserved_addrs?limit=100";
  while (path) {
    const page: Page = await apiRequest<Page>(apiKey, "GET", path, api);
    for (const addr of page.reserved_addrs) {
      const mark = parseMark(addr.metadata);
      if (mark?.provider === provider) found.push({ ...addr, mark });
    }
    const next = page.next_page_uri ? new URL(page.next_page_uri) : undefined;
    path = next ? `${next.pathname}${next.search}` : undefined;
  }
  return found;
}

/**
 * The route's reserved address: the one recorded in status (trusted: it is checked when the
 * binding changes, not on every reconcile, to stay inside 120 calls a minute), else a marked
 * one left by a crash between create and status write or retained from an earlier binding
 * of the same route, else a new one.
 */
export async function ensureTcpAddress(
  apiKey: string,
  api: ApiOptions,
  mark: ReservationMark,
  recorded: RouteReservation | undefined,
  options: { region?: string; verify: boolean },
): Promise<RouteReservation> {
  if (recorded?.address && !options.verify) return recorded;
  if (recorded) {
    try {
      const addr = await apiRequest<ReservedAddr>(apiKey, "GET", `/reserved_addrs/${encodeURIComponent(recorded.id)}`, api);
      return { id: addr.id, address: addr.addr };
    } catch (error) {
      if (!(error instanceof NgrokError && /HTTP 404/.test(error.message))) throw error;
      // Gone (released by hand): reserve again below.
    }
  }
  const adoptable = (await sharedListing(apiKey, mark.provider, api)).find((a) => a.mark.route === mark.route);
  if (adoptable) {
    // Retained by an earlier binding of this route: from now on it is this binding's.
    if (adoptable.mark.binding !== mark.binding || adoptable.mark.reclaim !== mark.reclaim) {
      await apiRequest(apiKey, "PATCH", `/reserved_addrs/${encodeURIComponent(adoptable.id)}`, api, { metadata: JSON.stringify({ ktube: mark }) });
    }
    return { id: adoptable.id, address: adoptable.addr };
  }
  let created: ReservedAddr;
  try {
    created = await apiRequest<ReservedAddr>(apiKey, "POST", "/reserved_addrs", api, {
      description: "KTube TCP route",
      metadata: JSON.stringify({ ktube: mark }),
      ...(options.region ? { region: options.region } : {}),
    });
  } catch (error) {
    // The answer may be lost after ngrok made it: the next try must list afresh to adopt it.
    listings.delete(listingKey(apiKey, mark.provider));
    throw error;
  }
  await remember(apiKey, mark.provider, (addrs) => [...addrs, { ...created, mark }]);
  return { id: created.id, address: created.addr };
}

/**
 * Releases the marked addresses of one binding incarnation that are not in `keep` (route
 * hashes), per the policy each was made under. Returns the addresses retained.
 */
export async function releaseTcpAddresses(apiKey: string, api: ApiOptions, provider: string, binding: string, keep: ReadonlySet<string>): Promise<string[]> {
  const retained: string[] = [];
  for (const addr of await listMarkedAddrs(apiKey, provider, api)) {
    if (addr.mark.binding !== binding || keep.has(addr.mark.route)) continue;
    if (addr.mark.reclaim === "Retain") {
      retained.push(addr.addr);
      continue;
    }
    try {
      await apiRequest(apiKey, "DELETE", `/reserved_addrs/${encodeURIComponent(addr.id)}`, api);
    } catch (error) {
      if (!(error instanceof NgrokError && /HTTP 404/.test(error.message))) throw error;
    }
    await remember(apiKey, provider, (addrs) => addrs.filter((a) => a.id !== addr.id));
  }
  return retained;
}
