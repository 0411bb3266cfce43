// The model's parameters on the device: one fp32 master arena (paramSpecs order), its compute
// copy in the backend's act dtype (the same buffer on CPU, where act is fp32), and one fp32
// gradient arena. One buffer each, so AdamW and the grad norm are single multi-tensor calls.
import type { Backend, DevPtr } from "../backend/backend.ts";
import type { ModelConfig } from "./config.ts";
import { type ParamSpec, paramSpecs, totalParams } from "./params.ts";

export class ParamStore {
  readonly specs: ParamSpec[];
  readonly numel: number;
  readonly master: DevPtr;
  readonly act: DevPtr;
  grad: DevPtr = 0;
  private readonly byName: Map<string, ParamSpec>;

  /** specs: the arena layout (default paramSpecs(config); a tensor-parallel rank passes its shard
   *  specs, src/model/tp-plan.ts tpLocalSpecs) */
  constructor(readonly backend: Backend, readonly config: ModelConfig, specs?: ParamSpec[]) {
    this.specs = specs ?? paramSpecs(config);
    this.numel = totalParams(this.specs);
    this.byName = new Map(this.specs.map((s) => [s.name, s]));
    this.master = backend.alloc(this.numel * 4);
    this.act = backend.actDtype === "f32" ? this.master : backend.alloc(this.numel * backend.actBytes);
  }

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

  upload(host: Float32Array): void {
    if (host.length !== this.numel) throw new Error(`parameter arena has ${this.numel} elements, got ${host.length}`);
    this.backend.upload(this.master, host);
    this.refreshAct();
  }

  /** Upload `data` into the master weights of one parameter starting at element `start`. */
  uploadSlice(spec: ParamSpec, data: Float32Array, start = 0): void {
    if (start + data.length > spec.numel) throw new Error(`${spec.name}: slice ${start}+${data.length} exceeds ${spec.numel}`);
    this.backend.upload(this.master + (spec.offset + start) * 4, data);
  }

  /**
   * Fill every parameter tensor by tensor (never the whole model in one host buffer, which a
   * multi-billion-parameter model would not fit in) and refresh the compute copy.
   */
  fillEach(fill: (spec: ParamSpec, out: Float32Array) => void): void {
    const maxNumel = Math.max(...this.specs.map((s) => s.numel));
    const host = new Float32Array(maxNumel);
    for (const s of this.specs) {
      const view = host.subarray(0, s.numel);
      fill(s, view);
      this.uploadSlice(s, view);
    }
    this.refreshAct();
  }

  downloadGrads(): Float32Array {
    const out = new Float32Array(this.numel);
    this.backend.download(out, this.grad);
    return out;
  }

  refreshAct(): void {
    if (this.separateAct) this.backend.castF32ToAct(this.act, this.master, this.numel);
  }

  free(): void {
    this.backend.free(this.master);
    if (this.separateAct) this.backend.free(this.act);
    if (this.grad) this.backend.free(this.grad);
  }
}
