// The entry of the single-file `olmo` binary (`bun run compile` → dist/olmo). src/cli/compile.ts
// generates a small entry module that imports the native libraries and the tokenized Brown corpus
// `with { type: "file" }` (only those that exist at compile time: without libolmo_cuda.so the
// binary reports CUDA unavailable) and hands their paths to startCompiled(). We register them,
// then run the usual CLI. `bun run olmo` from a checkout never imports this file, so it needs
// neither library built and no generated module.
import { registerEmbeddedLibrary } from "../native/lib.ts";
import { registerEmbeddedBrownTokens } from "../data/brown/corpus.ts";
import { runCli, setVersionInfo } from "./main.ts";

export interface Embedded {
  /** paths inside the binary ($bunfs); Bun extracts a library to $TMPDIR when it is dlopened */
  native: { cpu?: string; cuda?: string };
  /** uint32 token files of the Brown corpus, cl100k_base + EOS per document */
  brownTokens: string[];
  builtAt: string;
  describe: string;
}

export async function startCompiled(embedded: Embedded): Promise<void> {
  for (const kind of ["cpu", "cuda"] as const) {
    const path = embedded.native[kind];
    if (path) registerEmbeddedLibrary(kind, path);
  }
  if (embedded.brownTokens.length > 0) registerEmbeddedBrownTokens(embedded.brownTokens);
  setVersionInfo(`compiled ${embedded.builtAt}; embeds ${embedded.describe}`);
  await runCli(process.argv.slice(2));
}
