// The REST side of the fake ngrok cloud (api.ngrok.com), for src/index.ts to re-export.
export {
  NgrokApi,
  type NgrokApiOptions,
  type SchemaViolation,
  type UnimplementedCall,
  type ResponseViolation,
  IMPLEMENTED_OPERATIONS,
  allocateLoopbackTcpAddr,
} from "./server.ts";
export { NgrokApiError, ApiErrors, type ErrorEnvelope } from "./errors.ts";
export { type ApiRequestRecord, type FaultSpec, type FaultKind, type OperationMatcher, keyFingerprint } from "./faults.ts";
export { NgrokOpenApi, DEFAULT_SPEC_PATH, SUPPORTED_VERSIONS, type SpecOperation } from "./spec.ts";
export { MAX_PAGE_SIZE } from "./pagination.ts";
export { NGROK_WINDOW_MS } from "./rate-limit.ts";
export { isNgrokOwned } from "./resources/reserved-domains.ts";
