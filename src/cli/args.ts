// Minimal, strict option parsing shared by every subcommand: known options only, typed values,
// defaults shown in --help. Unknown options are errors, never ignored.
import { UserError } from "../errors.ts";
import { bareOverrideValue, checkOverrideKey, looksLikeOverride, nearestConfigPath } from "./overrides.ts";
import { didYouMean, nearest } from "./suggest.ts";

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
  /** more --help lines after the options, given the command's other arguments (train CONFIG: every config field with CONFIG's value) */
  helpExtra?: (argv: string[]) => string[] | Promise<string[]>;
  /** the command takes another command after `--` (launch): a bare word before `--` is refused with the right form */
  commandAfterDashDash?: boolean;
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
      if (a.startsWith("-") && a.length > 1 && !/^-\d/.test(a)) throw unknownOption(spec, a.replace(/^-+/, ""), a);
      if (spec.commandAfterDashDash) {
        // without `--`, the rest would be read as this command's options (or ignored) and the ranks run defaults
        const right = ["olmo", spec.name, ...argv.slice(0, i), "--", ...argv.slice(i)].join(" ");
        throw new UserError(`${spec.name}: the command to run goes after --: ${right}`);
      }
      positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const key = a.slice(2, eq < 0 ? undefined : eq);
    let value: string | undefined = eq < 0 ? undefined : a.slice(eq + 1);
    const o = byName.get(key);
    if (!o) {
      if (spec.overrides && looksLikeOverride(key)) {
        checkOverrideKey(spec.name, key);
        if (value === undefined) {
          const [v, used] = bareOverrideValue(spec.name, key, argv[i + 1]);
          value = v;
          i += used;
        }
        overrides.push([key, value]);
        continue;
      }
      throw unknownOption(spec, key);
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

/** An option this command does not have, with the nearest one it has (or the config field meant). */
function unknownOption(spec: CommandSpec, key: string, given = `--${key}`): UserError {
  const name = key.split("=")[0];
  const option = nearest(name, spec.options.map((o) => o.name));
  // `--steps=5` for `--train.steps=5`: a config field by its last name
  const field = !option && spec.overrides ? nearestConfigPath(name) : null;
  const guess = option ? `--${option}` : field && `--${field}`;
  return new UserError(`${spec.name}: unknown option ${given}${didYouMean(guess)} (see olmo ${spec.name} --help)`);
}

export function formatHelp(spec: CommandSpec, extra?: string[]): string {
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
  if (extra?.length) lines.push("", ...extra);
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
