/*
 * embedding.cu — token embedding lookup and its (deterministic) backward.
 *
 *   forward:  out[i, :] = wte[tok[i], :]            (a token outside [0,V) sets OLMO_ERRBIT_TOKEN,
 *                                                    its row is written as zeros)
 *   backward: dwte[v, :] += sum_{i : tok[i] = v} dout[i, :]      (fp32)
 *
 * Determinism without atomics: pass 1 records first[v] = min{i : tok[i] = v} (atomicMin on ints is
 * order-independent). Pass 2 launches one block per row i; only the block with first[tok[i]] == i
 * works: it scans rows j >= i in chunks of 256, compacts the matching j (ascending, warp ballots)
 * into shared memory and, per column, adds dout[j, c] in ascending j order to dwte[v, c]. Each
 * dwte row is owned by exactly one block and summed in a fixed order, so the result is bitwise
 * reproducible and equals the sequential CPU order dwte + d_j0 + d_j1 + ...
 * Pass 3 resets the touched entries of first[] (a V-int scratch kept by the library).
 */
#include "common.cuh"

__global__ void embedding_fwd_kernel(bf16* out, const int32_t* tok, const bf16* wte, int64_t N, int64_t C,
                                     int64_t V, unsigned int* err, int vec) {
  const int64_t per_row = vec ? C / 8 : C;
  const int64_t total = N * per_row;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    int64_t i = idx / per_row, c = idx - i * per_row;
    int32_t t = tok[i];
    bool ok = t >= 0 && t < V;
    if (!ok && c == 0) atomicOr(err, OLMO_ERRBIT_TOKEN);
    if (vec) {
      bf16x8 r;
      if (ok) {
        r = reinterpret_cast<const bf16x8*>(wte + (int64_t)t * C)[c];
      } else {
#pragma unroll
        for (int j = 0; j < 8; ++j) r.v[j] = f2bf(0.f);
      }
      reinterpret_cast<bf16x8*>(out + i * C)[c] = r;
    } else {
      out[i * C + c] = ok ? wte[(int64_t)t * C + c] : f2bf(0.f);
    }
  }
}

__global__ void embedding_first_kernel(int32_t* first, const int32_t* tok, int64_t N, int64_t V, unsigned int* err) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N; i += (int64_t)gridDim.x * blockDim.x) {
    int32_t t = tok[i];
    if (t >= 0 && t < V) atomicMin(&first[t], (int32_t)i);
    else atomicOr(err, OLMO_ERRBIT_TOKEN); /* reported at the next olmo_synchronize, as in the forward */
  }
}

/* undo pass 1: only the entries the tokens touched */
__global__ void embedding_unmark_kernel(int32_t* first, const int32_t* tok, int64_t N, int64_t V) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N; i += (int64_t)gridDim.x * blockDim.x) {
    int32_t t = tok[i];
    if (t >= 0 && t < V) first[t] = INT32_MAX;
  }
}

__global__ void embedding_reset_kernel(int32_t* first, int64_t V) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < V; i += (int64_t)gridDim.x * blockDim.x)
    first[i] = INT32_MAX;
}

#define EMB_BWD_THREADS 256
__global__ void __launch_bounds__(EMB_BWD_THREADS) embedding_bwd_kernel(float* dwte, const bf16* dout,
                                                                        const int32_t* tok, const int32_t* first,
                                                                        int64_t N, int64_t C, int64_t V) {
  const int64_t i = blockIdx.x;
  const int32_t v = tok[i];
  if (v < 0 || v >= V || first[v] != (int32_t)i) return;
  __shared__ int32_t list[EMB_BWD_THREADS];
  __shared__ int warp_cnt[EMB_BWD_THREADS / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float* drow = dwte + (int64_t)v * C;
  for (int64_t j0 = i; j0 < N; j0 += EMB_BWD_THREADS) {
    int64_t j = j0 + threadIdx.x;
    bool match = j < N && tok[j] == v;
    unsigned int ballot = __ballot_sync(0xffffffffu, match);
    if (lane == 0) warp_cnt[warp] = __popc(ballot);
    __syncthreads();
    int off = 0, count = 0;
#pragma unroll
    for (int w = 0; w < EMB_BWD_THREADS / 32; ++w) {
      off += w < warp ? warp_cnt[w] : 0;
      count += warp_cnt[w];
    }
    if (match) list[off + __popc(ballot & ((1u << lane) - 1u))] = (int32_t)j;
    __syncthreads();
    if (count > 0) {
      for (int64_t c = threadIdx.x; c < C; c += EMB_BWD_THREADS) {
        float s = drow[c];
        for (int k = 0; k < count; ++k) s += bf2f(dout[(int64_t)list[k] * C + c]);
        drow[c] = s;
      }
    }
    __syncthreads(); /* list / warp_cnt reused by the next chunk */
  }
}

static int32_t* s_first = nullptr;
static int64_t s_first_cap = 0;

extern "C" {

int olmo_embedding_forward(void* out_NC, const int32_t* tokens_N, const void* wte_VC, int64_t N, int64_t C,
                           int64_t V) {
  OLMO_REQUIRE_INIT();
  if (N <= 0 || C <= 0) return 0;
  int vec = C % 8 == 0 && olmo_aligned16(out_NC) && olmo_aligned16(wte_VC);
  int64_t work = N * (vec ? C / 8 : C);
  embedding_fwd_kernel<<<olmo_grid(work, 256), 256, 0, g_state.stream>>>((bf16*)out_NC, tokens_N, (const bf16*)wte_VC,
                                                                         N, C, V, g_state.err_word, vec);
  OLMO_LAUNCH_CHECK("embedding_fwd_kernel");
  return 0;
}

int olmo_embedding_backward(float* dwte_VC, const void* dout_NC, const int32_t* tokens_N, int64_t N, int64_t C,
                            int64_t V) {
  OLMO_REQUIRE_INIT();
  if (N <= 0 || C <= 0 || V <= 0) return 0;
  OLMO_REQUIRE(N < INT32_MAX && V < INT32_MAX, "olmo_embedding_backward: N or V too large");
  if (V > s_first_cap) {
    if (s_first) {
      OLMO_CUDA(cudaStreamSynchronize(g_state.stream));
      OLMO_CUDA(cudaFree(s_first));
      s_first = nullptr;
      s_first_cap = 0;
    }
    OLMO_CUDA(cudaMalloc(&s_first, (size_t)V * sizeof(int32_t)));
    s_first_cap = V;
    embedding_reset_kernel<<<olmo_grid(V, 256), 256, 0, g_state.stream>>>(s_first, V);
    OLMO_LAUNCH_CHECK("embedding_reset_kernel");
  }
  embedding_first_kernel<<<olmo_grid(N, 256), 256, 0, g_state.stream>>>(s_first, tokens_N, N, V, g_state.err_word);
  OLMO_LAUNCH_CHECK("embedding_first_kernel");
  embedding_bwd_kernel<<<(unsigned int)N, EMB_BWD_THREADS, 0, g_state.stream>>>(dwte_VC, (const bf16*)dout_NC,
                                                                                 tokens_N, s_first, N, C, V);
  OLMO_LAUNCH_CHECK("embedding_bwd_kernel");
  embedding_unmark_kernel<<<olmo_grid(N, 256), 256, 0, g_state.stream>>>(s_first, tokens_N, N, V);
  OLMO_LAUNCH_CHECK("embedding_unmark_kernel");
  return 0;
}

}  // extern "C"
