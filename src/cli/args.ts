// Minimal, strict option parsing shared by every subcommand: known options only, typed values,
// defaults shown in --help. Unknown options are errors, never ignored.
import { UserError } from "../errors.ts";
import { TOP_LEVEL_FIELDS } from "./config-help.ts";

export interface OptionSpec {
  /** long name without dashes, e.g. "seq-len" */
  name: string;
  type: "string" | "number" | "boolean" | "list";
  help: string;
  default?: string | number | boolean;
  /** value placeholder in --help */
  metavar?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** e.g. "olmo eval --from-hf DIR --data FILE --seq-len T [--grad]" */
  usage: string;
  options: OptionSpec[];
  /** allow free-form --a.b=value overrides (train); top-level fields too (--backend=cuda) */
  overrides?: boolean;
  /** more --help lines after the options (train: every config field with its default) */
  helpExtra?: () => string[];
  run(args: ParsedArgs): Promise<number | void>;
}

export interface ParsedArgs {
  positional: string[];
  opts: Record<string, string | number | boolean | string[] | undefined>;
  /** --a.b=value overrides in order (only for commands that accept them) */
  overrides: [string, string][];
}

export function parseArgs(spec: CommandSpec, argv: string[]): ParsedArgs {
  const byName = new Map(spec.options.map((o) => [o.name, o]));
  const opts: ParsedArgs["opts"] = {};
  for (const o of spec.options) if (o.default !== undefined) opts[o.name] = o.default;
  const positional: string[] = [];
  const overrides: [string, string][] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith("--") || a === "-") {
      if (a.startsWith("-") && a.length > 1 && !/^-\d/.test(a)) throw new UserError(`${spec.name}: unknown option ${a} (see olmo ${spec.name} --help)`);
      positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const key = a.slice(2, eq < 0 ? undefined : eq);
    let value: string | undefined = eq < 0 ? undefined : a.slice(eq + 1);
    const o = byName.get(key);
    if (!o) {
      if (spec.overrides && (key.includes(".") || TOP_LEVEL_FIELDS.includes(key))) {
        if (value === undefined) {
          value = argv[++i];
          if (value === undefined) throw new UserError(`${spec.name}: override --${key} needs a value (--${key}=VALUE)`);
        }
        overrides.push([key, value]);
        continue;
      }
      throw new UserError(`${spec.name}: unknown option --${key} (see olmo ${spec.name} --help)`);
    }
    if (o.type === "boolean") {
      if (value === undefined) opts[o.name] = true;
      else if (value === "true" || value === "false") opts[o.name] = value === "true";
      else throw new UserError(`${spec.name}: --${key} takes true or false, got "${value}"`);
      continue;
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new UserError(`${spec.name}: --${key} needs a value`);
    }
    if (o.type === "number") {
      const n = Number(value);
      if (value.trim() === "" || !Number.isFinite(n)) throw new UserError(`${spec.name}: --${key} must be a number, got "${value}"`);
      opts[o.name] = n;
    } else if (o.type === "list") {
      opts[o.name] = value.split(",").filter((s) => s.length > 0);
    } else {
      opts[o.name] = value;
    }
  }
  return { positional, opts, overrides };
}

export function formatHelp(spec: CommandSpec): string {
  const lines = [`usage: ${spec.usage}`, "", spec.summary, ""];
  if (spec.options.length) {
    lines.push("options:");
    for (const o of spec.options) {
      const flag = o.type === "boolean" ? `--${o.name}` : `--${o.name} ${o.metavar ?? o.type.toUpperCase()}`;
      const def = o.default !== undefined ? ` (default: ${o.default})` : "";
      lines.push(`  ${flag.padEnd(28)} ${o.help}${def}`);
    }
  }
  if (spec.overrides) lines.push("  --a.b=VALUE                  override any config field (validated by the config schema)");
  if (spec.helpExtra) lines.push("", ...spec.helpExtra());
  return lines.join("\n");
}

/** Required option accessor with a clear error. */
export function req<T extends string | number>(args: ParsedArgs, name: string, cmd: string): T {
  const v = args.opts[name];
  if (v === undefined) throw new UserError(`${cmd}: missing required option --${name}`);
  return v as T;
}

/** bf16|fp32 (also bfloat16|float32|f32) -> our dtype name. */
export function parseDtype(v: string, cmd: string): "bf16" | "f32" {
  if (v === "bf16" || v === "bfloat16") return "bf16";
  if (v === "fp32" || v === "f32" || v === "float32") return "f32";
  throw new UserError(`${cmd}: --dtype must be bf16 or fp32, got "${v}"`);
}
