// `olmo train --help` lists every config field a --a.b=value override can set, with its value in the
// config being run (configs/tiny.ts without one) — the fields read off the zod schema
// (src/config/fields.ts), so a new field shows up here without anyone editing a help text.
import { CONFIG_FIELDS } from "../config/fields.ts";

function get(obj: unknown, path: string[]): unknown {
  let o = obj;
  for (const k of path) o = o && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined;
  return o;
}

/** One line per config field: `--a.b  type  (default: value)`. */
export function configFieldLines(defaults: unknown): string[] {
  const out = CONFIG_FIELDS.map((f) => [`--${f.path}`, f.type, value(get(defaults, f.path.split(".")))]);
  const w = Math.max(...out.map((r) => r[0].length)), t = Math.max(...out.map((r) => r[1].length));
  return out.map(([f, ty, v]) => `  ${f.padEnd(w)}  ${ty.padEnd(t)}  ${v}`);
}

function value(v: unknown): string {
  if (v === undefined) return "(unset)";
  return `(default: ${typeof v === "string" ? v : JSON.stringify(v)})`;
}
