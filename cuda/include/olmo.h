/*
 * olmo.h — THE native ABI of olmo-bun, shared by libolmo_cpu.so and libolmo_cuda.so.
 *
 * Rules (see docs/architecture.md, "The native ABI"):
 *  - extern "C", scalars and pointers only (bun:ffi cannot pass structs by value).
 *  - Every function returns an int status: 0 = OK, nonzero = error; olmo_last_error() gives the
 *    message (thread-local, valid until the next failing call). A library never calls exit().
 *  - llm.c-style launchers: outputs first, then inputs, weights, sizes.
 *  - Pointers to tensors are "device pointers": host memory for the CPU library, CUDA global
 *    memory for the CUDA library. They are always allocated with olmo_alloc.
 *  - GPU work is asynchronous on the library's stream; olmo_synchronize() waits for it.
 *
 * Dtypes. Two storage types appear below:
 *    f32  — float. Master weights, weight gradients, Adam moments, per-row statistics, losses.
 *    act  — the library's activation/compute dtype, reported by olmo_act_dtype():
 *           OLMO_DTYPE_F32 on the CPU library, OLMO_DTYPE_BF16 on the CUDA library.
 *           Activations, their gradients, logits, and the compute copy of the weights.
 *  All reductions, norms, RoPE, softmax statistics and the loss are computed in fp32 internally.
 *
 * Layouts are row-major. Shape letters: N = tokens (B*T), C = model width, F = MLP hidden,
 * V = (padded) vocabulary, H = query heads, K = kv heads (H % K == 0), D = head dim.
 * Attention tensors are [B, T, heads, D] (i.e. the natural output of x @ W^T).
 *
 * defines:
 *   lifecycle:   olmo_abi_version olmo_last_error olmo_init olmo_device_count olmo_device_name
 *                olmo_device_memory olmo_host_register olmo_host_unregister
 *                olmo_act_dtype olmo_set_num_threads olmo_synchronize
 *   memory:      olmo_alloc olmo_free olmo_memcpy_h2d olmo_memcpy_d2h olmo_memcpy_d2d
 *                olmo_memset olmo_fill_f32 olmo_cast_f32_to_act olmo_cast_act_to_f32
 *   elementwise: olmo_add olmo_scale_f32
 *   kernels:     embedding, rmsnorm, rope, attention (+ KV-cache decode), swiglu, matmul, cross-entropy (fwd/bwd)
 *   optimizer:   olmo_norm_squared olmo_adamw
 *   timing:      olmo_event_create olmo_event_destroy olmo_event_record olmo_event_elapsed_ms
 *   collectives: olmo_comm_* (NCCL in the CUDA library; the CPU library reports "unsupported"
 *                because CPU collectives live in TypeScript over shared memory)
 *   stop signals: olmo_stop_signals_install olmo_stop_signals_release
 */
#ifndef OLMO_H
#define OLMO_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OLMO_ABI_VERSION 4

#define OLMO_DTYPE_F32 0
#define OLMO_DTYPE_BF16 1

/* ---------------------------------------------------------------- stop signals
 * SIGINT, SIGTERM and SIGUSR1 during a run (olmo_stop_signals.h has the one implementation; both
 * libraries include it). The first is recorded in the caller's host int32 array — state[0] = 1,
 * state[1] = its number — for the caller to poll between steps (it then stops after the step with
 * a checkpoint) and first_msg, when not empty, goes to stderr; a repeat within echo_ms of the
 * first is the same event seen twice (state[2] counts those) and ignored; a later one writes
 * second_msg (when not empty) and ends the process at once with that signal's default action —
 * the one place a library ends its process, because the user asked for exactly that and a
 * JavaScript handler cannot run during a step, an evaluation, a save or a blocked wait. `state`
 * must stay valid (and unmoved: >= 1 KiB) until olmo_stop_signals_release, which restores the
 * actions found at install. */
