// OLMo mix files: one `label,relative/path` per line (OLMo-core data/mixes/*.txt), where the path
// may contain `{TOKENIZER}` (→ "allenai/dolma2-tokenizer" for OLMo-2) and is joined to a base
// directory (mix_base_dir). Blank lines and `#` comments (dolmino lists carry `#SOURCE` headers) are
// skipped. Upsampling in OLMo's lists is done by listing a file twice, so duplicates are kept.
import { isAbsolute, join } from "node:path";
import { UserError } from "../errors.ts";
import { readInputText } from "../input.ts";

export const DOLMA2_TOKENIZER = "allenai/dolma2-tokenizer";

export interface MixEntry {
  label: string;
  path: string;
  /** 1-based line in the mix file, for error messages */
  line: number;
}

export function parseMix(text: string, opts: { baseDir: string; tokenizer?: string; source?: string }): MixEntry[] {
  const tokenizer = opts.tokenizer ?? DOLMA2_TOKENIZER;
  const source = opts.source ?? "mix";
  const out: MixEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    const comma = line.indexOf(",");
    // A bare path (no label) is accepted too: OLMo's anneal lists are plain paths.
    const label = comma < 0 ? "" : line.slice(0, comma).trim();
    const rel = (comma < 0 ? line : line.slice(comma + 1)).trim().replaceAll("{TOKENIZER}", tokenizer);
    if (rel === "") throw new UserError(`${source}:${i + 1}: no path after the label (expected "label,relative/path")`);
    out.push({ label, path: isAbsolute(rel) || /^[a-z0-9]+:\/\//i.test(rel) ? rel : join(opts.baseDir, rel), line: i + 1 });
  }
  if (out.length === 0) throw new UserError(`${source}: the mix lists no files (expected "label,relative/path" lines)`);
  for (const e of out) {
    if (/^[a-z0-9]+:\/\//i.test(e.path)) {
      throw new UserError(`${source}:${e.line}: ${e.path} is a URL; download the files and pass --base-dir with the local copy`);
    }
  }
  return out;
}

export function readMixFile(mixFile: string, baseDir: string, tokenizer?: string): MixEntry[] {
  return parseMix(readInputText(mixFile, "mix file"), { baseDir, tokenizer, source: mixFile });
}
