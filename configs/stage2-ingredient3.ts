// OLMo-2 32B stage 2, ingredient 3: 300B tokens of dolmino300, data-order seed 2662 (olmo2-spec.md §2.2, §4.4).
//   bun run olmo plan configs/stage2-ingredient3.ts
//   bun run train configs/stage2-ingredient3.ts
import { stage2Ingredient } from "./stage2-base.ts";

export default stage2Ingredient({ ingredient: 3, budgetTokens: 300e9, seed: 2662, mix: "dolmino300" });
