// A KTube Tunnel's dev tunnel: its deterministic id and the labels that say it is ours.
// Dev Tunnels labels match `[\w-=]{1,50}` (no `.` or `/`), and everything here leaves the
// cluster, so names appear only hashed.
import { createHash } from "node:crypto";

const hash = (value: string, length: number): string => createHash("sha256").update(value).digest("hex").slice(0, length);

/**
 * `kt-` + 16 hex characters of the Tunnel's uid (with the installation's owner id): a create
 * that crashed before the status write finds the same tunnel again, a re-created Tunnel (new
 * uid) gets a new id (old access tokens are not revived), and an expired tunnel comes back
 * at the same URL. Matches the service's id pattern `[a-z0-9][a-z0-9-]{1,47}[a-z0-9]`.
 */
export const devTunnelId = (ownerId: string, tunnelUid: string): string => `kt-${hash(`${ownerId}/${tunnelUid}`, 16)}`;

export const OWNER_LABEL = "ktube";
/** Which installation: a sweep never touches another cluster's tunnels on the same account. */
export const ownerLabel = (ownerId: string): string => `ktube-owner=${hash(ownerId, 16)}`;
/** Which Tunnel (its uid: 13 + 36 characters, within the 50 the service allows). */
export const tunnelLabel = (tunnelUid: string): string => `ktube-tunnel=${tunnelUid}`;
/** Which route a port serves (hashed namespace/binding/route). */
export const routeLabel = (routeKey: string): string => `ktube-route=${hash(routeKey, 16)}`;

export const tunnelUidOf = (labels: readonly string[] | undefined): string | undefined =>
  labels?.find((l) => l.startsWith("ktube-tunnel="))?.slice("ktube-tunnel=".length);

export const isOurs = (labels: readonly string[] | undefined, ownerId: string): boolean =>
  Boolean(labels?.includes(OWNER_LABEL) && labels.includes(ownerLabel(ownerId)));