int olmo_stop_signals_install(int32_t* state, int32_t echo_ms, const char* first_msg, const char* second_msg);
int olmo_stop_signals_release(void);

/* ---------------------------------------------------------------- lifecycle */
int olmo_abi_version(void);
/* Message of the last failing call on this thread ("" if none). Never NULL. */
const char* olmo_last_error(void);
/* Initialize the library for one device (CUDA: cudaSetDevice, stream, cuBLASLt via dlopen;
 * CPU: nothing beyond threads). Idempotent. */
int olmo_init(int device);
/* Number of usable devices written to *out (CPU library: 1). A CUDA machine without a driver or
 * device writes 0 and returns 0: "no GPU" is not an error here. */
int olmo_device_count(int32_t* out);
/* NUL-terminated description of the device into buf (at most len bytes). */
int olmo_device_name(char* buf, int64_t len);
/* Memory of the device: what can still be allocated and its size, in bytes (CUDA: cudaMemGetInfo;
 * CPU library: the host's available and total memory). Checked before a run allocates. */
int olmo_device_memory(int64_t* free_bytes, int64_t* total_bytes);
/* Page-lock `bytes` of host memory at ptr so device-to-host copies into it run at full speed (the
 * asynchronous checkpoint's snapshot pool; CUDA: cudaHostRegister; the CPU library: nothing to do). */
int olmo_host_register(void* ptr, int64_t bytes);
int olmo_host_unregister(void* ptr);
int olmo_act_dtype(void);
int olmo_set_num_threads(int n);
int olmo_synchronize(void);

/* ---------------------------------------------------------------- memory */
/* *out = pointer to `bytes` bytes, 256-byte aligned. Contents undefined. */
int olmo_alloc(void** out, int64_t bytes);
int olmo_free(void* ptr);
int olmo_memcpy_h2d(void* dst, const void* src_host, int64_t bytes);
int olmo_memcpy_d2h(void* dst_host, const void* src, int64_t bytes);
int olmo_memcpy_d2d(void* dst, const void* src, int64_t bytes);
int olmo_memset(void* dst, int value, int64_t bytes);
int olmo_fill_f32(float* dst, float value, int64_t n);
/* act <-> f32 (bf16: round-to-nearest-even). On the CPU library both are copies. */
int olmo_cast_f32_to_act(void* dst_act, const float* src, int64_t n);
int olmo_cast_act_to_f32(float* dst, const void* src_act, int64_t n);

/* ---------------------------------------------------------------- elementwise */
/* out = a + b (act; out may alias a or b). Residual adds. */
int olmo_add(void* out, const void* a, const void* b, int64_t n);
/* x *= s (f32) */
int olmo_scale_f32(float* x, float s, int64_t n);

/* ---------------------------------------------------------------- embedding */
/* out_NC[i,:] = wte_VC[tokens[i],:]. Token ids are checked: an id outside [0,V) is an error
 * (CPU: checked before any write; CUDA: reported at the next olmo_synchronize). */
int olmo_embedding_forward(void* out_NC, const int32_t* tokens_N, const void* wte_VC,
                           int64_t N, int64_t C, int64_t V);
/* dwte_VC[tokens[i],:] += dout_NC[i,:]  (f32 accumulate, deterministic) */
int olmo_embedding_backward(float* dwte_VC, const void* dout_NC, const int32_t* tokens_N,
                            int64_t N, int64_t C, int64_t V);

/* ---------------------------------------------------------------- RMSNorm */
/* rstd_N[i] = 1/sqrt(mean_j x[i,j]^2 + eps); out[i,j] = w[j] * (x[i,j] * rstd[i]).
 * Also the full-width QK-norm (C = H*D or K*D). out may alias x. */
int olmo_rmsnorm_forward(void* out_NC, float* rstd_N, const void* x_NC, const void* w_C,
                         int64_t N, int64_t C, float eps);
/* dx = rstd * (w*dout - xhat * mean_j(w*dout*xhat)), xhat = x*rstd;  dw_C += sum_i dout*xhat.
 * dx is written (not accumulated); dx may alias dout. */
