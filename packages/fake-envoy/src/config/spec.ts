// A small schema language for "the part of an Envoy message fake-envoy implements".
//
// Config reaching these specs has already passed @ktube/envoy-validator (strict protojson +
// PGV), so every key is a real field of the message and every value has the right JSON
// shape; what a spec decides is whether fake-envoy implements the field. A field the spec
// does not list, an enum value it does not allow, or an extension type it does not know is
// an issue naming the field's path ("filter_chains[0].filters[0].typed_config.access_log"),
// and the resource carrying it is refused, never served with the field ignored.
//
// Parsing also normalises what proto3 JSON allows in several spellings, so the code serving
// the config reads one form: lowerCamelCase keys become the proto field names, 64-bit and
// 32-bit integers given as strings become numbers, enums given as numbers become names, a
// `null` field is absent, and an `Any`'s `@type` is reduced to the message's full name.
// The inferred TypeScript type of a spec is the type of what `parse` returns.
import type { JsonObject, JsonValue } from "@ktube/envoy-validator";

export interface SpecIssue {
  /** Path into the parsed document, in proto field names. */
  path: string;
  message: string;
  /** `unimplemented`: valid Envoy config fake-envoy does not serve. `invalid`: config Envoy itself refuses. */
  kind: "unimplemented" | "invalid";
}

export class SpecContext {
  readonly issues: SpecIssue[] = [];
  unimplemented(path: string, what?: string): undefined {
    this.issues.push({ path, message: what ?? "not implemented by fake-envoy", kind: "unimplemented" });
    return undefined;
  }
  invalid(path: string, message: string): undefined {
    this.issues.push({ path, message, kind: "invalid" });
    return undefined;
  }
}

export interface Spec<T> {
  /** The proto type, for messages ("envoy.config.listener.v3.Listener"), else the scalar kind. */
  readonly label: string;
  parse(value: JsonValue, path: string, ctx: SpecContext): T | undefined;
}

export type Infer<S> = S extends Spec<infer T> ? T : never;

export const joinPath = (path: string, key: string): string => (path === "" ? key : `${path}.${key}`);

const scalar = <T>(label: string, parse: (value: JsonValue) => T | undefined): Spec<T> => ({
  label,
  parse(value, path, ctx) {
    const parsed = parse(value);
    return parsed === undefined ? ctx.invalid(path, `expected ${label}, got ${JSON.stringify(value)}`) : parsed;
  },
});

