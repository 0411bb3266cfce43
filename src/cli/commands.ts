// The command table. Each command lives in its own file under ./commands/.
import type { CommandSpec } from "./args.ts";
import { evalCommand } from "./commands/eval.ts";
import { trainCommand } from "./commands/train.ts";

export const commands: CommandSpec[] = [trainCommand, evalCommand];