int olmo_rmsnorm_backward(void* dx_NC, float* dw_C, const void* dout_NC, const void* x_NC,
                          const void* w_C, const float* rstd_N, int64_t N, int64_t C);

/* ---------------------------------------------------------------- RoPE (NeoX rotate-half) */
/* x is [B,T,Hx,D]; cos/sin tables are [T, D/2] fp32 (computed by the caller, in fp32 like HF).
 * out[..,j]     = x[..,j]*cos[t,j]     - x[..,j+D/2]*sin[t,j]
 * out[..,j+D/2] = x[..,j+D/2]*cos[t,j] + x[..,j]*sin[t,j]        (j < D/2; out may alias x)
 * backward: the transpose rotation (sin -> -sin); dx may alias dout. */
int olmo_rope_forward(void* out, const void* x, const float* cos_TD2, const float* sin_TD2,
                      int64_t B, int64_t T, int64_t Hx, int64_t D);
int olmo_rope_backward(void* dx, const void* dout, const float* cos_TD2, const float* sin_TD2,
                       int64_t B, int64_t T, int64_t Hx, int64_t D);

/* ---------------------------------------------------------------- causal attention, GQA */
/* q [B,T,H,D], k/v [B,T,K,D]; query head h uses kv head h / (H/K). scale = 1/sqrt(D).
 * out [B,T,H,D]; lse_BHT[b,h,t] = logsumexp_s<=t (scale * q.k)  (fp32, for the backward). */
int olmo_attention_forward(void* out, float* lse_BHT, const void* q, const void* k,
                           const void* v, int64_t B, int64_t T, int64_t H, int64_t K, int64_t D);
/* dq, dk, dv written (not accumulated); dk/dv sum over the H/K query heads of their group. */
int olmo_attention_backward(void* dq, void* dk, void* dv, const void* dout, const void* q,
                            const void* k, const void* v, const void* out, const float* lse_BHT,
                            int64_t B, int64_t T, int64_t H, int64_t K, int64_t D);

/* One decode step against a KV cache (generation). q_BHD is one query per batch row [B,H,D];
 * kcache/vcache are [B,Tmax,K,D] (act) of which positions [0,len) are attended (1 <= len <= Tmax);
 * query head h uses kv head h / (H/K); scale = 1/sqrt(D). For each (b,h):
 *   s_j = scale * q[b,h,:] . kcache[b,j,kv(h),:]   (j < len)
 *   out[b,h,:] = sum_j softmax(s)_j vcache[b,j,kv(h),:]          (fp32 math; out act [B,H,D])
 * Equal to the last row of olmo_attention_forward over the same len positions. */
int olmo_attention_decode(void* out_BHD, const void* q_BHD, const void* kcache, const void* vcache,
                          int64_t B, int64_t Tmax, int64_t len, int64_t H, int64_t K, int64_t D);

/* ---------------------------------------------------------------- SwiGLU */
/* gu_N2F holds [gate | up] per row (one GEMM against the adjacent gate_proj/up_proj weights).
 * out[i,j] = silu(gate[i,j]) * up[i,j], silu(g) = g * sigmoid(g). */
int olmo_swiglu_forward(void* out_NF, const void* gu_N2F, int64_t N, int64_t F);
int olmo_swiglu_backward(void* dgu_N2F, const void* dout_NF, const void* gu_N2F, int64_t N,
                         int64_t F);

/* ---------------------------------------------------------------- GEMM */
/* Row-major: C[M,N] = op(A) @ op(B) + beta * C, op(A) is [M,Kd] (A stored [Kd,M] if transA),
 * op(B) is [Kd,N] (B stored [N,Kd] if transB). A, B are act; accumulation in fp32.
 *   olmo_matmul       — C is act (activations, logits, input gradients)
 *   olmo_matmul_f32   — C is f32 (weight gradients, accumulated in place with beta = 1) */