export const string: Spec<string> = scalar("string", (v) => (typeof v === "string" ? v : undefined));
export const bool: Spec<boolean> = scalar("bool", (v) => (typeof v === "boolean" ? v : undefined));
/** uint32/uint64 and their wrappers: a JSON number or a decimal string. */
export const uint: Spec<number> = scalar("uint", (v) => {
  const n = typeof v === "number" ? v : typeof v === "string" && /^\d+$/.test(v) ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
});
/** double / Percent.value. */
export const double: Spec<number> = scalar("double", (v) => (typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" && !Number.isNaN(Number(v)) ? Number(v) : undefined));
/** google.protobuf.Duration in JSON: "1.5s". */
export const duration: Spec<string> = scalar("duration", (v) => (typeof v === "string" && /^-?\d+(\.\d{1,9})?s$/.test(v) ? v : undefined));
/** bytes in JSON: base64. */
export const bytes: Spec<string> = scalar("bytes", (v) => (typeof v === "string" ? v : undefined));
/** google.protobuf.Struct: any JSON object, kept as it is. */
export const struct: Spec<JsonObject> = scalar("google.protobuf.Struct", (v) => (typeof v === "object" && v !== null && !Array.isArray(v) ? v : undefined));

/** Seconds of a proto3 JSON duration ("5s", "0.25s"). */
export const durationSeconds = (value: string): number => Number(value.slice(0, -1));

/**
 * An enum: `values` maps every name to its number (as in the .proto); only `implemented`
 * names are accepted, any other valid value is unimplemented.
 */
export function enumOf<const I extends string>(label: string, values: Readonly<Record<string, number>>, implemented: readonly I[]): Spec<I> {
  return {
    label,
    parse(value, path, ctx) {
      const name = typeof value === "number" ? Object.keys(values).find((key) => values[key] === value) : typeof value === "string" ? value : undefined;
      if (name === undefined || !(name in values)) return ctx.invalid(path, `not a ${label} value: ${JSON.stringify(value)}`);
      if (!(implemented as readonly string[]).includes(name)) {
        return ctx.unimplemented(path, `${label} ${name} is not implemented by fake-envoy (it implements ${implemented.join(", ")})`);
      }
      return name as I;
    },
  };
}

export function list<T>(of: Spec<T>): Spec<T[]> {
  return {
    label: `repeated ${of.label}`,
    parse(value, path, ctx) {
      if (!Array.isArray(value)) return ctx.invalid(path, `expected a list, got ${JSON.stringify(value)}`);
      const out: T[] = [];
      let ok = true;
      value.forEach((item, i) => {
        const parsed = of.parse(item, `${path}[${i}]`, ctx);
        if (parsed === undefined) ok = false;
        else out.push(parsed);
      });
      return ok ? out : undefined;
    },
  };
}

/** A proto map with string keys (keys are kept as written). */
export function map<T>(of: Spec<T>): Spec<Record<string, T>> {
  return {
    label: `map<string, ${of.label}>`,
    parse(value, path, ctx) {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return ctx.invalid(path, `expected a map, got ${JSON.stringify(value)}`);
      const out: Record<string, T> = {};
      let ok = true;
      for (const [key, item] of Object.entries(value)) {
        const parsed = of.parse(item, `${path}[${JSON.stringify(key)}]`, ctx);
        if (parsed === undefined) ok = false;
        else out[key] = parsed;
      }
      return ok ? out : undefined;
    },
  };
}

type Fields = Record<string, Spec<unknown>>;
export type MessageOf<F extends Fields> = { [K in keyof F]?: Infer<F[K]> };

export interface MessageOptions {
  /** Extra words for a field that is refused (a better alternative, why it is left out). */
  hints?: Record<string, string>;
}

const camelToSnake = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** A message with the fields fake-envoy implements; any other (valid) field is refused. */
export function message<const F extends Fields>(label: string, fields: F, options: MessageOptions = {}): Spec<MessageOf<F>> {
  return {
    label,
    parse(value, path, ctx) {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return ctx.invalid(path, `expected a ${label} object, got ${JSON.stringify(value)}`);
      const out: Record<string, unknown> = {};
      let ok = true;
      for (const [rawKey, item] of Object.entries(value)) {
        const key = Object.hasOwn(fields, rawKey) ? rawKey : camelToSnake(rawKey);
        const at = joinPath(path, key);
        if (item === null) continue;
        const spec = Object.hasOwn(fields, key) ? fields[key] : undefined;
        if (spec === undefined) {
          const hint = options.hints?.[key];
          ctx.unimplemented(at, `${label}.${key} is not implemented by fake-envoy${hint ? ` (${hint})` : ""}`);
          ok = false;
          continue;
        }
        const parsed = spec.parse(item, at, ctx);
        if (parsed === undefined) ok = false;
        else out[key] = parsed;
      }
      return ok ? (out as MessageOf<F>) : undefined;
    },
  };
}

/** Which extension slot each known extension type was declared for, filled as specs are built. */
const slotsOfType = new Map<string, Set<string>>();

export const typeNameOf = (typeUrl: string): string => typeUrl.slice(typeUrl.lastIndexOf("/") + 1);

/** A `TypedExtensionConfig` (or a filter/transport socket of that shape): `name` + `typed_config`. */
export type ExtensionOf<R extends Fields> = { [K in keyof R & string]: { name: string; type: K; config: Infer<R[K]> } }[keyof R & string];

/**
 * An extension slot (a network filter, a listener filter, a transport socket, ...): the
 * object `{name, typed_config: {"@type", ...}}`, parsed into `{name, type, config}` where
 * `type` is the full message name. A type known for another slot is what Envoy refuses
 * ("Didn't find a registered implementation"); a type known nowhere is unimplemented.
 */
export function extension<const R extends Fields>(slot: string, types: R): Spec<ExtensionOf<R>> {
  for (const type of Object.keys(types)) {
    const slots = slotsOfType.get(type) ?? new Set<string>();
    slots.add(slot);
    slotsOfType.set(type, slots);
  }
  return {
    label: slot,
    parse(value, path, ctx) {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return ctx.invalid(path, `expected a ${slot}, got ${JSON.stringify(value)}`);
      let name = "";
      let typed: JsonValue | undefined;
      let ok = true;
      for (const [rawKey, item] of Object.entries(value)) {
        const key = camelToSnake(rawKey);
        if (item === null) continue;
        if (key === "name" && typeof item === "string") name = item;
        else if (key === "typed_config") typed = item;
        else {
          ctx.unimplemented(joinPath(path, key), `${slot}.${key} is not implemented by fake-envoy (configure extensions through typed_config)`);
          ok = false;
        }
      }
      const at = joinPath(path, "typed_config");
      if (typed === undefined) return ctx.unimplemented(at, `a ${slot} without typed_config is not implemented by fake-envoy`);
      if (typeof typed !== "object" || typed === null || Array.isArray(typed) || typeof typed["@type"] !== "string") return ctx.invalid(at, `typed_config needs an @type`);
      const type = typeNameOf(typed["@type"]);
      if (!Object.hasOwn(types, type)) {
        if (slotsOfType.has(type)) return ctx.invalid(at, `Didn't find a registered implementation for '${name}' with type URL: '${type}'`);
        return ctx.unimplemented(joinPath(at, "@type"), `${type} as a ${slot} is not implemented by fake-envoy`);
      }
      const { "@type": _type, ...body } = typed;
      const config = types[type]!.parse(body, at, ctx);
      if (config === undefined || !ok) return undefined;
      return { name, type, config } as ExtensionOf<R>;
    },
  };
}
