// The command line of a bench script: `--help` prints the spec's help, a bad option is one line
// and exit code 2 (the CLI's own parser and messages).
import { type CommandSpec, formatHelp, parseArgs } from "../src/cli/args.ts";
import { UserError } from "../src/errors.ts";

export function benchArgs(spec: CommandSpec, argv = process.argv.slice(2)): ReturnType<typeof parseArgs>["opts"] {
  if (argv.includes("--help")) {
    console.log(formatHelp(spec));
    process.exit(0);
  }
  try {
    return parseArgs(spec, argv).opts;
  } catch (e) {
    if (e instanceof UserError) {
      console.error(e.message);
      process.exit(2);
    }
    throw e;
  }
}
