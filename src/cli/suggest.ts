// "did you mean ...?": the nearest known name to a mistyped one, by edit distance (insertions,
// deletions, substitutions and swaps of two neighbouring letters each cost 1: "stpes" is one edit from
// "steps"). Used for commands, options and config field paths.

/** Optimal-string-alignment distance between a and b. */
export function editDistance(a: string, b: string): number {
  const n = a.length, m = b.length;
  // three rows suffice: the current, the previous and the one before it (for swaps)
  let prev2 = new Array<number>(m + 1).fill(0);
  let prev = Array.from({ length: m + 1 }, (_, j) => j);
  for (let i = 1; i <= n; i++) {
    const cur = new Array<number>(m + 1);
    cur[0] = i;
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) cur[j] = Math.min(cur[j], prev2[j - 2] + 1);
    }
    [prev2, prev] = [prev, cur];
  }
  return prev[m];
}

/** snake_case or kebab-case → camelCase, per dotted segment ("train.global_batch_instances" → "train.globalBatchInstances"). */
export function camelCased(path: string): string {
  return path.split(".").map((s) => s.replace(/[_-]+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase())).join(".");
}

/**
 * The candidate nearest to `word`, if it is near enough to be what was meant: at most a third of
 * the word's letters edited (at least one), compared case-insensitively; ties go to the first
 * candidate. `key` picks what of a candidate is compared (default: all of it).
 */
export function nearest(word: string, candidates: readonly string[], key: (c: string) => string = (c) => c): string | null {
  const w = word.toLowerCase();
  let best: string | null = null, bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, key(c).toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best !== null && bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : null;
}

/** "; did you mean X?" or "" */
export function didYouMean(suggestion: string | null): string {
  return suggestion ? `; did you mean ${suggestion}?` : "";
}