int olmo_matmul(void* C, const void* A, const void* B, int64_t M, int64_t N, int64_t Kd,
                int transA, int transB, float beta);
int olmo_matmul_f32(float* C, const void* A, const void* B, int64_t M, int64_t N, int64_t Kd,
                    int transA, int transB, float beta);

/* ---------------------------------------------------------------- cross-entropy + z-loss */
/* One chunk of rows of logits [N,V] (act). For each row i with target t_i >= 0:
 *   lse_i = logsumexp(logits[i,:]), ce_N[i] = lse_i - logits[i,t_i], lse_N[i] = lse_i
 * rows with t_i < 0 (ignore, e.g. -100) get ce = 0, lse = 0 and a zero gradient.
 * The gradient of  grad_scale * (ce_i + z_mult * lse_i^2)  w.r.t. the logits is written IN
 * PLACE over the logits:  grad_scale * (softmax_i * (1 + 2 z_mult lse_i) - onehot(t_i)).
 * A target >= V is an error. Pass grad_scale = 0 to only evaluate (logits then untouched). */
int olmo_cross_entropy(void* logits_NV, float* ce_N, float* lse_N, const int32_t* targets_N,
                       int64_t N, int64_t V, float z_mult, float grad_scale);

/* ---------------------------------------------------------------- tensor parallelism */
/* Split RMSNorm: each TP rank holds C of the Cfull columns of x (and the matching w slice); the
 * per-row statistics are all-reduced (sum) over the TP group between the two halves.
 *   olmo_row_sumsq:          ss_N[i] = sum_j x[i,j]^2  (this rank's columns)
 *   olmo_rmsnorm_apply:      rstd[i] = 1/sqrt(ss[i]/Cfull + eps); out[i,j] = w[j]*(x[i,j]*rstd[i])
 *                            (ss = the all-reduced sum; out may alias x)
 *   olmo_rmsnorm_bwd_dot:    dot_N[i] = sum_j w[j]*dout[i,j]*x[i,j]*rstd[i]   (this rank's columns)
 *   olmo_rmsnorm_bwd_finish: dw_C += sum_i dout*xhat;  dx = rstd*(w*dout - xhat*dot[i]/Cfull)
 *                            (dot = the all-reduced sum; dx written, may alias dout)
 * With Cfull = C and no all-reduce they equal olmo_rmsnorm_forward / olmo_rmsnorm_backward. */
int olmo_row_sumsq(float* ss_N, const void* x_NC, int64_t N, int64_t C);
int olmo_rmsnorm_apply(void* out_NC, float* rstd_N, const void* x_NC, const void* w_C, const float* ss_N,
                       int64_t N, int64_t C, int64_t Cfull, float eps);
int olmo_rmsnorm_bwd_dot(float* dot_N, const void* dout_NC, const void* x_NC, const void* w_C,
                         const float* rstd_N, int64_t N, int64_t C);
int olmo_rmsnorm_bwd_finish(void* dx_NC, float* dw_C, const void* dout_NC, const void* x_NC, const void* w_C,
                            const float* rstd_N, const float* dot_N, int64_t N, int64_t C, int64_t Cfull);
/* Vocab-parallel cross-entropy + z-loss. A rank holds logit columns [v0, v0+Vloc) of V (act
 * [N,Vloc]). Stats per row: max_N = max_j x_j, sumexp_N = sum_j exp(x_j - max), tgt_N = x[t-v0]
 * when the target t is in this shard, else 0. The caller combines over TP ranks in rank order:
 * M = max_r m_r, S = sum_r s_r exp(m_r - M), lse = M + log S, tgt = sum_r tgt_r. Then finish:
 * ce_N = lse - tgt, lse_N = lse (rows with t < 0: 0, 0, zero gradient), and over the logits in
 * place: grad_scale * (exp(x_j - lse) * (1 + 2 z_mult lse) - [j + v0 == t]). grad_scale = 0
 * leaves the logits untouched. Targets >= V are errors. */
