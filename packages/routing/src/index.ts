export type { ProviderCapabilities } from "./capabilities.ts";
export { normalizePath } from "./claims.ts";
export {
  type BindingVerdict,
  bindingKey,
  byAge,
  type ConditionVerdict,
  evaluateTunnel,
  type NamespaceLike,
  refersTo,
  type ResolvedRoute,
  type RouteVerdict,
  type ServiceLike,
  type ServicePort,
  type TunnelView,
  unboundVerdict,
} from "./evaluate.ts";
export { hostnameAdmitted } from "./hostnames.ts";
export { matchesSelector, parseLabelSelector } from "./selectors.ts";
