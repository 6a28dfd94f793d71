// Registers a provider's three controllers on a manager (main, tests and benches alike).
import type { Manager } from "@ktube/runtime";
import { registerBindingController } from "./binding-controller.ts";
import { ProviderKit, type KitOptions } from "./kit.ts";
import type { ProviderPlugin } from "./plugin.ts";
import { registerProviderController } from "./provider-controller.ts";
import { registerTunnelController } from "./tunnel-controller.ts";

export function registerProviderControllers<S extends object>(manager: Manager, plugin: ProviderPlugin<S>, options: KitOptions): ProviderKit<S> {
  const kit = new ProviderKit(manager, plugin, options);
  plugin.setup?.(kit);
  registerProviderController(kit);
  registerTunnelController(kit);
  registerBindingController(kit);
  return kit;
}
