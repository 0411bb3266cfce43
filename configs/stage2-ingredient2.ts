// OLMo-2 32B stage 2, ingredient 2: 100B tokens of dolmino100, data-order seed 2662 (allenai/OLMo-core @ fa6c5014
// src/scripts/official/OLMo2/README.md: "random seed 2662, 100B tokens"; the seed is the data loader's).
//   bun run olmo plan configs/stage2-ingredient2.ts
//   bun run train configs/stage2-ingredient2.ts
import { stage2Ingredient } from "./stage2-base.ts";

export default stage2Ingredient({ ingredient: 2, budgetTokens: 100e9, seed: 2662, mix: "dolmino100" });
