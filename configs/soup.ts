// The final OLMo-2 32B model: a uniform average ("soup") of the three stage-2 ingredients' final
// checkpoints (the release's `main` revision, "Final Souped Model … weights averaged in Python",
// labelled step 11921: allenai/OLMo-core @ fa6c5014 src/scripts/official/OLMo2/README.md and
// OLMo-2-0325-32B-stage2.csv). Which ingredients and weights is not published; uniform over the three.
//   bun run olmo plan configs/soup.ts   # what it averages, and whether the inputs exist yet
//   bun configs/soup.ts                 # runs `olmo soup` on the three checkpoints below
//   bun run olmo soup $(bun -e 'import s from "./configs/soup.ts"; console.log(s.inputs.join(" "))') --out DIR
// The checkpoint names come from the ingredient configs, so they follow any change to budgets.
import { join } from "node:path";
import { checkpointName } from "../src/checkpoint/naming.ts";
import type { RunConfigInput } from "../src/config/schema.ts";
import { CKPT_ROOT } from "./paths.ts";
import ingredient1 from "./stage2-ingredient1.ts";
import ingredient2 from "./stage2-ingredient2.ts";
import ingredient3 from "./stage2-ingredient3.ts";

/** What `olmo soup` needs: inputs, optional weights (default uniform), output folder and format. */
export interface SoupConfig {
  name: string;
  inputs: string[];
  /** one per input, normalized to sum 1; omitted = uniform, as OLMo-2's soup */
  weights?: number[];
  out: string;
  format: "hf" | "native";
  dtype: "bf16" | "fp32";
}

function finalCheckpoint(c: RunConfigInput): string {
  const batch = c.train.globalBatchInstances * c.train.seqLen;
  const steps = c.train.steps ?? Math.ceil(c.train.budgetTokens! / batch);
  return join(c.runDir!, checkpointName({ stage: c.stage ?? 1, ingredient: c.ingredient, step: steps, globalBatchTokens: batch }));
}

const soupConfig: SoupConfig = {
  name: "stage2-soup",
  inputs: [ingredient1, ingredient2, ingredient3].map(finalCheckpoint),
  out: join(CKPT_ROOT, "stage2-soup"),
  format: "hf",
  dtype: "bf16",
};
export default soupConfig;

if (import.meta.main) {
  // the CLI's own soup command: same streaming fp32 average, same errors (exit 2 on a user mistake)
  const { main } = await import("../src/cli/main.ts");
  const { UserError } = await import("../src/errors.ts");
  const s = soupConfig;
  const args = ["soup", ...s.inputs, "--out", s.out, "--format", s.format, "--dtype", s.dtype];
  if (s.weights) args.push("--weights", s.weights.join(","));
  try {
    process.exitCode = await main(args);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    console.error(`olmo: error: ${e.message}`);
    process.exit(2);
  }
}
