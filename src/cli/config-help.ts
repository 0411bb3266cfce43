// `olmo train --help` lists every config field a --a.b=value override can set, with its value in
// the default run (configs/tiny.ts, resolved by the schema) — read off the zod schema itself, so a
// new field shows up here without anyone editing a help text.
import { RunConfigSchema } from "../config/schema.ts";

type Def = { type?: string; innerType?: unknown; shape?: Record<string, unknown>; options?: unknown[]; values?: unknown[]; entries?: Record<string, unknown> };
const def = (s: unknown): Def => ((s as { _zod?: { def?: Def } })._zod?.def ?? {}) as Def;

/** Strip optional/default/prefault wrappers. */
function unwrap(s: unknown): unknown {
  for (let d = def(s); d.innerType && ["optional", "default", "prefault", "nullable"].includes(d.type ?? ""); d = def(s)) s = d.innerType;
  return s;
}

function typeName(s: unknown): string {
  const d = def(unwrap(s));
  if (d.type === "enum") return Object.keys(d.entries ?? {}).join("|");
  if (d.type === "literal") return (d.values ?? []).map(String).join("|");
  if (d.type === "array") return "JSON array";
  if (d.type === "union") return (d.options ?? []).map(typeName).join(" or "); // e.g. train.recompute
  return d.type ?? "?";
}

function get(obj: unknown, path: string[]): unknown {
  let o = obj;
  for (const k of path) o = o && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined;
  return o;
}

/** One line per config field: `--a.b  type  (default: value)`. */
export function configFieldLines(defaults: unknown): string[] {
  const out: [string, string, string][] = [];
  const walk = (schema: unknown, path: string[]) => {
    const s = unwrap(schema);
    const d = def(s);
    if (d.type === "object" && d.shape) {
      for (const [k, v] of Object.entries(d.shape)) walk(v, [...path, k]);
      return;
    }
    if (d.type === "union" && d.options?.every((o) => def(unwrap(o)).type === "object")) {
      // a discriminated union (optim.schedule): the fields of every variant, once each
      const seen = new Map<string, unknown>();
      for (const o of d.options) for (const [k, v] of Object.entries(def(unwrap(o)).shape ?? {})) if (!seen.has(k)) seen.set(k, v);
      const kinds = d.options.map((o) => typeName((def(unwrap(o)).shape ?? {}).kind)).join("|");
      for (const [k, v] of seen) out.push([`--${[...path, k].join(".")}`, k === "kind" ? kinds : typeName(v), value(get(defaults, [...path, k]))]);
      return;
    }
    out.push([`--${path.join(".")}`, typeName(s), value(get(defaults, path))]);
  };
  walk(RunConfigSchema, []);
  const w = Math.max(...out.map((r) => r[0].length)), t = Math.max(...out.map((r) => r[1].length));
  return out.map(([f, ty, v]) => `  ${f.padEnd(w)}  ${ty.padEnd(t)}  ${v}`);
}

function value(v: unknown): string {
  if (v === undefined) return "(unset)";
  return `(default: ${typeof v === "string" ? v : JSON.stringify(v)})`;
}

/** Top-level config fields, which --name=value may override without a dot (--backend=cuda). */
export const TOP_LEVEL_FIELDS: string[] = Object.keys(def(unwrap(RunConfigSchema)).shape ?? {});
