// How Access answers failures, and where each answer comes from. Access errors carry an
// `access.api.error.<kind>: <detail>` message; only some of their numeric codes have
// been seen from the live API.
import { CfError } from "./model.ts";

/**
 * The code the fake sends where the live code is unknown. Clients should key on the
 * HTTP status and the `access.api.error.<kind>` message, never on this number.
 */
export const UNVERIFIED_ACCESS_CODE = 12000;

/**
 * A self-hosted application whose domain is not in an active zone of the account:
 * 400, code 12130, "access.api.error.invalid_request: domain does not belong to zone".
 * Seen live by several independent users (including for a zone still pending
 * nameserver delegation). Earlier versions of this fake sent 12130 for a duplicate
 * domain instead; nothing shows the live API answering a duplicate with it.
 */
export const domainNotInZone = (): CfError => new CfError(400, 12130, "access.api.error.invalid_request: domain does not belong to zone");

/** 404 for an application, policy or identity provider that is not there (code kept from earlier versions of this fake; not verified). */
export const accessNotFound = (): CfError => new CfError(404, 11021, "access.api.error.not_found");

export const invalidAccessRequest = (detail: string): CfError =>
  new CfError(400, UNVERIFIED_ACCESS_CODE, `access.api.error.invalid_request: ${detail}`);

/**
 * 409 "access.api.error.conflict: ...". Seen live for a second one-time PIN identity
 * provider ("a onetimepin connection already exists"); the fake uses the same form for
 * the conflicts it assumes (a reusable policy still linked to applications, and a
 * duplicate application domain when `duplicateAccessDomains: "reject"`).
 */
export const accessConflict = (detail: string): CfError => new CfError(409, UNVERIFIED_ACCESS_CODE, `access.api.error.conflict: ${detail}`);
