// Marks KTube leaves outside the cluster (public DNS TXT records, record comments,
// Access application names) name no namespace or object: a binding appears as a
// fingerprint of its key, stable across restarts and installations.
import { createHash } from "node:crypto";

/** The first 16 hex digits of sha256(`namespace/name`). */
export function bindingFingerprint(bindingKey: string): string {
  return createHash("sha256").update(bindingKey).digest("hex").slice(0, 16);
}
