// The model's parameters on the device: one fp32 master arena (paramSpecs order), its compute
// copy in the backend's act dtype (the same buffer on CPU, where act is fp32), and one fp32
// gradient arena. One buffer each, so AdamW and the grad norm are single multi-tensor calls.
//
// With a master slice (ZeRO-1: opts.masterSlice) the rank keeps fp32 masters only for elements
// [start, start + len) of the arena, in a buffer of `capacity` floats; the compute copy is then
// always a separate, whole buffer (padded to `actElements` for the in-place all-gather), which the
// optimizer refreshes for the slice and all-gathers.
import type { Backend, DevPtr } from "../backend/backend.ts";
import type { ModelConfig } from "./config.ts";
import { type ParamSpec, paramSpecs, totalParams } from "./params.ts";

export interface MasterSlice {
  /** first arena element whose master this rank keeps */
  start: number;
  /** how many (start + len <= numel) */
  len: number;
  /** floats allocated for the slice (>= len) */
  capacity: number;
  /** elements allocated for the compute copy (>= numel: the padded all-gather target) */
  actElements: number;
}

export class ParamStore {
  readonly specs: ParamSpec[];
  readonly numel: number;
  /** fp32 masters of elements [masterStart, masterStart + masterLen) */
  readonly master: DevPtr;
  readonly masterStart: number;
  readonly masterLen: number;
  readonly act: DevPtr;
  grad: DevPtr = 0;
  private readonly byName: Map<string, ParamSpec>;

  /** specs: the arena layout (default paramSpecs(config); a tensor-parallel rank passes its shard
   *  specs, src/model/tp-plan.ts tpLocalSpecs) */
  constructor(readonly backend: Backend, readonly config: ModelConfig, specs?: ParamSpec[], opts: { masterSlice?: MasterSlice } = {}) {
    this.specs = specs ?? paramSpecs(config);
    this.numel = totalParams(this.specs);
    this.byName = new Map(this.specs.map((s) => [s.name, s]));
    const sl = opts.masterSlice;
    if (sl && (sl.start < 0 || sl.len < 0 || sl.start + sl.len > this.numel || sl.capacity < sl.len || sl.actElements < this.numel)) {
      throw new Error(`ParamStore: bad master slice ${JSON.stringify(sl)} of ${this.numel} elements`);
    }
    this.slicedMaster = !!sl;
    this.masterStart = sl?.start ?? 0;
    this.masterLen = sl?.len ?? this.numel;
    this.master = backend.alloc((sl?.capacity ?? this.numel) * 4);
    this.act = backend.actDtype === "f32" && !sl ? this.master : backend.alloc((sl?.actElements ?? this.numel) * backend.actBytes);
  }

  /** true when this rank keeps the masters of part of the arena only (ZeRO-1) */
  readonly slicedMaster: boolean;

  /** true when the compute copy is a separate buffer that must be refreshed from the master */
  get separateAct(): boolean {
    return this.act !== this.master;
  }

  spec(name: string): ParamSpec {
    const s = this.byName.get(name);
    if (!s) throw new Error(`no parameter ${name}`);
    return s;
  }

  /** compute-copy pointer of a parameter */
  w(name: string): DevPtr {
    return this.act + this.spec(name).offset * this.backend.actBytes;
  }

  /** fp32 gradient pointer of a parameter */
  g(name: string): DevPtr {
    return this.grad + this.spec(name).offset * 4;
  }

  allocGrads(): void {
    if (!this.grad) this.grad = this.backend.alloc(this.numel * 4);
  }

  zeroGrads(): void {
    this.backend.zero(this.grad, this.numel * 4);
  }

  /** Set every parameter from one host arena (tests and small models). */
  upload(host: Float32Array): void {
    if (host.length !== this.numel) throw new Error(`parameter arena has ${this.numel} elements, got ${host.length}`);
    this.fillEach((s, out) => out.set(host.subarray(s.offset, s.offset + s.numel)));
  }

  /**
   * Fill every parameter tensor by tensor (never the whole model in one host buffer, which a
   * multi-billion-parameter model would not fit in) and refresh the compute copy. With a master
   * slice each tensor goes to a device staging buffer, is cast into the compute copy, and the part
   * inside the slice is kept as master.
   */
  fillEach(fill: (spec: ParamSpec, out: Float32Array) => void): void {
    const be = this.backend;
    const maxNumel = Math.max(...this.specs.map((s) => s.numel));
    const host = new Float32Array(maxNumel);
    const staging = this.slicedMaster ? be.alloc(maxNumel * 4) : 0;
    try {
      for (const s of this.specs) {
        const view = host.subarray(0, s.numel);
        fill(s, view);
        if (!staging) {
          be.upload(this.master + s.offset * 4, view);
          continue;
        }
        be.upload(staging, view);
        be.castF32ToAct(this.act + s.offset * be.actBytes, staging, s.numel);
        const lo = Math.max(s.offset, this.masterStart), hi = Math.min(s.offset + s.numel, this.masterStart + this.masterLen);
        if (hi > lo) be.copy(this.master + (lo - this.masterStart) * 4, staging + (lo - s.offset) * 4, (hi - lo) * 4);
      }
    } finally {
      if (staging) be.free(staging);
    }
    if (!staging) this.refreshAct();
  }

  downloadGrads(): Float32Array {
    const out = new Float32Array(this.numel);
    this.backend.download(out, this.grad);
    return out;
  }

  /** compute copy ← masters (of the slice only, with a master slice) */
  refreshAct(): void {
    if (this.separateAct) this.backend.castF32ToAct(this.act + this.masterStart * this.backend.actBytes, this.master, this.masterLen);
  }

  free(): void {
    this.backend.free(this.master);
    if (this.separateAct) this.backend.free(this.act);
    if (this.grad) this.backend.free(this.grad);
  }
}
