#!/usr/bin/env bun
// `olmo <command> ...`: dispatch to one of the commands in ./commands/. Thin by design.
import { UserError, oneLine } from "../errors.ts";
import { type CommandSpec, formatHelp, parseArgs } from "./args.ts";
import { commands } from "./commands.ts";
import { didYouMean, nearest } from "./suggest.ts";
import { watchLauncher } from "../parallel/launch/launcher-watch.ts";
import pkg from "../../package.json" with { type: "json" };

let versionInfo = "from source";
/** The compiled binary says when it was built and what it embeds. */
export function setVersionInfo(info: string): void {
  versionInfo = info;
}

function topHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "olmo — a Bun-native OLMo-2 trainer",
    "",
    "usage: olmo <command> [options]      (olmo <command> --help for its options)",
    "",
    "commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "options:",
    "  --help, -h     this list; olmo <command> --help lists that command's options with their defaults",
    "  --version, -V  version, and what a compiled binary embeds",
    "",
    "environment:",
    "  OLMO_BACKEND=cpu|cuda|auto  backend (default auto: CUDA when a GPU is usable)",
    "  OLMO_THREADS=N              CPU threads (default: all cores)",
    "                              (command line --backend/--threads > environment > config > default)",
    "  OLMO_CACHE=DIR              where the embedded corpus is tokenized/unpacked (default $XDG_CACHE_HOME/olmo-bun, else ~/.cache/olmo-bun)",
    "  OLMO_NATIVE_DIR=DIR         load libolmo_cpu.so / libolmo_cuda.so from DIR first",
    "  OLMO_CUDA_LIB_PATH=DIR      where to look first for libcublasLt.so.* and libnccl.so.2",
    "",
    "a user mistake is one line on stderr and exit code 2 (docs/bad-input.md)",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--version" || name === "-V" || name === "version") {
    console.log(`olmo ${pkg.version} (bun ${Bun.version}; ${versionInfo})`);
    return 0;
  }
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(topHelp());
    return name ? 0 : 2;
  }
  // "olmo data order ..." style: a command name may have two words.
  let spec: CommandSpec | undefined = commands.find((c) => c.name === `${name} ${rest[0]}`);
  let args = rest;
  if (spec) args = rest.slice(1);
  else spec = commands.find((c) => c.name === name);
  if (!spec) throw unknownCommand(name, rest[0]);
  // only options before "--" belong to this command (olmo launch ... -- train --help)
  const own = args.includes("--") ? args.slice(0, args.indexOf("--")) : args;
  if (own.includes("--help") || own.includes("-h")) {
    // train CONFIG --help: the fields with CONFIG's values (and the command line's overrides)
    const extra = await spec.helpExtra?.(own.filter((a) => a !== "--help" && a !== "-h"));
    console.log(formatHelp(spec, extra));
    return 0;
  }
  const code = await spec.run(parseArgs(spec, args));
  return typeof code === "number" ? code : 0;
}

/** An unknown command, with the nearest one (two-word commands by their first word too). */
function unknownCommand(name: string, next: string | undefined): UserError {
  const names = commands.map((c) => c.name);
  const group = names.filter((n) => n.startsWith(`${name} `));
  if (group.length) {
    const given = next === undefined || next.startsWith("-") ? name : `${name} ${next}`;
    return new UserError(`${given === name ? `"${name}" needs one of its subcommands` : `unknown command "${given}"`}${didYouMean(nearest(given, group))} (${group.join(", ")})`);
  }
  const guess = nearest(name, names) ?? nearest(name, names, (n) => n.split(" ")[0]);
  return new UserError(`unknown command "${name}"${didYouMean(guess)} (commands: ${names.join(", ")})`);
}

const ENVIRONMENT_ERRNOS = new Set(["ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "ENOTDIR", "EISDIR", "EMFILE", "ENFILE", "ENAMETOOLONG", "ELOOP"]);

/** Run the CLI: a user mistake or a refused write is one stderr line and exit code 2; a bug keeps its stack. */
export async function runCli(argv: string[]): Promise<void> {
  await watchLauncher(); // a rank started by `olmo launch` dies with its launcher
  try {
    process.exitCode = await main(argv);
  } catch (e) {
    if (e instanceof UserError || (e instanceof Error && (e.name === "NativeLoadError" || e.name === "BackendChoiceError"))) {
      console.error(`olmo: error: ${oneLine(e.message)}`);
      process.exit(2);
    }
    // The machine refusing a write (disk full, read-only, a file where a folder should be) is the
    // user's to fix, not a bug: one line naming the path.
    const sys = e as { code?: unknown; path?: unknown; message?: unknown };
    if (typeof sys.code === "string" && ENVIRONMENT_ERRNOS.has(sys.code)) {
      const msg = String(sys.message);
      console.error(`olmo: error: ${oneLine(`${msg}${typeof sys.path === "string" && !msg.includes(sys.path) ? ` (${JSON.stringify(sys.path)})` : ""}`)}`);
      process.exit(2);
    }
    throw e;
  }
}

if (import.meta.main) await runCli(process.argv.slice(2));
