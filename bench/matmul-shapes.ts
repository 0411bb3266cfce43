// The shapes of bench:matmul: square 4096^3 and 8192^3, and the real GEMMs of the OLMo-2 1B/7B/32B
// configs at 4 x 2048 = 8192 tokens per micro-batch (forward, dgrad, wgrad and wgrad+= of q/k/v/o,
// the fused gate+up [2F, C], down, and lm_head); on the CPU each is scaled down in all three
// dimensions by one factor until it is at most CPU_MAX_FLOP (scaleDown).
/** f32: fp32 output (weight gradients); acc: accumulated into that output (beta = 1), as training does;
 *  scale: the shape's FLOPs over the full shape's (1 unless scaled down for the CPU) */
export interface Shape { name: string; M: number; N: number; K: number; tA: boolean; tB: boolean; f32?: boolean; acc?: boolean; scale?: number }

/** the CPU's largest GEMM: 2 GFLOP (~10 ms at 200 GFLOP/s) */
export const CPU_MAX_FLOP = 2e9;

/** all three dimensions times the same factor (multiples of 64, at least 64) so that 2·M·N·K ≤ maxFlop:
 *  the shape keeps its proportions */
export function scaleDown(s: Shape, maxFlop: number): Shape {
  const full = 2 * s.M * s.N * s.K;
  if (full <= maxFlop) return { ...s, scale: 1 };
  let f = Math.cbrt(maxFlop / full);
  const dim = (x: number) => Math.max(64, Math.floor((x * f) / 64) * 64);
  while (2 * dim(s.M) * dim(s.N) * dim(s.K) > maxFlop) f *= 0.97;
  const d = { M: dim(s.M), N: dim(s.N), K: dim(s.K) };
  return { ...s, ...d, scale: (2 * d.M * d.N * d.K) / full };
}

const TOK = 8192;
const configs = [
  { tag: "1B", C: 2048, H: 16, KV: 16, D: 128, F: 8192 },
  { tag: "7B", C: 4096, H: 32, KV: 32, D: 128, F: 11008 },
  { tag: "32B", C: 5120, H: 40, KV: 8, D: 128, F: 27648 },
];
const V = 100352;

export function matmulShapes(): Shape[] {
  const s: Shape[] = [
    { name: "square 4096", M: 4096, N: 4096, K: 4096, tA: false, tB: false },
    { name: "square 8192", M: 8192, N: 8192, K: 8192, tA: false, tB: false },
  ];
  const quick = process.env.OLMO_MATMUL_QUICK === "1";
  for (const c of configs) {
    const layers: [string, number, number][] = [ // [name, out, in] of weight W[out, in]
      ["q", c.H * c.D, c.C], ["kv", c.KV * c.D, c.C], ["o", c.C, c.H * c.D],
      ["gate+up", 2 * c.F, c.C], ["down", c.C, c.F], ["lm_head", V, c.C],
    ];
    for (const [n, out, inp] of layers) {
      if (quick && c.tag !== "1B") continue;
      // forward  y[T,out] = x[T,in] @ W^T           (transB)
      s.push({ name: `${c.tag} ${n} fwd`, M: TOK, N: out, K: inp, tA: false, tB: true });
      // dgrad    dx[T,in] = dy[T,out] @ W[out,in]
      s.push({ name: `${c.tag} ${n} dgrad`, M: TOK, N: inp, K: out, tA: false, tB: false });
      // wgrad    dW[out,in] = dy^T[out,T] @ x[T,in]   (transA, fp32 output) vs torch.mm(out_dtype=f32);
      // wgrad+=  the same accumulated into the fp32 gradient (beta 1, what training runs: it reads the
      //          output too) vs torch's way to do that (addmm with out_dtype, else mm + add_)
      s.push({ name: `${c.tag} ${n} wgrad`, M: out, N: inp, K: TOK, tA: true, tB: false, f32: true });
      s.push({ name: `${c.tag} ${n} wgrad+=`, M: out, N: inp, K: TOK, tA: true, tB: false, f32: true, acc: true });
    }
  }
  return s;
}

