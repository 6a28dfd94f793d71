export { FakeDevTunnels, type FakeDevTunnelsOptions } from "./fake-devtunnels.ts";
export { DevTunnelsService, DEFAULT_LIMITS, type ServiceLimits, type ServiceOptions, type StoredTunnel, type RelayControl } from "./service.ts";
export { FakeEntra, DEV_TUNNELS_SCOPE, type EntraRequest } from "./entra.ts";
export * from "./management/index.ts";
export * from "./relay/index.ts";
