export * from "./server.ts";
export { FakeCloudflareEdge, type EdgeOptions } from "./edge.ts";
export type {
  AccessApp,
  AccessPolicy,
  Connection,
  DnsRecord,
  DnsRecordSeed,
  IdentityProvider,
  ReusablePolicy,
  StoredAccessApp,
  StoredReusablePolicy,
  Tunnel,
  TunnelConfiguration,
  Zone,
} from "./model.ts";
export { OpenApiSchema, DEFAULT_SPEC_PATH, type MatchedRequest, type PageSizeLimits } from "./schema.ts";
export { type RequestRecord, type BlockedWindow, requestsWhileBlocked, tokenFingerprint, monotonicNow } from "./request-log.ts";
export { type HeldRequest, type HoldOptions, type HoldCandidate, type RequestMatcher } from "./faults.ts";
export { OPERATION_NAMES, operationName } from "./operation-names.ts";
export { type Page, type ResultInfo, UNDOCUMENTED_DEFAULT_PER_PAGE, pageSizeFor } from "./pagination.ts";
export { type RateLimit, CLOUDFLARE_RATE_LIMIT } from "./rate-limit.ts";
export { type ZoneOptions } from "./zones.ts";
export { UNVERIFIED_ACCESS_CODE } from "./access-errors.ts";
