export * from "./common.ts";
export * from "./tunnel-provider.ts";
export * from "./tunnel.ts";
export * from "./tunnel-binding.ts";
export * from "./conditions.ts";
export * from "./crd.ts";
export * from "./resources.ts";
