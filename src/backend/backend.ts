// interface Backend: everything the model, optimizer and trainer may ask of a device.
// Pointers are plain numbers ("device pointers": host memory on the CPU library, GPU memory on
// the CUDA library). "act" buffers hold the backend's activation dtype (f32 on CPU, bf16 on CUDA);
// "f32" buffers always hold float32. Shapes follow cuda/include/olmo.h.
export type DevPtr = number;
export type Dtype = "f32" | "bf16";
export type BackendName = "cpu" | "cuda";
/** an opaque timing event of the native library */
export type EventHandle = number;

export interface Backend {
  readonly name: BackendName;
  /** dtype of activations, logits and the compute copy of the weights */
  readonly actDtype: Dtype;
  /** bytes per element of actDtype */
  readonly actBytes: number;
  /** human-readable device description, e.g. "cpu (OpenBLAS, 2 threads)" or "NVIDIA H100 80GB HBM3" */
  readonly deviceName: string;

  // memory
  alloc(bytes: number): DevPtr;
  free(p: DevPtr): void;
  upload(dst: DevPtr, src: ArrayBufferView): void;
  download(dst: ArrayBufferView, src: DevPtr): void;
  copy(dst: DevPtr, src: DevPtr, bytes: number): void;
  zero(dst: DevPtr, bytes: number): void;
  fillF32(dst: DevPtr, value: number, n: number): void;
  castF32ToAct(dstAct: DevPtr, srcF32: DevPtr, n: number): void;
  castActToF32(dstF32: DevPtr, srcAct: DevPtr, n: number): void;
  synchronize(): void;
  /** CPU library only (pointers are host memory): a zero-copy view of `bytes` bytes at p, valid
   *  while p is allocated. Absent on CUDA (collectives there go through NCCL on device pointers). */
  hostView?(p: DevPtr, bytes: number): ArrayBuffer;
  /** bytes allocated through alloc and not yet freed, and the most at once since resetPeakMemory
   *  (the library's own buffers — CUDA context, cuBLASLt workspace, NCCL — are not counted) */
  memory(): { allocatedBytes: number; peakBytes: number };
  resetPeakMemory(): void;
  /** what the device can still allocate and its size (CUDA: cudaMemGetInfo; CPU: the host's available memory) */
  deviceMemory(): { freeBytes: number; totalBytes: number };
  /** page-lock a long-lived host buffer for fast device→host copies (CUDA); returns its undo */
  pinHost(buf: ArrayBufferView): () => void;

  // timing (olmo.h "timing events"): CUDA events on the library stream, wall clock on the CPU library
  createEvent(): EventHandle;
  destroyEvent(e: EventHandle): void;
  recordEvent(e: EventHandle): void;
  /** ms from start to end (waits for end) */
  eventElapsedMs(start: EventHandle, end: EventHandle): number;

  // elementwise
  add(out: DevPtr, a: DevPtr, b: DevPtr, n: number): void;
  scaleF32(x: DevPtr, s: number, n: number): void;

