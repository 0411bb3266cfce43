// The one Backend implementation over the native ABI: CPU and CUDA libraries export the same
// symbols, so they differ only in which library is loaded and in the activation dtype.
import { DTYPE_BF16, type NativeLibrary, hostPtr, hostView, loadNative, readCString } from "../native/lib.ts";
import type { Backend, BackendName, DevPtr, Dtype, EventHandle } from "./backend.ts";

export class NativeBackend implements Backend {
  readonly name: BackendName;
  readonly actDtype: Dtype;
  readonly actBytes: number;
  readonly deviceName: string;
  private readonly lib: NativeLibrary;
  /** the loaded library (NCCL communicators are made through its olmo_comm_* calls) */
  get library(): NativeLibrary {
    return this.lib;
  }
  // A ≥1 KiB scratch for small out-parameters (small typed arrays can move under the JIT).
  private readonly scratch = new BigUint64Array(128);
  private readonly scratchF32 = new Float32Array(256);
  /** only on the CPU library, whose pointers are host memory (Backend.hostView) */
  readonly hostView?: (p: DevPtr, bytes: number) => ArrayBuffer;

  constructor(lib: NativeLibrary, device = 0) {
    this.lib = lib;
    this.name = lib.kind;
    lib.check("olmo_init", lib.sym.olmo_init(device));
    this.actDtype = lib.sym.olmo_act_dtype() === DTYPE_BF16 ? "bf16" : "f32";
    this.actBytes = this.actDtype === "bf16" ? 2 : 4;
    const buf = new Uint8Array(1024);
    lib.check("olmo_device_name", lib.sym.olmo_device_name(buf, buf.length));
    this.deviceName = readCString(buf);
    if (lib.kind === "cpu") this.hostView = (p, bytes) => hostView(lib, p, bytes);
  }

  private c(fn: string, status: number): void {
    if (status !== 0) this.lib.check(fn, status);
  }

  /** bytes of every live allocation (Backend.memory): what olmo_alloc handed out, as torch's allocator stats count its own */
  private readonly live = new Map<DevPtr, number>();
  private allocated = 0;
  private peak = 0;

  alloc(bytes: number): DevPtr {
    const s = this.lib.sym;
    const n = Math.max(1, bytes);
    this.c("olmo_alloc", s.olmo_alloc(this.scratch, n));
    const p = Number(this.scratch[0]);
    this.live.set(p, n);
    this.allocated += n;
    if (this.allocated > this.peak) this.peak = this.allocated;
    return p;
  }
  free(p: DevPtr): void {
    this.c("olmo_free", this.lib.sym.olmo_free(p as never));
    this.allocated -= this.live.get(p) ?? 0;
    this.live.delete(p);
  }
  memory(): { allocatedBytes: number; peakBytes: number } {
    return { allocatedBytes: this.allocated, peakBytes: this.peak };
  }
  resetPeakMemory(): void {
    this.peak = this.allocated;
  }
  pinHost(buf: ArrayBufferView): () => void {
    if (buf.byteLength === 0) return () => {};
    const p = hostPtr(buf);
    this.c("olmo_host_register", this.lib.sym.olmo_host_register(p as never, buf.byteLength));
    return () => this.c("olmo_host_unregister", this.lib.sym.olmo_host_unregister(p as never));
  }
  deviceMemory(): { freeBytes: number; totalBytes: number } {
    // two buffers of ≥ 1 KiB (small typed arrays can move under FFI)
    const free = new BigInt64Array(128), total = new BigInt64Array(128);
    this.c("olmo_device_memory", this.lib.sym.olmo_device_memory(hostPtr(free) as never, hostPtr(total) as never));
    return { freeBytes: Number(free[0]), totalBytes: Number(total[0]) };
  }
  upload(dst: DevPtr, src: ArrayBufferView): void {
    if (src.byteLength === 0) return;
    this.c("olmo_memcpy_h2d", this.lib.sym.olmo_memcpy_h2d(dst as never, hostPtr(src) as never, src.byteLength));
  }
  download(dst: ArrayBufferView, src: DevPtr): void {
    if (dst.byteLength === 0) return;
    this.c("olmo_memcpy_d2h", this.lib.sym.olmo_memcpy_d2h(hostPtr(dst) as never, src as never, dst.byteLength));
  }
  copy(dst: DevPtr, src: DevPtr, bytes: number): void { this.c("olmo_memcpy_d2d", this.lib.sym.olmo_memcpy_d2d(dst as never, src as never, bytes)); }
  zero(dst: DevPtr, bytes: number): void { this.c("olmo_memset", this.lib.sym.olmo_memset(dst as never, 0, bytes)); }
  fillF32(dst: DevPtr, value: number, n: number): void { this.c("olmo_fill_f32", this.lib.sym.olmo_fill_f32(dst as never, value, n)); }
  castF32ToAct(d: DevPtr, s: DevPtr, n: number): void { this.c("olmo_cast_f32_to_act", this.lib.sym.olmo_cast_f32_to_act(d as never, s as never, n)); }
  castActToF32(d: DevPtr, s: DevPtr, n: number): void { this.c("olmo_cast_act_to_f32", this.lib.sym.olmo_cast_act_to_f32(d as never, s as never, n)); }
  synchronize(): void { this.c("olmo_synchronize", this.lib.sym.olmo_synchronize()); }

