export { FakeNgrok, type FakeNgrokOptions } from "./fake-ngrok.ts";
export { Account, DEFAULT_LIMITS, type AccountOptions, type AgentSession, type Endpoint, type EndpointProto, type PlanLimits, type ReservedAddr, type ReservedDomain } from "./account.ts";
export * from "./agent/index.ts";
export * from "./api/index.ts";
