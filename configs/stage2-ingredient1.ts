// OLMo-2 32B stage 2, ingredient 1: 100B tokens of dolmino100, data-order seed 1110 (allenai/OLMo-core @ fa6c5014
// src/scripts/official/OLMo2/README.md: "random seed 1110, 100B tokens"; the seed is the data loader's).
//   bun run olmo plan configs/stage2-ingredient1.ts
//   bun run train configs/stage2-ingredient1.ts
import { stage2Ingredient } from "./stage2-base.ts";

export default stage2Ingredient({ ingredient: 1, budgetTokens: 100e9, seed: 1110, mix: "dolmino100" });