  createEvent(): EventHandle {
    this.c("olmo_event_create", this.lib.sym.olmo_event_create(this.scratch));
    return Number(this.scratch[0]);
  }
  destroyEvent(e: EventHandle): void { this.c("olmo_event_destroy", this.lib.sym.olmo_event_destroy(e as never)); }
  recordEvent(e: EventHandle): void { this.c("olmo_event_record", this.lib.sym.olmo_event_record(e as never)); }
  eventElapsedMs(start: EventHandle, end: EventHandle): number {
    this.c("olmo_event_elapsed_ms", this.lib.sym.olmo_event_elapsed_ms(this.scratchF32, start as never, end as never));
    return this.scratchF32[0];
  }

  add(out: DevPtr, a: DevPtr, b: DevPtr, n: number): void { this.c("olmo_add", this.lib.sym.olmo_add(out as never, a as never, b as never, n)); }
  scaleF32(x: DevPtr, s: number, n: number): void { this.c("olmo_scale_f32", this.lib.sym.olmo_scale_f32(x as never, s, n)); }

  embeddingForward(out: DevPtr, tok: DevPtr, wte: DevPtr, N: number, C: number, V: number): void {
    this.c("olmo_embedding_forward", this.lib.sym.olmo_embedding_forward(out as never, tok as never, wte as never, N, C, V));
  }
  embeddingBackward(dwte: DevPtr, dout: DevPtr, tok: DevPtr, N: number, C: number, V: number): void {
    this.c("olmo_embedding_backward", this.lib.sym.olmo_embedding_backward(dwte as never, dout as never, tok as never, N, C, V));
  }
  rmsnormForward(out: DevPtr, rstd: DevPtr, x: DevPtr, w: DevPtr, N: number, C: number, eps: number): void {
    this.c("olmo_rmsnorm_forward", this.lib.sym.olmo_rmsnorm_forward(out as never, rstd as never, x as never, w as never, N, C, eps));
  }
  rmsnormBackward(dx: DevPtr, dw: DevPtr, dout: DevPtr, x: DevPtr, w: DevPtr, rstd: DevPtr, N: number, C: number): void {
    this.c("olmo_rmsnorm_backward",
      this.lib.sym.olmo_rmsnorm_backward(dx as never, dw as never, dout as never, x as never, w as never, rstd as never, N, C));
  }
  ropeForward(out: DevPtr, x: DevPtr, cos: DevPtr, sin: DevPtr, B: number, T: number, Hx: number, D: number): void {
    this.c("olmo_rope_forward", this.lib.sym.olmo_rope_forward(out as never, x as never, cos as never, sin as never, B, T, Hx, D));
  }
  ropeBackward(dx: DevPtr, dout: DevPtr, cos: DevPtr, sin: DevPtr, B: number, T: number, Hx: number, D: number): void {
    this.c("olmo_rope_backward", this.lib.sym.olmo_rope_backward(dx as never, dout as never, cos as never, sin as never, B, T, Hx, D));
  }
  attentionForward(out: DevPtr, lse: DevPtr, q: DevPtr, k: DevPtr, v: DevPtr, B: number, T: number, H: number, K: number, D: number): void {
    this.c("olmo_attention_forward",
      this.lib.sym.olmo_attention_forward(out as never, lse as never, q as never, k as never, v as never, B, T, H, K, D));
  }
  attentionBackward(dq: DevPtr, dk: DevPtr, dv: DevPtr, dout: DevPtr, q: DevPtr, k: DevPtr, v: DevPtr, out: DevPtr, lse: DevPtr,
    B: number, T: number, H: number, K: number, D: number): void {
    this.c("olmo_attention_backward", this.lib.sym.olmo_attention_backward(dq as never, dk as never, dv as never, dout as never,
      q as never, k as never, v as never, out as never, lse as never, B, T, H, K, D));
  }
  attentionDecode(out: DevPtr, q: DevPtr, kc: DevPtr, vc: DevPtr, B: number, Tmax: number, len: number, H: number, K: number, D: number): void {
    this.c("olmo_attention_decode",
      this.lib.sym.olmo_attention_decode(out as never, q as never, kc as never, vc as never, B, Tmax, len, H, K, D));
  }
  swigluForward(out: DevPtr, gu: DevPtr, N: number, F: number): void {
    this.c("olmo_swiglu_forward", this.lib.sym.olmo_swiglu_forward(out as never, gu as never, N, F));
  }
  swigluBackward(dgu: DevPtr, dout: DevPtr, gu: DevPtr, N: number, F: number): void {
    this.c("olmo_swiglu_backward", this.lib.sym.olmo_swiglu_backward(dgu as never, dout as never, gu as never, N, F));
  }
  matmul(C: DevPtr, A: DevPtr, B: DevPtr, M: number, N: number, K: number, tA: boolean, tB: boolean, beta: number): void {
    this.c("olmo_matmul", this.lib.sym.olmo_matmul(C as never, A as never, B as never, M, N, K, tA ? 1 : 0, tB ? 1 : 0, beta));
  }
  matmulF32(C: DevPtr, A: DevPtr, B: DevPtr, M: number, N: number, K: number, tA: boolean, tB: boolean, beta: number): void {
    this.c("olmo_matmul_f32", this.lib.sym.olmo_matmul_f32(C as never, A as never, B as never, M, N, K, tA ? 1 : 0, tB ? 1 : 0, beta));
  }
  crossEntropy(logits: DevPtr, ce: DevPtr, lse: DevPtr, targets: DevPtr, N: number, V: number, zMult: number, gradScale: number): void {
    this.c("olmo_cross_entropy",
      this.lib.sym.olmo_cross_entropy(logits as never, ce as never, lse as never, targets as never, N, V, zMult, gradScale));
  }
  rowSumsq(ss: DevPtr, x: DevPtr, N: number, C: number): void {
    this.c("olmo_row_sumsq", this.lib.sym.olmo_row_sumsq(ss as never, x as never, N, C));
  }
  rmsnormApply(out: DevPtr, rstd: DevPtr, x: DevPtr, w: DevPtr, ss: DevPtr, N: number, C: number, Cfull: number, eps: number): void {
    this.c("olmo_rmsnorm_apply", this.lib.sym.olmo_rmsnorm_apply(out as never, rstd as never, x as never, w as never, ss as never, N, C, Cfull, eps));
  }
  rmsnormBwdDot(dot: DevPtr, dout: DevPtr, x: DevPtr, w: DevPtr, rstd: DevPtr, N: number, C: number): void {
    this.c("olmo_rmsnorm_bwd_dot", this.lib.sym.olmo_rmsnorm_bwd_dot(dot as never, dout as never, x as never, w as never, rstd as never, N, C));
  }
  rmsnormBwdFinish(dx: DevPtr, dw: DevPtr, dout: DevPtr, x: DevPtr, w: DevPtr, rstd: DevPtr, dot: DevPtr, N: number, C: number, Cfull: number): void {
    this.c("olmo_rmsnorm_bwd_finish", this.lib.sym.olmo_rmsnorm_bwd_finish(dx as never, dw as never, dout as never, x as never, w as never,
      rstd as never, dot as never, N, C, Cfull));
  }
  ceStats(mx: DevPtr, se: DevPtr, tgt: DevPtr, logits: DevPtr, targets: DevPtr, N: number, Vloc: number, v0: number, V: number): void {
    this.c("olmo_ce_stats", this.lib.sym.olmo_ce_stats(mx as never, se as never, tgt as never, logits as never, targets as never, N, Vloc, v0, V));
  }
  ceFinish(logits: DevPtr, ce: DevPtr, lse: DevPtr, lseIn: DevPtr, tgt: DevPtr, targets: DevPtr, N: number, Vloc: number, v0: number, V: number,
    zMult: number, gradScale: number): void {
    this.c("olmo_ce_finish", this.lib.sym.olmo_ce_finish(logits as never, ce as never, lse as never, lseIn as never, tgt as never, targets as never,
      N, Vloc, v0, V, zMult, gradScale));
  }
  embeddingForwardRange(out: DevPtr, tok: DevPtr, wte: DevPtr, N: number, C: number, Vloc: number, v0: number, V: number): void {
    this.c("olmo_embedding_forward_range", this.lib.sym.olmo_embedding_forward_range(out as never, tok as never, wte as never, N, C, Vloc, v0, V));
  }
  embeddingBackwardRange(dwte: DevPtr, dout: DevPtr, tok: DevPtr, N: number, C: number, Vloc: number, v0: number, V: number): void {
    this.c("olmo_embedding_backward_range", this.lib.sym.olmo_embedding_backward_range(dwte as never, dout as never, tok as never, N, C, Vloc, v0, V));
  }
  normSquared(out: DevPtr, x: DevPtr, n: number, accumulate: boolean): void {
    this.c("olmo_norm_squared", this.lib.sym.olmo_norm_squared(out as never, x as never, n, accumulate ? 1 : 0));
  }
  adamw(param: DevPtr, paramAct: DevPtr, grad: DevPtr, m: DevPtr, v: DevPtr, n: number,
    hp: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; bc1: number; bc2: number; gradScale: number }): void {
    this.c("olmo_adamw", this.lib.sym.olmo_adamw(param as never, paramAct as never, grad as never, m as never, v as never, n,
      hp.lr, hp.beta1, hp.beta2, hp.eps, hp.weightDecay, hp.bc1, hp.bc2, hp.gradScale));
  }
}

