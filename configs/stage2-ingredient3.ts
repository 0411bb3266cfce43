// OLMo-2 32B stage 2, ingredient 3: 300B tokens of dolmino300, data-order seed 2662 (allenai/OLMo-core @ fa6c5014
// src/scripts/official/OLMo2/README.md: "random seed 2662, 300B tokens"; the seed is the data loader's).
//   bun run olmo plan configs/stage2-ingredient3.ts
//   bun run train configs/stage2-ingredient3.ts
import { stage2Ingredient } from "./stage2-base.ts";

export default stage2Ingredient({ ingredient: 3, budgetTokens: 300e9, seed: 2662, mix: "dolmino300" });
