// The management REST side of the fake Dev Tunnels service, for src/index.ts to re-export.
export { ManagementApi, type ManagementApiOptions, type UnknownRoute } from "./server.ts";
export { ManagementError, Problems, LimitNames, type ProblemBody } from "./problems.ts";
export { type ManagementRequestRecord, type ContractViolation, type FaultSpec, type FaultKind, type OperationMatcher } from "./faults.ts";
export { API_VERSIONS, type Operation } from "./routes.ts";
export { CONTRACT_SCHEMAS, validateObject, type ObjectSchema, type Field, type FieldErrors } from "./contract-schema.ts";
export { CUSTOM_EXPIRATION_RANGE } from "./handlers.ts";
