// Cloudflare's page/per_page pagination, per endpoint as the OpenAPI document declares it.
//
// The size of a page is what the request asks for, else the operation's documented
// default; never more than its documented maximum (an ask above it, or below a declared
// minimum, fails schema validation before it gets here: 400, as Cloudflare answers it),
// and never more than a cap a test sets. A cap stands for a server that serves fewer
// than asked although the schema allows more: external-dns documents 5,000 as the most
// the live DNS listing returns per page, where the schema says 5,000,000. Such a server
// reports the size it actually used in `result_info.per_page`.
//
// Why a client must follow `result_info.total_pages` (or keep asking until an empty
// page, as the SDK does) rather than stop at the first page shorter than it asked for:
// under a cap every page is "short" against the ask, so that client stops after page 1
// and never sees the rest. `count < result_info.per_page` is the only sound "last page"
// test, and `page >= total_pages` the simplest.
import type { PageSizeLimits } from "./schema.ts";

/**
 * The page size where the document declares no default (the tunnel list): 20, the v4
 * API's usual default (zones document it; DNS did before it became 100).
 */
export const UNDOCUMENTED_DEFAULT_PER_PAGE = 20;

export interface ResultInfo {
  page: number;
  per_page: number;
  count: number;
  total_count: number;
  total_pages: number;
}

export interface Page<T> {
  result: T[];
  result_info: ResultInfo;
}

/** The page size an operation serves for a given ask. */
export function pageSizeFor(asked: string | null, limits: PageSizeLimits | undefined, cap?: number): number {
  const fallback = limits?.default ?? UNDOCUMENTED_DEFAULT_PER_PAGE;
  // The Access lists declare no minimum, so 0 or a negative size passes the schema;
  // the fake serves the default then rather than an empty page that would end a listing.
  const requested = asked === null ? fallback : Math.floor(Number(asked));
  const wanted = Number.isFinite(requested) && requested >= 1 ? requested : fallback;
  return Math.max(1, Math.min(wanted, limits?.maximum ?? Infinity, cap ?? Infinity));
}

/** One page of `items`; past the end, an empty page (the official SDK stops on one). */
export function paginate<T>(items: readonly T[], query: URLSearchParams, limits: PageSizeLimits | undefined, cap?: number): Page<T> {
  const perPage = pageSizeFor(query.get("per_page"), limits, cap);
  const askedPage = Math.floor(Number(query.get("page") ?? 1));
  const page = Number.isFinite(askedPage) && askedPage >= 1 ? askedPage : 1;
  const slice = items.slice((page - 1) * perPage, page * perPage);
  return {
    result: slice,
    result_info: { page, per_page: perPage, count: slice.length, total_count: items.length, total_pages: Math.ceil(items.length / perPage) },
  };
}
