// The model's parameters on the device, laid out by a sharding map (src/model/sharding.ts): one
// fp32 master arena (paramSpecs order of the rank's TP shards), its compute copy in the backend's
// act dtype (the same buffer on CPU, where act is fp32), and one fp32 gradient arena. One buffer
// each, so AdamW and the grad norm are single multi-tensor calls.
//
// Under ZeRO-1 (dp > 1) the rank keeps fp32 masters only for its range [start, start + len) of the
// arena, in a buffer of S floats; the compute copy is then always a separate, whole buffer padded to
// dp·S elements (the in-place all-gather target), which the optimizer refreshes for the range and
// all-gathers. The gradient arena is padded to dp·S as well (the in-place reduce-scatter source).
import type { Backend, DevPtr } from "../backend/backend.ts";
import type { ModelConfig } from "./config.ts";
import type { ParamSpec } from "./params.ts";
import { ShardingMap } from "./sharding.ts";

export class ParamStore {
  readonly specs: ParamSpec[];
  readonly numel: number;
  /** fp32 masters of elements [masterStart, masterStart + masterLen) */
  readonly master: DevPtr;
  readonly masterStart: number;
  readonly masterLen: number;
  readonly act: DevPtr;
  /** the fp32 gradient arena (padded to the map's zero1.padded elements); 0 until allocGrads() */
  grad: DevPtr = 0;
  private readonly byName: Map<string, ParamSpec>;

  /** map: this rank's layout (default: one process, the whole model) */
  constructor(readonly backend: Backend, readonly config: ModelConfig, readonly map: ShardingMap = new ShardingMap(config)) {
    this.specs = map.specs;
    this.numel = map.numel;
    this.byName = new Map(this.specs.map((s) => [s.name, s]));
    const { start, len, S, padded } = map.zero1;
    this.slicedMaster = map.slicedOptimizer;
    this.masterStart = this.slicedMaster ? start : 0;
    this.masterLen = this.slicedMaster ? len : this.numel;
    this.master = backend.alloc((this.slicedMaster ? S : this.numel) * 4);
    this.act = backend.actDtype === "f32" && !this.slicedMaster ? this.master : backend.alloc(padded * backend.actBytes);
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

  /** elements of the gradient arena: the local arena padded for ZeRO-1's in-place reduce-scatter */
  get gradElements(): number {
    return this.map.zero1.padded;
  }

  /** Allocate the (padded) gradient arena once; whoever asks first gets the same size. */
  allocGrads(): void {
    if (this.grad) return;
    this.grad = this.backend.alloc(this.gradElements * 4);
    this.zeroGrads();
  }

  /** Zero the whole gradient arena (the padding too: it goes through the reduce-scatter). */
  zeroGrads(): void {
    this.backend.zero(this.grad, this.gradElements * 4);
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
        const { lo, hi } = this.map.owned(s.name);
        if (hi > lo) be.copy(this.master + (s.offset + lo - this.masterStart) * 4, staging + lo * 4, (hi - lo) * 4);
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
