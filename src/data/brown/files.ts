// The embedded Brown corpus as token files: tokenized once (cl100k_base, EOS after each document)
// into a cache through the same path as `olmo prepare` (or unpacked from a compiled binary), and
// split by document into training and held-out parts (split.ts).
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../output-dir.ts";
import { DOLMA2_EOS_ID, prepareDocuments } from "../index.ts";
import { cacheDir as defaultCacheDir } from "../cache-dir.ts";
import { brownDocuments, embeddedBrownTokens } from "./corpus.ts";
import { type CorpusSplit, splitByDocument } from "./split.ts";

/** Tokenize the Brown corpus once (cl100k_base, EOS after each document) into uint32 token files. */
export async function brownTokenFiles(cacheDir: string, log: (l: string) => void): Promise<string[]> {
  const dir = join(cacheDir, "brown-cl100k");
  const parts = () => (existsSync(dir) ? readdirSync(dir).filter((f) => /^part-\d+\.npy$/.test(f)).sort().map((f) => join(dir, f)) : []);
  if (parts().length > 0) return parts();
  const embedded = embeddedBrownTokens();
  if (embedded) {
    // a compiled binary: copy the embedded token files out (they must be real files to be mmapped)
    mkdirSync(dir, { recursive: true });
    for (const [i, src] of embedded.entries()) {
      const dst = join(dir, `part-${String(i).padStart(5, "0")}.npy`);
      writeFileAtomic(dst, readFileSync(src), "embedded corpus");
    }
    log(`unpacked the embedded corpus (Brown, cl100k_base) → ${dir}`);
    return parts();
  }
  const res = await prepareDocuments(brownDocuments(), dir, {});
  log(`prepared the embedded corpus: ${res.documents} Brown documents, ${res.tokens} tokens (cl100k_base) → ${dir}`);
  return res.files.map((f) => f.path);
}

/** The embedded corpus split by document (split.ts): `data.embedded` trains on
 *  `train`, the eval set `embedded: "brown-heldout"` is `heldout`. */
export async function embeddedBrownSplit(cacheDir: string | undefined, log: (l: string) => void): Promise<CorpusSplit> {
  const dir = cacheDir ?? defaultCacheDir();
  return splitByDocument(await brownTokenFiles(dir, log), join(dir, "brown-cl100k-split"), DOLMA2_EOS_ID);
}
