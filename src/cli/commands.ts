// The command table. Each command lives in its own file under ./commands/.
import type { CommandSpec } from "./args.ts";
import { ckptCommand } from "./commands/ckpt.ts";
import { dataInspectCommand, dataOrderCommand } from "./commands/data.ts";
import { evalCommand } from "./commands/eval.ts";
import { exportHfCommand } from "./commands/export-hf.ts";
import { generateCommand } from "./commands/generate.ts";
import { importHfCommand } from "./commands/import-hf.ts";
import { exportOlmoCoreCommand } from "./commands/export-olmo-core.ts";
import { importOlmoCoreCommand } from "./commands/import-olmo-core.ts";
import { launchCommand } from "./commands/launch.ts";
import { planCommand } from "./commands/plan.ts";
import { prepareCommand } from "./commands/prepare.ts";
import { reportCommand } from "./commands/report.ts";
import { rehearseCommand } from "./commands/rehearse.ts";
import { soupCommand } from "./commands/soup.ts";
import { trainCommand } from "./commands/train.ts";

export const commands: CommandSpec[] = [trainCommand, reportCommand, evalCommand, generateCommand, exportHfCommand, importHfCommand, importOlmoCoreCommand, exportOlmoCoreCommand, soupCommand, ckptCommand, planCommand, rehearseCommand, prepareCommand, dataOrderCommand, dataInspectCommand, launchCommand];
