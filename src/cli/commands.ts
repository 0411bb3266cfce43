// The command table. Each command lives in its own file under ./commands/.
import type { CommandSpec } from "./args.ts";
import { trainCommand } from "./commands/train.ts";

export const commands: CommandSpec[] = [trainCommand];
