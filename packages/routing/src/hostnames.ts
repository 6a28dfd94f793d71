// Which hostnames a tunnel admits (Tunnel.spec.allowedBindings.hostnames). Hostnames
// are compared as the schema admits them: lowercase, no trailing dot.

/**
 * Compiles an allow-list into a predicate. An exact entry admits that name only; a
 * `*.` entry admits every name below its base at any depth (`*.apps.example.com`
 * admits `a.apps.example.com` and `a.b.apps.example.com`, not `apps.example.com`), as
 * Gateway API listeners do. A wildcard hostname is admitted only by an equal or
 * broader wildcard entry, since it stands for every name below its base. Each check
 * walks the hostname's parent domains, so its cost does not grow with the list.
 */
export function hostnameAdmission(allowed: readonly string[]): (hostname: string) => boolean {
  const exact = new Set<string>();
  const wildcardBases = new Set<string>();
  for (const entry of allowed) {
    if (entry.startsWith("*.")) wildcardBases.add(entry.slice(2));
    else exact.add(entry);
  }
  const belowWildcard = (domain: string | undefined): boolean => {
    for (let d = domain; d !== undefined; d = parentDomain(d)) if (wildcardBases.has(d)) return true;
    return false;
  };
  return (hostname) => {
    if (hostname.startsWith("*.")) return belowWildcard(hostname.slice(2));
    return exact.has(hostname) || belowWildcard(parentDomain(hostname));
  };
}

/** Is `hostname` one a tunnel with this `allowedBindings.hostnames` list admits? */
export function hostnameAdmitted(hostname: string, allowed: readonly string[]): boolean {
  return hostnameAdmission(allowed)(hostname);
}

function parentDomain(name: string): string | undefined {
  const dot = name.indexOf(".");
  return dot < 0 ? undefined : name.slice(dot + 1);
}
