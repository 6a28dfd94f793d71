// The proto layer of Envoy's config loading, through @ktube/envoy-validator (strict
// protojson + PGV on every message, Any bodies included), sorted the way Envoy's own
// loading sorts the same failures:
//
// - a file that does not parse into the message (bad enum, unitless duration, unknown @type,
//   wrong JSON type) fails in `loadFromFile` before anything is decoded: the subscription
//   counts an `update_failure`, not a rejection;
// - an unknown field also fails there, but Envoy treats "has unknown fields" as a rejection;
// - a broken PGV rule on a resource itself (a listener's port over 65535) fails decoding the
//   resource: the whole update is rejected, nothing of it applied;
// - a broken PGV rule inside an extension's typed_config (tcp_proxy without stat_prefix)
//   only fails when that extension is instantiated: that one listener or cluster is
//   refused, the rest of the update is applied, and the update is still rejected.
import { validateEnvoy, type EnvoyDocumentKind, type JsonObject } from "@ktube/envoy-validator";

export type DiscoveryKind = "lds" | "cds" | "sds";

export const DISCOVERY_RESPONSE = "envoy.service.discovery.v3.DiscoveryResponse";

export interface FileFault {
  /** `failure`: counted as update_failure; `rejected`: as update_rejected. */
  outcome: "failure" | "rejected";
  message: string;
}

export interface ProtoCheckResult {
  fileFault?: FileFault;
  /** Errors inside a resource's typed_configs, by resource index; path relative to the resource. */
  resourceErrors: Map<number, string[]>;
}

interface LocatedError {
  path: string;
  reason: string;
}

const PGV_REASON = /^(value |repeated value |embedded message |type URL )/;

function locate(error: string): LocatedError {
  const match = /^(\S+?(?: \(key\))?): (.*)$/s.exec(error);
  return match ? { path: match[1]!, reason: match[2]! } : { path: "", reason: error };
}

const show = (error: LocatedError): string => (error.path ? `${error.path}: ${error.reason}` : error.reason);

/** How Envoy words a document that did not load, for the root message `rootType`. */
export function describeLoadError(rootType: string, errors: readonly string[]): FileFault {
  const located = errors.map(locate);
  const first = located[0] ?? { path: "", reason: "invalid" };
  if (located.some((e) => PGV_REASON.test(e.reason))) {
    return { outcome: "rejected", message: `Proto constraint validation failed (${located.map(show).join("; ")})` };
  }
  if (first.reason.startsWith("unknown field")) {
    return { outcome: "rejected", message: `Protobuf message (type ${rootType} reason INVALID_ARGUMENT:${show(first)}) has unknown fields` };
  }
  return { outcome: "failure", message: `Unable to parse JSON as proto (INVALID_ARGUMENT:${show(first)})` };
}

/** Checks a file-based xDS document (a DiscoveryResponse in JSON). */
export async function checkDiscoveryDocument(kind: DiscoveryKind, json: JsonObject): Promise<ProtoCheckResult> {
  const [result] = await validateEnvoy([{ kind, json }]);
  const resourceErrors = new Map<number, string[]>();
  if (!result || result.ok) return { resourceErrors };
  const located = result.errors.map(locate);
  const decode = located.filter((e) => e.path === "type_url" || / but a (lds|cds|sds) file holds /.test(e.reason));
  if (decode.length > 0) return { resourceErrors, fileFault: { outcome: "rejected", message: decode.map(show).join("; ") } };
  const pgv = located.filter((e) => PGV_REASON.test(e.reason));
  if (pgv.length === 0) return { resourceErrors, fileFault: describeLoadError(DISCOVERY_RESPONSE, result.errors) };
  const wholeFile: LocatedError[] = [];
  for (const error of pgv) {
    const match = /^resources\[(\d+)\]\.(.*)$/.exec(error.path);
    if (match && /(^|\.)typed_config(\.|\[|$)/.test(match[2]!)) {
      const index = Number(match[1]);
      const list = resourceErrors.get(index) ?? [];
      list.push(`Proto constraint validation failed (${match[2]}: ${error.reason})`);
      resourceErrors.set(index, list);
    } else {
      wholeFile.push(error);
    }
  }
  if (wholeFile.length > 0) {
    return { resourceErrors, fileFault: { outcome: "rejected", message: `Proto constraint validation failed (${wholeFile.map(show).join("; ")})` } };
  }
  return { resourceErrors };
}

/** Checks one document of another kind (the bootstrap); undefined when it is valid. */
export async function checkDocument(kind: EnvoyDocumentKind, rootType: string, json: JsonObject): Promise<FileFault | undefined> {
  const [result] = await validateEnvoy([{ kind, json }]);
  if (!result || result.ok) return undefined;
  return describeLoadError(rootType, result.errors);
}
