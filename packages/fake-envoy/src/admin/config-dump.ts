// `/config_dump`: Envoy's ConfigDump, minimal but shaped like Envoy's:
//
//   {"configs": [
//     {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", "bootstrap": {...}, "last_updated": ...},
//     {"@type": "...ClustersConfigDump", "version_info", "static_clusters": [{cluster, last_updated}],
//      "dynamic_active_clusters": [{version_info, cluster, last_updated}]},
//     {"@type": "...ListenersConfigDump", "version_info", "static_listeners": [{listener, last_updated}],
//      "dynamic_listeners": [{name, active_state: {version_info, listener, last_updated}, error_state?}]},
//     {"@type": "...SecretsConfigDump", "static_secrets": [...], "dynamic_active_secrets": [{name, version_info, last_updated, secret}]}
//   ]}
//
// Resources appear as they were written (with their `@type`), private keys redacted as
// Envoy redacts them. `?resource=<field>` returns that field's entries instead, each with
// its own `@type` (e.g. `dynamic_listeners`, `dynamic_active_clusters`).
import type { JsonObject, JsonValue } from "@ktube/envoy-validator";
import type { ConfigPlane } from "../config-plane.ts";
import type { ActiveSecret } from "../secrets/secret-manager.ts";

const ADMIN = "type.googleapis.com/envoy.admin.v3.";
const REDACTED = Buffer.from("[redacted]").toString("base64");

const timestamp = (date: Date): string => date.toISOString();

function redact(secret: ActiveSecret): JsonObject {
  const raw = JSON.parse(JSON.stringify(secret.raw)) as JsonObject;
  const certificate = (raw.tls_certificate ?? raw.tlsCertificate) as JsonObject | undefined;
  if (certificate && typeof certificate === "object") {
    if ("private_key" in certificate) certificate.private_key = { inline_bytes: REDACTED };
    if ("privateKey" in certificate) certificate.privateKey = { inline_bytes: REDACTED };
  }
  return raw;
}

interface Section {
  type: string;
  /** field -> [entry type, entries] */
  fields: Record<string, [string, JsonValue[]]>;
  scalars?: JsonObject;
}

function sections(plane: ConfigPlane, started: Date): Section[] {
  const clusters = [...plane.clusters.clusters.values()];
  const listeners = [...plane.listeners.active.values()];
  const dynamicListeners: JsonObject[] = listeners
    .filter((l) => !l.static)
    .map((l) => {
      const entry: JsonObject = { name: l.name, active_state: { version_info: l.versionInfo, listener: l.raw, last_updated: timestamp(l.lastUpdated) } };
      const error = plane.listeners.errorStates.get(l.name);
      if (error) entry.error_state = { failed_configuration: error.failedConfiguration, last_update_attempt: timestamp(error.lastUpdateAttempt), details: error.details };
      return entry;
    });
  for (const [name, error] of plane.listeners.errorStates) {
    if (plane.listeners.active.has(name)) continue;
    dynamicListeners.push({ name, error_state: { failed_configuration: error.failedConfiguration, last_update_attempt: timestamp(error.lastUpdateAttempt), details: error.details } });
  }
  const dynamicSecrets = [...plane.secrets.dynamicSecrets.values()].filter((s) => s.current !== undefined);
  return [
    { type: "BootstrapConfigDump", fields: {}, scalars: { bootstrap: plane.bootstrap.json, last_updated: timestamp(started) } },
    {
      type: "ClustersConfigDump",
      scalars: { version_info: plane.clusters.versionInfo },
      fields: {
        static_clusters: ["ClustersConfigDump.StaticCluster", clusters.filter((c) => c.static).map((c) => ({ cluster: c.raw, last_updated: timestamp(c.lastUpdated) }))],
        dynamic_active_clusters: [
          "ClustersConfigDump.DynamicCluster",
          clusters.filter((c) => !c.static).map((c) => ({ version_info: c.versionInfo, cluster: c.raw, last_updated: timestamp(c.lastUpdated) })),
        ],
        dynamic_warming_clusters: ["ClustersConfigDump.DynamicCluster", []],
      },
    },
    {
      type: "ListenersConfigDump",
      scalars: { version_info: plane.listeners.versionInfo },
      fields: {
        static_listeners: ["ListenersConfigDump.StaticListener", listeners.filter((l) => l.static).map((l) => ({ listener: l.raw, last_updated: timestamp(l.lastUpdated) }))],
        dynamic_listeners: ["ListenersConfigDump.DynamicListener", dynamicListeners],
      },
    },
    {
      type: "SecretsConfigDump",
      fields: {
        static_secrets: [
          "SecretsConfigDump.StaticSecret",
          [...plane.secrets.staticSecrets.values()].map((s) => ({ name: s.name, last_updated: timestamp(s.lastUpdated), secret: redact(s) })),
        ],
        dynamic_active_secrets: [
          "SecretsConfigDump.DynamicSecret",
          dynamicSecrets.map((s) => ({ name: s.name, version_info: s.current!.versionInfo, last_updated: timestamp(s.current!.lastUpdated), secret: redact(s.current!) })),
        ],
      },
    },
  ];
}

export type ConfigDumpResult = { ok: true; body: JsonObject } | { ok: false; message: string };

export function configDump(plane: ConfigPlane, started: Date, resource?: string): ConfigDumpResult {
  const all = sections(plane, started);
  if (resource === undefined || resource === "") {
    return {
      ok: true,
      body: {
        configs: all.map((section) => {
          const out: JsonObject = { "@type": `${ADMIN}${section.type}`, ...(section.scalars ?? {}) };
          for (const [field, [, entries]] of Object.entries(section.fields)) if (entries.length > 0) out[field] = entries;
          return out;
        }),
      },
    };
  }
  for (const section of all) {
    const field = section.fields[resource];
    if (field) return { ok: true, body: { configs: field[1].map((entry) => ({ "@type": `${ADMIN}${field[0]}`, ...(entry as JsonObject) })) } };
  }
  return { ok: false, message: `${resource} not found in config dump` };
}
