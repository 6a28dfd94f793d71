// Reads a config file the way Envoy's `MessageUtil::loadFromFile` picks a format: `.yaml`
// and `.yml` are YAML, anything else JSON. The result is the JSON value the proto parser
// would see; errors read like Envoy's.
import { readFile } from "node:fs/promises";
import type { JsonObject } from "@ktube/envoy-validator";
import { parse as parseYaml } from "yaml";

export type LoadedFile = { ok: true; json: JsonObject } | { ok: false; message: string };

const isObject = (value: unknown): value is JsonObject => typeof value === "object" && value !== null && !Array.isArray(value);

export const isYamlPath = (path: string): boolean => /\.ya?ml$/i.test(path);

export function parseConfigText(path: string, text: string): LoadedFile {
  let value: unknown;
  if (isYamlPath(path)) {
    try {
      value = parseYaml(text);
    } catch (error) {
      return { ok: false, message: `Unable to convert YAML as JSON: ${error instanceof Error ? error.message : String(error)}` };
    }
  } else {
    try {
      value = JSON.parse(text);
    } catch (error) {
      return { ok: false, message: `Unable to parse JSON as proto (INVALID_ARGUMENT:${error instanceof Error ? error.message : String(error)}): ${text.slice(0, 200)}` };
    }
  }
  if (value === null || value === undefined) return { ok: true, json: {} };
  if (!isObject(value)) return { ok: false, message: `Unable to parse JSON as proto (INVALID_ARGUMENT:the document is not an object): ${text.slice(0, 200)}` };
  return { ok: true, json: value };
}

export async function loadConfigFile(path: string): Promise<LoadedFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { ok: false, message: code === "ENOENT" || code === "ENOTDIR" ? `Invalid path: ${path}` : `unable to read file: ${path}: ${(error as Error).message}` };
  }
  return parseConfigText(path, text);
}
