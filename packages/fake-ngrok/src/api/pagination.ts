// ngrok's list pagination (ngrok-docs api/index.mdx, "Pagination"): `limit` (default and
// maximum 100) and `before_id`; newest first; `next_page_uri` is the full URL of the next
// page, or null when there is none.
//
// ngrok's ids are time-ordered (KSUIDs), so `before_id` means "created before this id"
// even after that item was deleted. The account's ids are random, so the fake keeps its
// own creation order instead (`CreationOrder`): every id it has seen gets a sequence
// number when first seen, in the account maps' insertion order, and keeps it after the
// item is gone. Readings of the docs where they are silent:
// - `limit` above 100 is served as 100 (the docs call 100 the maximum); a `limit` that is
//   not a positive integer is refused with ERR_NGROK_215.
// - a `before_id` the fake has never seen is refused with ERR_NGROK_215.
import { ApiErrors } from "./errors.ts";

export const MAX_PAGE_SIZE = 100;

/** Creation order of ids, remembered after deletion so `before_id` keeps working. */
export class CreationOrder {
  private readonly seq = new Map<string, number>();
  private next = 0;

  /** Records `ids` (oldest first) that were not seen before. */
  see(ids: Iterable<string>): void {
    for (const id of ids) if (!this.seq.has(id)) this.seq.set(id, this.next++);
  }

  position(id: string): number | undefined {
    return this.seq.get(id);
  }
}

export interface PageRequest {
  /** The fake's base URL, e.g. http://127.0.0.1:1234 */
  baseUrl: string;
  /** The list's path, e.g. /reserved_domains */
  path: string;
  query: URLSearchParams;
}

export interface Page<T> {
  items: T[];
  uri: string;
  next_page_uri: string | null;
}

/**
 * One page of `items` (given oldest first, as the account's maps hold them), newest
 * first, after `before_id`, at most `limit`.
 */
export function paginate<T extends { id: string }>(items: readonly T[], order: CreationOrder, request: PageRequest): Page<T> {
  order.see(items.map((i) => i.id));
  const limit = pageSize(request.query.get("limit"));
  const beforeId = request.query.get("before_id");
  let candidates = [...items].sort((a, b) => order.position(b.id)! - order.position(a.id)!);
  if (beforeId !== null) {
    const before = order.position(beforeId);
    if (before === undefined) throw ApiErrors.invalidParameter("before_id");
    candidates = candidates.filter((i) => order.position(i.id)! < before);
  }
  const page = candidates.slice(0, limit);
  const more = candidates.length > limit;
  const uri = `${request.baseUrl}${request.path}`;
  let next: string | null = null;
  if (more) {
    const params = new URLSearchParams(request.query);
    params.set("before_id", page[page.length - 1]!.id);
    next = `${uri}?${params.toString()}`;
  }
  return { items: page, uri, next_page_uri: next };
}

function pageSize(asked: string | null): number {
  if (asked === null) return MAX_PAGE_SIZE;
  if (!/^\d+$/.test(asked) || Number(asked) < 1) throw ApiErrors.invalidParameter("limit");
  return Math.min(Number(asked), MAX_PAGE_SIZE);
}
