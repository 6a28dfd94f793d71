// `--mode validate`: everything serve mode loads at start, once and without watches: the
// bootstrap, the static resources, the LDS/CDS files it names and the SDS files those
// listeners name. (Envoy's own validate mode does not read file-based xDS; fake-envoy
// does, since checking the files KTube renders is why a test runs it.) Any failure,
// rejection or missing file makes the whole configuration invalid.
import { InitializationError, loadBootstrap } from "./bootstrap.ts";
import { ConfigPlane } from "./config-plane.ts";
import type { EnvoyLogger } from "./log.ts";

export type ValidationResult = { ok: true } | { ok: false; message: string; unimplemented: boolean };

export async function validateConfiguration(configPath: string, log: EnvoyLogger): Promise<ValidationResult> {
  let plane: ConfigPlane | undefined;
  try {
    const bootstrap = await loadBootstrap(configPath);
    plane = new ConfigPlane({ bootstrap, log, watch: false });
    await plane.loadStatic();
    await plane.startDynamic();
    const subscriptions = [
      ["cds", plane.cds],
      ["lds", plane.lds],
      ...[...plane.secrets.dynamicSecrets.values()].map((secret) => [`sds ${secret.name}`, secret.subscription] as const),
    ] as const;
    const problems: string[] = [];
    for (const [what, subscription] of subscriptions) {
      const outcome = subscription?.lastOutcome;
      if (subscription && outcome?.kind !== "success") problems.push(`${what} (${subscription.path}): ${outcome?.kind === undefined ? "not read" : outcome.message}`);
    }
    if (problems.length > 0) return { ok: false, message: problems.join("; "), unimplemented: plane.unimplemented.value() > 0n };
    return { ok: true };
  } catch (error) {
    if (error instanceof InitializationError) return { ok: false, message: error.message, unimplemented: error.unimplemented };
    throw error;
  } finally {
    plane?.close();
  }
}
