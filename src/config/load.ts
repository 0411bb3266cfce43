// Load a TS config module, apply --a.b=value overrides, validate with the schema.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { UserError } from "../errors.ts";
import { parseJson } from "../input.ts";
import { type RunConfig, type RunConfigInput, RunConfigSchema } from "./schema.ts";

/**
 * "3" -> 3, "true" -> true, "[1,2]" -> [1,2], anything else stays a string — except what is meant as
 * JSON (it starts with [ { or "), which must parse: a broken list is a mistake, not a string.
 */
function parseValue(path: string, raw: string): unknown {
  try {
    return parseJson(raw);
  } catch (e) {
    if (/^\s*[[{"]/.test(raw)) {
      // the value is echoed only in part: an argument may be 128 KiB
      const shown = raw.length > 80 ? `${raw.slice(0, 60)}… (${raw.length} characters)` : raw;
      throw new UserError(`--${path}=${shown} on the command line is not valid JSON (${(e as Error).message.split("\n")[0]})`);
    }
    return raw;
  }
}

/** Set an own property (a key such as "__proto__" stays a key, for the schema to refuse, not a prototype). */
function setOwn(node: Record<string, unknown>, k: string, value: unknown): void {
  Object.defineProperty(node, k, { value, writable: true, enumerable: true, configurable: true });
}

export function applyOverrides(config: Record<string, unknown>, overrides: [string, string][]): Record<string, unknown> {
  const out = structuredClone(config);
  for (const [path, raw] of overrides) {
    const keys = path.split(".");
    let node: Record<string, unknown> = out;
    for (const k of keys.slice(0, -1)) {
      const next = Object.hasOwn(node, k) ? node[k] : undefined;
      if (next === undefined) setOwn(node, k, {});
      else if (typeof next !== "object" || next === null || Array.isArray(next)) throw new UserError(`override --${path}: ${k} is not an object`);
      node = node[k] as Record<string, unknown>;
    }
    setOwn(node, keys[keys.length - 1], parseValue(path, raw));
  }
  return out;
}

/**
 * Validate a config; an invalid field is one line naming its path and where its value came from:
 * the command line when an override set it (or the section it is in), else the config file.
 */
export function validateConfig(raw: unknown, source: string, overrides: [string, string][] = []): RunConfig {
  const r = RunConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const first = r.error.issues[0];
  const path = first.path.join(".") || "(root)";
  const more = r.error.issues.length > 1 ? ` (+${r.error.issues.length - 1} more: ${r.error.issues.slice(1, 4).map((i) => i.path.join(".")).join(", ")})` : "";
  const given = overrides.findLast(([key]) => path === key || path.startsWith(`${key}.`) || key.startsWith(`${path}.`));
  if (given) {
    const [key, value] = given;
    // a list or section given as plain text: say that it wants JSON
    const wantsJson = /expected (array|object), received string/.test(first.message) ? ` (give JSON, e.g. --${key}='${first.message.includes("array") ? "[...]" : "{...}"}')` : "";
    throw new UserError(`--${key}=${value} on the command line: invalid config at ${path}: ${first.message}${wantsJson}${more}`);
  }
  const also = overrides.length ? ` (with ${overrides.map(([k, v]) => `--${k}=${v}`).join(" ")} from the command line)` : "";
  throw new UserError(`${source}: invalid config at ${path}: ${first.message}${more}${also}`);
}

export async function loadConfigModule(path: string): Promise<RunConfigInput> {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new UserError(`config file not found: ${path}`);
  let mod: { default?: unknown };
  try {
    mod = await import(abs);
  } catch (e) {
    throw new UserError(`cannot load config ${path}: ${(e as Error).message.split("\n")[0]}`);
  }
  if (!mod.default || typeof mod.default !== "object") throw new UserError(`config ${path} must have a default export (the run config object)`);
  return mod.default as RunConfigInput;
}

export async function loadConfig(path: string, overrides: [string, string][] = []): Promise<RunConfig> {
  const raw = await loadConfigModule(path);
  return validateConfig(applyOverrides(raw as Record<string, unknown>, overrides), path, overrides);
}

