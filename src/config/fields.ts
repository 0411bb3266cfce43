// The run config's fields as the zod schema defines them: every field path (`train.steps`,
// `optim.schedule.kind`), its type, and which paths are sections. Read off the schema itself, so a
// new field is known to `olmo train --help`, to --a.b=value overrides and to their suggestions
// without anyone editing a list.
import { RunConfigSchema } from "./schema.ts";

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

export interface ConfigField {
  /** dotted path, e.g. "optim.schedule.kind" */
  path: string;
  /** for --help: number, boolean, string, cosine|linear|constant, JSON array, ... */
  type: string;
}

function walk(schema: unknown, path: string[], out: ConfigField[], sections: string[]): void {
  const s = unwrap(schema);
  const d = def(s);
  if (d.type === "object" && d.shape) {
    if (path.length) sections.push(path.join("."));
    for (const [k, v] of Object.entries(d.shape)) walk(v, [...path, k], out, sections);
    return;
  }
  if (d.type === "union" && d.options?.every((o) => def(unwrap(o)).type === "object")) {
    // a discriminated union (optim.schedule): the fields of every variant, once each
    sections.push(path.join("."));
    const seen = new Map<string, unknown>();
    for (const o of d.options) for (const [k, v] of Object.entries(def(unwrap(o)).shape ?? {})) if (!seen.has(k)) seen.set(k, v);
    const kinds = d.options.map((o) => typeName((def(unwrap(o)).shape ?? {}).kind)).join("|");
    for (const [k, v] of seen) out.push({ path: [...path, k].join("."), type: k === "kind" ? kinds : typeName(v) });
    return;
  }
  out.push({ path: path.join("."), type: typeName(s) });
}

const fields: ConfigField[] = [];
const sectionPaths: string[] = [];
walk(RunConfigSchema, [], fields, sectionPaths);

/** Every settable field of a run config, in the schema's order. */
export const CONFIG_FIELDS: readonly ConfigField[] = fields;

/** Paths that are sections (objects): an override may set a whole one as JSON (`--optim.schedule={...}`). */
export const CONFIG_SECTIONS: readonly string[] = sectionPaths;

/** Top-level config fields, which --name=value may override without a dot (--backend=cuda). */
export const TOP_LEVEL_FIELDS: readonly string[] = Object.keys(def(unwrap(RunConfigSchema)).shape ?? {});

/** The field at `path`, or undefined. */
export function configField(path: string): ConfigField | undefined {
  return fields.find((f) => f.path === path);
}