int olmo_ce_stats(float* max_N, float* sumexp_N, float* tgt_N, const void* logits_NV, const int32_t* targets_N,
                  int64_t N, int64_t Vloc, int64_t v0, int64_t V);
int olmo_ce_finish(void* logits_NV, float* ce_N, float* lse_N, const float* lse_in_N, const float* tgt_N,
                   const int32_t* targets_N, int64_t N, int64_t Vloc, int64_t v0, int64_t V, float z_mult,
                   float grad_scale);
/* Vocab-parallel embedding: wte_loc holds rows [v0, v0+Vloc) of the [V,C] table. forward writes
 * the row of tokens in the shard and zeros for the others (the sum over ranks is the lookup);
 * backward accumulates (f32, deterministic) into dwte_loc for tokens in the shard only. Token ids
 * outside [0,V) are errors. */
int olmo_embedding_forward_range(void* out_NC, const int32_t* tokens_N, const void* wte_loc, int64_t N, int64_t C,
                                 int64_t Vloc, int64_t v0, int64_t V);
int olmo_embedding_backward_range(float* dwte_loc, const void* dout_NC, const int32_t* tokens_N, int64_t N, int64_t C,
                                  int64_t Vloc, int64_t v0, int64_t V);

/* ---------------------------------------------------------------- optimizer */
/* out[0] (+)= sum x^2 over n fp32 elements (accumulate != 0 adds to out[0]; out is a device
 * pointer to one float). */
int olmo_norm_squared(float* out, const float* x, int64_t n, int accumulate);
/* AdamW with decoupled weight decay on one contiguous group (multi-tensor by construction:
 * the parameter arena is one buffer). g = grad * grad_scale (clipping folded in):
 *   p *= 1 - lr*wd;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2
 *   p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)
 * bc1, bc2 are computed by the caller (the as-trained OLMo-2 32B step bug: bc1 = 1-b1, bc2 = 1-b2
 * forever). param_act (may be NULL) receives the updated weights in act dtype. */
int olmo_adamw(float* param, void* param_act, const float* grad, float* m, float* v, int64_t n,
               float lr, float beta1, float beta2, float eps, float weight_decay, float bc1,
               float bc2, float grad_scale);

/* ---------------------------------------------------------------- timing events */
/* An event marks a point in the library's work (the per-phase profile of bench:step).
 * CUDA: a cudaEvent recorded on the library stream, so two events bracket the device time of the
 * work enqueued between them. CPU: every call is synchronous, so recording reads the monotonic
 * clock and two events bracket wall time. elapsed waits for `end` to complete (CUDA:
 * cudaEventSynchronize) and writes end - start in milliseconds; both must have been recorded. */
int olmo_event_create(void** out_event);
int olmo_event_destroy(void* event);
int olmo_event_record(void* event);
int olmo_event_elapsed_ms(float* out_ms, void* start, void* end);

/* ---------------------------------------------------------------- collectives (NCCL) */
/* The unique id is 128 bytes, exchanged by the caller (TCP store). comm handles are opaque. */
int olmo_comm_unique_id(uint8_t* out_128);
int olmo_comm_init(void** out_comm, const uint8_t* id_128, int world, int rank);
int olmo_comm_destroy(void* comm);
/* dtype: OLMO_DTYPE_F32 or OLMO_DTYPE_BF16; op: 0 = sum, 1 = max, 2 = avg. In place allowed. */
int olmo_comm_all_reduce(void* comm, void* recv, const void* send, int64_t count, int dtype,
                         int op);
int olmo_comm_all_gather(void* comm, void* recv, const void* send, int64_t send_count, int dtype);
int olmo_comm_reduce_scatter(void* comm, void* recv, const void* send, int64_t recv_count,
                             int dtype, int op);
int olmo_comm_broadcast(void* comm, void* buf, int64_t count, int dtype, int root);

#ifdef __cplusplus
}
#endif
#endif /* OLMO_H */
