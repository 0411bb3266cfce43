// Float64 reference implementations of every kernel in cuda/include/olmo.h, written straight from
// the math in its comments (no tricks, no fusion), for the op suite and anyone else who needs an
// oracle. Inputs are any array of numbers; outputs are Float64Array. Shapes as in olmo.h.
type Arr = ArrayLike<number>;
const f64 = (n: number) => new Float64Array(n);

/** C[M,N] = op(A) @ op(B) + beta * C0 ; A stored [Kd,M] if tA, B stored [N,Kd] if tB */
export function matmul(A: Arr, B: Arr, M: number, N: number, Kd: number, tA: boolean, tB: boolean,
  beta = 0, C0?: Arr): Float64Array {
  const C = f64(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < Kd; k++) s += (tA ? A[k * M + i] : A[i * Kd + k]) * (tB ? B[j * Kd + k] : B[k * N + j]);
      C[i * N + j] = s + (beta !== 0 && C0 ? beta * C0[i * N + j] : 0);
    }
  }
  return C;
}

export function embeddingForward(tokens: Arr, wte: Arr, N: number, C: number): Float64Array {
  const out = f64(N * C);
  for (let i = 0; i < N; i++) for (let c = 0; c < C; c++) out[i * C + c] = wte[tokens[i] * C + c];
  return out;
}

/** dwte0 + scatter-add of dout rows into their token's row */
export function embeddingBackward(dwte0: Arr, dout: Arr, tokens: Arr, N: number, C: number): Float64Array {
  const dw = Float64Array.from(dwte0);
  for (let i = 0; i < N; i++) for (let c = 0; c < C; c++) dw[tokens[i] * C + c] += dout[i * C + c];
  return dw;
}

export function rmsnormForward(x: Arr, w: Arr, N: number, C: number, eps: number) {
  const out = f64(N * C);
  const rstd = f64(N);
  for (let i = 0; i < N; i++) {
    let ss = 0;
    for (let j = 0; j < C; j++) ss += x[i * C + j] ** 2;
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[i] = r;
    for (let j = 0; j < C; j++) out[i * C + j] = w[j] * x[i * C + j] * r;
  }
  return { out, rstd };
}

/** dx and dw0 + dw, with rstd recomputed in float64 */
export function rmsnormBackward(dout: Arr, x: Arr, w: Arr, N: number, C: number, eps: number, dw0: Arr) {
  const { rstd } = rmsnormForward(x, w, N, C, eps);
  const dx = f64(N * C);
  const dw = Float64Array.from(dw0);
  for (let i = 0; i < N; i++) {
    const r = rstd[i];
    let dot = 0;
    for (let j = 0; j < C; j++) dot += w[j] * dout[i * C + j] * x[i * C + j] * r;
    for (let j = 0; j < C; j++) {
      const xhat = x[i * C + j] * r;
      dx[i * C + j] = r * (w[j] * dout[i * C + j] - xhat * (dot / C));
      dw[j] += dout[i * C + j] * xhat;
    }
  }
  return { dx, dw };
}

/** NeoX rotate-half on [B,T,Hx,D]; sign = -1 gives the backward (transpose rotation) */
export function rope(x: Arr, cos: Arr, sin: Arr, B: number, T: number, Hx: number, D: number, sign = 1): Float64Array {
  const half = D / 2;
  const out = f64(B * T * Hx * D);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let h = 0; h < Hx; h++) {
    const o = ((b * T + t) * Hx + h) * D;
    for (let j = 0; j < half; j++) {
      const c = cos[t * half + j], s = sign * sin[t * half + j];
      out[o + j] = x[o + j] * c - x[o + j + half] * s;
      out[o + j + half] = x[o + j + half] * c + x[o + j] * s;
    }
  }
  return out;
}

/** Causal GQA attention forward: out [B,T,H,D], lse [B,H,T] */
export function attentionForward(q: Arr, k: Arr, v: Arr, B: number, T: number, H: number, K: number, D: number) {
  const out = f64(B * T * H * D);
  const lse = f64(B * H * T);
  const scale = 1 / Math.sqrt(D);
  const s = f64(T);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    const kh = Math.floor(h / (H / K));
    for (let t = 0; t < T; t++) {
      const qo = ((b * T + t) * H + h) * D;
      let mx = -Infinity;
      for (let u = 0; u <= t; u++) {
        const ko = ((b * T + u) * K + kh) * D;
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[qo + d] * k[ko + d];
        s[u] = dot * scale;
        mx = Math.max(mx, s[u]);
      }
      let sum = 0;
      for (let u = 0; u <= t; u++) sum += Math.exp(s[u] - mx);
      const l = mx + Math.log(sum);
      lse[(b * H + h) * T + t] = l;
      for (let u = 0; u <= t; u++) {
        const p = Math.exp(s[u] - l);
        const vo = ((b * T + u) * K + kh) * D;
        for (let d = 0; d < D; d++) out[qo + d] += p * v[vo + d];
      }
    }
  }
  return { out, lse };
}