/** Choose a backend: OLMO_BACKEND=cpu|cuda|auto (default auto: CUDA when a GPU is usable). */
/**
 * opts.localRank: this process's rank on its node (one process per GPU): the CUDA backend uses GPU
 * number localRank, and a node with fewer GPUs than ranks is an error (NCCL cannot share a GPU).
 */
export function createBackend(requested: string = process.env.OLMO_BACKEND ?? "auto", opts: { threads?: number; localRank?: number } = {}): Backend {
  if (requested !== "cpu" && requested !== "cuda" && requested !== "auto") {
    throw new BackendChoiceError(`OLMO_BACKEND=${requested} is not one of cpu, cuda, auto`);
  }
  if (requested === "cuda" || requested === "auto") {
    const usable = cudaUsable();
    if (typeof usable === "number") {
      return new NativeBackend(loadNative("cuda"), gpuForLocalRank(opts.localRank ?? 0, usable, process.env.OLMO_TEST_SHARE_GPU === "1"));
    }
    if (requested === "cuda") throw new BackendChoiceError(`CUDA backend requested but no GPU is usable: ${usable}`);
  }
  if (opts.threads !== undefined && !(Number.isSafeInteger(opts.threads) && opts.threads >= 1)) {
    throw new BackendChoiceError(`CPU threads must be a whole number >= 1, got ${opts.threads}`);
  }
  const lib = loadNative("cpu");
  if (opts.threads) lib.check("olmo_set_num_threads", lib.sym.olmo_set_num_threads(opts.threads));
  return new NativeBackend(lib);
}

/**
 * One process per GPU: local rank r trains on GPU r; more ranks than GPUs on a node is an error.
 * share (OLMO_TEST_SHARE_GPU=1, a test tool for the one-GPU NCCL stand-in of cuda/nccl-standin,
 * which real NCCL would refuse): local rank r uses GPU r mod gpus.
 */
export function gpuForLocalRank(localRank: number, gpus: number, share = false): number {
  if (share) return localRank % gpus;
  if (localRank >= gpus) {
    throw new BackendChoiceError(`local rank ${localRank} needs GPU ${localRank}, but this node has ${gpus} usable GPU${gpus === 1 ? "" : "s"}: start at most one rank per GPU`);
  }
  return localRank;
}

export class BackendChoiceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BackendChoiceError";
  }
}

/** the number of GPUs when libolmo_cuda.so loads and sees at least one; otherwise the reason as a string. */
export function cudaUsable(): number | string {
  let lib: NativeLibrary;
  try {
    lib = loadNative("cuda");
  } catch (e) {
    return (e as Error).message;
  }
  const count = new Int32Array(256);
  const st = lib.sym.olmo_device_count(count);
  if (st !== 0) return lib.lastError();
  return count[0] > 0 ? count[0] : "no CUDA device (driver missing or no GPU)";
}
