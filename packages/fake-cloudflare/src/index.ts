export * from "./server.ts";
export { OpenApiSchema, DEFAULT_SPEC_PATH, type MatchedRequest } from "./schema.ts";
