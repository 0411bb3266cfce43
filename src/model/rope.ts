// RoPE tables, computed the way HF/OLMo-core do it (fp32 throughout), so our rotation matches
// theirs to the last bit of the table: inv_freq[j] = 1 / theta^(2j/D), freqs = t * inv_freq.
export function ropeTables(theta: number, D: number, T: number): { cos_TD2: Float32Array; sin_TD2: Float32Array } {
  const half = D / 2;
  const invFreq = new Float32Array(half);
  for (let j = 0; j < half; j++) invFreq[j] = 1 / Math.fround(Math.pow(theta, Math.fround((2 * j) / D)));
  const cos_TD2 = new Float32Array(T * half);
  const sin_TD2 = new Float32Array(T * half);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < half; j++) {
      const f = Math.fround(t * invFreq[j]);
      cos_TD2[t * half + j] = Math.cos(f);
      sin_TD2[t * half + j] = Math.sin(f);
    }
  }
  return { cos_TD2, sin_TD2 };
}