  // kernels (see olmo.h for the math)
  embeddingForward(out_NC: DevPtr, tokens_N: DevPtr, wte_VC: DevPtr, N: number, C: number, V: number): void;
  embeddingBackward(dwte_VC: DevPtr, dout_NC: DevPtr, tokens_N: DevPtr, N: number, C: number, V: number): void;
  rmsnormForward(out_NC: DevPtr, rstd_N: DevPtr, x_NC: DevPtr, w_C: DevPtr, N: number, C: number, eps: number): void;
  rmsnormBackward(dx_NC: DevPtr, dw_C: DevPtr, dout_NC: DevPtr, x_NC: DevPtr, w_C: DevPtr, rstd_N: DevPtr, N: number, C: number): void;
  ropeForward(out: DevPtr, x: DevPtr, cos_TD2: DevPtr, sin_TD2: DevPtr, B: number, T: number, Hx: number, D: number): void;
  ropeBackward(dx: DevPtr, dout: DevPtr, cos_TD2: DevPtr, sin_TD2: DevPtr, B: number, T: number, Hx: number, D: number): void;
  attentionForward(out: DevPtr, lse_BHT: DevPtr, q: DevPtr, k: DevPtr, v: DevPtr, B: number, T: number, H: number, K: number, D: number): void;
  attentionBackward(dq: DevPtr, dk: DevPtr, dv: DevPtr, dout: DevPtr, q: DevPtr, k: DevPtr, v: DevPtr, out: DevPtr, lse_BHT: DevPtr,
    B: number, T: number, H: number, K: number, D: number): void;
  /** one query per batch row [B,H,D] against KV caches [B,Tmax,K,D], positions [0,len) */
  attentionDecode(out_BHD: DevPtr, q_BHD: DevPtr, kcache: DevPtr, vcache: DevPtr, B: number, Tmax: number, len: number, H: number, K: number, D: number): void;
  swigluForward(out_NF: DevPtr, gu_N2F: DevPtr, N: number, F: number): void;
  swigluBackward(dgu_N2F: DevPtr, dout_NF: DevPtr, gu_N2F: DevPtr, N: number, F: number): void;
  matmul(C: DevPtr, A: DevPtr, B: DevPtr, M: number, N: number, K: number, transA: boolean, transB: boolean, beta: number): void;
  matmulF32(C: DevPtr, A: DevPtr, B: DevPtr, M: number, N: number, K: number, transA: boolean, transB: boolean, beta: number): void;
  crossEntropy(logits_NV: DevPtr, ce_N: DevPtr, lse_N: DevPtr, targets_N: DevPtr, N: number, V: number, zMult: number, gradScale: number): void;

  // tensor parallelism (olmo.h "tensor parallelism"): split RMSNorm, vocab-parallel CE and embedding
  rowSumsq(ss_N: DevPtr, x_NC: DevPtr, N: number, C: number): void;
  rmsnormApply(out_NC: DevPtr, rstd_N: DevPtr, x_NC: DevPtr, w_C: DevPtr, ss_N: DevPtr, N: number, C: number, Cfull: number, eps: number): void;
  rmsnormBwdDot(dot_N: DevPtr, dout_NC: DevPtr, x_NC: DevPtr, w_C: DevPtr, rstd_N: DevPtr, N: number, C: number): void;
  rmsnormBwdFinish(dx_NC: DevPtr, dw_C: DevPtr, dout_NC: DevPtr, x_NC: DevPtr, w_C: DevPtr, rstd_N: DevPtr, dot_N: DevPtr,
    N: number, C: number, Cfull: number): void;
  ceStats(max_N: DevPtr, sumexp_N: DevPtr, tgt_N: DevPtr, logits_NV: DevPtr, targets_N: DevPtr, N: number, Vloc: number, v0: number, V: number): void;
  ceFinish(logits_NV: DevPtr, ce_N: DevPtr, lse_N: DevPtr, lseIn_N: DevPtr, tgt_N: DevPtr, targets_N: DevPtr, N: number, Vloc: number,
    v0: number, V: number, zMult: number, gradScale: number): void;
  embeddingForwardRange(out_NC: DevPtr, tokens_N: DevPtr, wteLoc: DevPtr, N: number, C: number, Vloc: number, v0: number, V: number): void;
  embeddingBackwardRange(dwteLoc: DevPtr, dout_NC: DevPtr, tokens_N: DevPtr, N: number, C: number, Vloc: number, v0: number, V: number): void;

  // optimizer
  normSquared(out: DevPtr, x: DevPtr, n: number, accumulate: boolean): void;
  adamw(param: DevPtr, paramAct: DevPtr, grad: DevPtr, m: DevPtr, v: DevPtr, n: number,
    hp: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; bc1: number; bc2: number; gradScale: number }): void;
}