/** Gradients of sum(dout * attentionForward(q,k,v).out) w.r.t. q, k, v */
export function attentionBackward(dout: Arr, q: Arr, k: Arr, v: Arr, B: number, T: number, H: number, K: number, D: number) {
  const { out, lse } = attentionForward(q, k, v, B, T, H, K, D);
  const dq = f64(q.length), dk = f64(k.length), dv = f64(v.length);
  const scale = 1 / Math.sqrt(D);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    const kh = Math.floor(h / (H / K));
    for (let t = 0; t < T; t++) {
      const qo = ((b * T + t) * H + h) * D;
      let delta = 0;
      for (let d = 0; d < D; d++) delta += dout[qo + d] * out[qo + d];
      for (let u = 0; u <= t; u++) {
        const ko = ((b * T + u) * K + kh) * D;
        let dot = 0, dp = 0;
        for (let d = 0; d < D; d++) { dot += q[qo + d] * k[ko + d]; dp += dout[qo + d] * v[ko + d]; }
        const p = Math.exp(dot * scale - lse[(b * H + h) * T + t]);
        const ds = p * (dp - delta);
        for (let d = 0; d < D; d++) {
          dq[qo + d] += scale * ds * k[ko + d];
          dk[ko + d] += scale * ds * q[qo + d];
          dv[ko + d] += p * dout[qo + d];
        }
      }
    }
  }
  return { dq, dk, dv };
}

const sigmoid = (g: number) => 1 / (1 + Math.exp(-g));

/** gu [N, 2F] = [gate | up] -> silu(gate) * up */
export function swigluForward(gu: Arr, N: number, F: number): Float64Array {
  const out = f64(N * F);
  for (let i = 0; i < N; i++) for (let j = 0; j < F; j++) {
    const g = gu[i * 2 * F + j], u = gu[i * 2 * F + F + j];
    out[i * F + j] = g * sigmoid(g) * u;
  }
  return out;
}

export function swigluBackward(dout: Arr, gu: Arr, N: number, F: number): Float64Array {
  const dgu = f64(N * 2 * F);
  for (let i = 0; i < N; i++) for (let j = 0; j < F; j++) {
    const g = gu[i * 2 * F + j], u = gu[i * 2 * F + F + j], d = dout[i * F + j], s = sigmoid(g);
    dgu[i * 2 * F + j] = d * u * s * (1 + g * (1 - s));
    dgu[i * 2 * F + F + j] = d * g * s;
  }
  return dgu;
}

/**
 * Cross-entropy + z-loss per row; grad = d/dlogits of gradScale * sum_i (ce_i + z * lse_i^2)
 * (targets < 0 ignored: ce = lse = 0, zero gradient).
 */
export function crossEntropy(logits: Arr, targets: Arr, N: number, V: number, z: number, gradScale: number) {
  const ce = f64(N), lse = f64(N), grad = f64(N * V);
  for (let i = 0; i < N; i++) {
    const t = targets[i];
    if (t < 0) continue;
    let mx = -Infinity;
    for (let j = 0; j < V; j++) mx = Math.max(mx, logits[i * V + j]);
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp(logits[i * V + j] - mx);
    const l = mx + Math.log(sum);
    lse[i] = l;
    ce[i] = l - logits[i * V + t];
    for (let j = 0; j < V; j++) {
      const p = Math.exp(logits[i * V + j] - l);
      grad[i * V + j] = gradScale * (p * (1 + 2 * z * l) - (j === t ? 1 : 0));
    }
  }
  return { ce, lse, grad };
}

export function normSquared(x: Arr): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

export interface AdamHp { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; bc1: number; bc2: number; gradScale: number }

/** One decoupled-weight-decay AdamW step, in the order of olmo.h */
export function adamw(p0: Arr, grad: Arr, m0: Arr, v0: Arr, hp: AdamHp) {
  const n = p0.length;
  const p = f64(n), m = f64(n), v = f64(n);
  for (let i = 0; i < n; i++) {
    const g = grad[i] * hp.gradScale;
    m[i] = hp.beta1 * m0[i] + (1 - hp.beta1) * g;
    v[i] = hp.beta2 * v0[i] + (1 - hp.beta2) * g * g;
    p[i] = p0[i] * (1 - hp.lr * hp.weightDecay) - (hp.lr / hp.bc1) * m[i] / (Math.sqrt(v[i]) / Math.sqrt(hp.bc2) + hp.eps);
  }
  return { p, m, v };
}

/** RoPE tables [T, D/2] in float64 (theta^(-2j/D) * t); callers round to f32 for the kernels */
export function ropeTables(T: number, D: number, theta = 500000) {
  const half = D / 2;
  const cos = f64(T * half), sin = f64(T * half);
  for (let t = 0; t < T; t++) for (let j = 0; j < half; j++) {
    const a = t * Math.pow(theta, (-2 * j) / D);
    cos[t * half + j] = Math.cos(a);
    sin[t * half + j] = Math.sin(a);
  }
  return { cos, sin };
}

/** sum_i a_i b_i (a scalar "loss" <w, f(x)> for gradient checks) */
export function dot(a: Arr, b: Arr): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
