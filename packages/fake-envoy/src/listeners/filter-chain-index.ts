// A listener's filter chains by their match, as Envoy's FilterChainManagerImpl builds and
// checks them for the fields fake-envoy implements (server_names, transport_protocol):
//
// - two chains with equal `filter_chain_match` messages are refused:
//   `error adding listener '<addr>': filter chain '<b>' has the same matching rules defined as '<a>'. duplicate matcher is: <json>`
// - chains whose matches overlap (a server name both list, each with the same transport
//   protocol) are refused:
//   `error adding listener '<addr>': multiple filter chains with overlapping matching rules are defined`
// - a `*` anywhere but a leading `*.` is refused: `... partial wildcards are not supported in "server_names"`.
//
// `select` then finds a connection's chain the way Envoy does: exact server name, then the
// longest wildcard suffix (`*.example.com` matches `a.b.example.com`), then chains without
// server names; within that, the exact transport protocol, then chains without one; else
// the default filter chain.
import type { FilterChain } from "../config/subset.ts";

export class FilterChainError extends Error {
  override name = "FilterChainError";
}

export interface FilterChainIndex<C> {
  select(serverName: string, transportProtocol: string): C | undefined;
  readonly chains: readonly C[];
}

/** A match in canonical form (what protobuf message equality compares). */
const canonicalMatch = (chain: FilterChain): string => {
  const match = chain.filter_chain_match ?? {};
  const canonical: Record<string, unknown> = {};
  if (match.server_names?.length) canonical.server_names = match.server_names;
  if (match.transport_protocol) canonical.transport_protocol = match.transport_protocol;
  return JSON.stringify(canonical);
};

const isWildcard = (name: string): boolean => name.startsWith("*.");

/**
 * Builds the index of `chains` for a listener at `addresses` ("0.0.0.0:443"); throws
 * FilterChainError with Envoy's message when the chains conflict. `value` maps a chain to what
 * the index returns (the chain itself, or what part 2 builds from it).
 */
export function buildFilterChainIndex<C>(
  addresses: string,
  chains: readonly FilterChain[],
  defaultChain: FilterChain | undefined,
  value: (chain: FilterChain, index: number) => C,
  defaultValue?: C,
): FilterChainIndex<C> {
  const seen = new Map<string, string>();
  // server name ("" = any, ".example.com" = wildcard) -> transport protocol ("" = any) -> chain
  const tree = new Map<string, Map<string, C>>();
  const values: C[] = [];
  chains.forEach((chain, i) => {
    const key = canonicalMatch(chain);
    const other = seen.get(key);
    if (other !== undefined) {
      throw new FilterChainError(
        `error adding listener '${addresses}': filter chain '${chain.name ?? ""}' has the same matching rules defined as '${other}'. duplicate matcher is: ${key}`,
      );
    }
    seen.set(key, chain.name ?? "");
    const names: string[] = [];
    for (const name of chain.filter_chain_match?.server_names ?? []) {
      if (name.includes("*") && !isWildcard(name)) {
        throw new FilterChainError(`error adding listener '${addresses}': partial wildcards are not supported in "server_names"`);
      }
      names.push(isWildcard(name) ? name.slice(1).toLowerCase() : name.toLowerCase());
    }
    const built = value(chain, i);
    values.push(built);
    const transport = chain.filter_chain_match?.transport_protocol ?? "";
    for (const name of names.length ? names : [""]) {
      const byTransport = tree.get(name) ?? new Map<string, C>();
      if (byTransport.has(transport)) {
        throw new FilterChainError(`error adding listener '${addresses}': multiple filter chains with overlapping matching rules are defined`);
      }
      byTransport.set(transport, built);
      tree.set(name, byTransport);
    }
  });
  const fallback = defaultChain ? (defaultValue ?? value(defaultChain, -1)) : undefined;

  const byTransport = (entry: Map<string, C>, transportProtocol: string): C | undefined => entry.get(transportProtocol) ?? entry.get("");

  return {
    chains: values,
    select(serverName, transportProtocol) {
      const name = serverName.toLowerCase();
      const exact = tree.get(name);
      if (exact) return byTransport(exact, transportProtocol) ?? fallback;
      for (let pos = name.indexOf(".", 1); pos !== -1 && pos < name.length - 1; pos = name.indexOf(".", pos + 1)) {
        const wildcard = tree.get(name.slice(pos));
        if (wildcard) return byTransport(wildcard, transportProtocol) ?? fallback;
      }
      const any = tree.get("");
      return (any ? byTransport(any, transportProtocol) : undefined) ?? fallback;
    },
  };
}
