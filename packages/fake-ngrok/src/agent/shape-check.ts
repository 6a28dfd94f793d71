// Checks an RPC document against what the fake implements. Anything the SDK may send but
// the fake does not honour (an unknown field, a module such as OAuth or a traffic policy)
// is named, so the ingress can refuse it instead of silently ignoring it.

export type Rule =
  | "string"
  | "boolean"
  | "integer"
  | "string[]"
  /** string or null (serde `Option<String>`). */
  | "string?"
  /** Accepted only at its zero value (absent, null, "", false, 0, [], {}): a feature the fake lacks. */
  | "unimplemented"
  | { object: Readonly<Record<string, Rule>>; nullable?: boolean };

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

const isZero = (value: unknown): boolean =>
  value === undefined ||
  value === null ||
  value === "" ||
  value === false ||
  value === 0 ||
  (Array.isArray(value) && value.length === 0) ||
  (isRecord(value) && Object.keys(value).length === 0);

/** The problems with `value` under `rule`, each prefixed with its path. Missing fields are fine (serde defaults them). */
export function shapeProblems(value: unknown, rule: Rule, path: string): string[] {
  if (value === undefined) return [];
  switch (rule) {
    case "string":
      return typeof value === "string" ? [] : [`${path}: expected a string`];
    case "string?":
      return value === null || typeof value === "string" ? [] : [`${path}: expected a string or null`];
    case "boolean":
      return typeof value === "boolean" ? [] : [`${path}: expected a boolean`];
    case "integer":
      return Number.isInteger(value) ? [] : [`${path}: expected an integer`];
    case "string[]":
      return Array.isArray(value) && value.every((v) => typeof v === "string") ? [] : [`${path}: expected a list of strings`];
    case "unimplemented":
      return isZero(value) ? [] : [`${path} is not implemented`];
  }
  if (value === null && rule.nullable) return [];
  if (!isRecord(value)) return [`${path}: expected an object`];
  const problems: string[] = [];
  for (const [key, field] of Object.entries(value)) {
    const fieldRule = rule.object[key];
    if (fieldRule === undefined) problems.push(`${path}.${key} is not a known field`);
    else problems.push(...shapeProblems(field, fieldRule, `${path}.${key}`));
  }
  return problems;
}
