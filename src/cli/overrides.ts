// --a.b=value config overrides on the command line: which keys exist (the schema's field paths,
// src/config/fields.ts), what a bare `--a.b` means, and the one-line refusal of a key that is not a
// field — naming the command line as its source and the field that was probably meant.
import { UserError } from "../errors.ts";
import { CONFIG_FIELDS, CONFIG_SECTIONS, TOP_LEVEL_FIELDS, configField } from "../config/fields.ts";
import { camelCased, didYouMean, nearest } from "./suggest.ts";

const PATHS = [...CONFIG_FIELDS.map((f) => f.path), ...CONFIG_SECTIONS];

/** Whether `--key` is meant as a config override: a dotted path, or a top-level field (--backend). */
export function looksLikeOverride(key: string): boolean {
  return key.includes(".") || TOP_LEVEL_FIELDS.includes(key);
}

/** The config path probably meant by an unknown `key` (its camelCase form, a near one in its section, or anywhere). */
export function nearestConfigPath(key: string): string | null {
  const camel = camelCased(key);
  if (PATHS.includes(camel)) return camel;
  const parts = camel.split(".");
  // within its section first (--train.stpes → --train.steps), then anywhere (--steps → --train.steps)
  return nearest(camel, siblingsOf(camel)) ?? nearest(camel, PATHS) ?? nearest(parts.at(-1)!, PATHS, (p) => p.split(".").at(-1)!);
}

function siblingsOf(key: string): string[] {
  const parts = key.split(".");
  if (parts.length < 2) return [];
  const section = parts.slice(0, -1).join(".");
  return PATHS.filter((p) => p.startsWith(`${section}.`) && p.split(".").length === parts.length);
}

/** Refuse a key that names no config field or section, with the nearest one. */
export function checkOverrideKey(cmd: string, key: string): void {
  if (PATHS.includes(key)) return;
  const parts = key.split(".");
  for (let i = parts.length - 1; i >= 1; i--) {
    const field = configField(parts.slice(0, i).join("."));
    if (field) throw new UserError(`${cmd}: --${key} on the command line: ${field.path} is a ${field.type} field, not a section (set it whole: --${field.path}=VALUE)`);
  }
  const where = `${cmd}: --${key} on the command line is not a config field`;
  const guess = nearestConfigPath(key);
  if (guess && guess === camelCased(key)) throw new UserError(`${where}; config fields are camelCase: did you mean --${guess}?`);
  const siblings = siblingsOf(key);
  const section = parts.slice(0, -1).join(".");
  const listing = !guess && siblings.length ? ` (${section}'s fields: ${siblings.map((p) => p.slice(section.length + 1)).join(", ")})` : "";
  throw new UserError(`${where}${didYouMean(guess && `--${guess}`)}${listing}${guess || listing ? "" : ` (olmo ${cmd} --help lists them)`}`);
}

/**
 * The value of `--key` given without `=`: a boolean field takes a following true/false, else it is
 * true (OLMo-core's convention for a bare `--a.b`: allenai/OLMo-core @ 0272aa76,
 * src/olmo_core/config.py `_clean_opt`); any other field takes the next argument unless that is an
 * option. Returns the value and how many arguments it used (0 or 1).
 */
export function bareOverrideValue(cmd: string, key: string, next: string | undefined): [string, number] {
  if (configField(key)?.type === "boolean") return next === "true" || next === "false" ? [next, 1] : ["true", 0];
  if (next !== undefined && !next.startsWith("--")) return [next, 1];
  throw new UserError(`${cmd}: override --${key} needs a value (--${key}=VALUE)`);
}
