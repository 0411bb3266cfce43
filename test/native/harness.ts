// The op suite's frame: one context per backend and `checkOp`, which compares a backend's outputs
// with an oracle. On the CPU library (fp32) the oracle is the float64 reference in
// test/support/reference.ts; on any other backend (bf16 act) it is the CPU library run on the same
// inputs, already rounded to bf16, with bf16 tolerances.
import type { Backend, BackendName } from "../../src/backend/backend.ts";
import { expectClose } from "../support/compare.ts";
import { asAct, type Buffers, openBackend, withBuffers } from "../support/native.ts";
import { Rng } from "../support/random.ts";

export type Outputs = Record<string, ArrayLike<number>>;
export type Tol = number | Record<string, number>;
export type { Buffers };

const tolFor = (t: Tol | undefined, key: string, dflt: number) =>
  t === undefined ? dflt : typeof t === "number" ? t : (t[key] ?? dflt);

export interface OpsCtx {
  readonly name: BackendName;
  /** the backend under test (opened on first use) */
  readonly be: Backend;
  /** true when act is f32 and outputs are compared against float64 math */
  readonly exact: boolean;
  /** x rounded to the act dtype of the backend under test (inputs are prepared with this) */
  act(x: ArrayLike<number>): Float32Array;
  /** seeded generator; each test gets its own so tests are independent */
  rng(seed: number): Rng;
}

export function makeCtx(name: BackendName): OpsCtx {
  return {
    name,
    get be() { return openBackend(name); },
    get exact() { return openBackend(name).actDtype === "f32"; },
    act(x) { return asAct(openBackend(name), x); },
    rng: (seed) => new Rng(seed),
  };
}

export interface OpCheck {
  /** run the op on a backend; inputs must already be act-rounded (ctx.act) so both sides agree */
  run: (b: Buffers) => Outputs;
  /** float64 reference outputs for the same inputs */
  ref: () => Outputs;
  /** relative-error-norm tolerance against the float64 reference (fp32 backends); per output or all */
  tol: Tol;
  /** tolerance against the CPU library (bf16 backends); default 1e-2 for outputs not named */
  bf16Tol?: Tol;
}

/** Run the op on ctx.be and compare every output with the oracle (see file comment). */
export function checkOp(ctx: OpsCtx, what: string, c: OpCheck): Outputs {
  const actual = withBuffers(ctx.be, c.run);
  const expected = ctx.exact ? c.ref() : withBuffers(openBackend("cpu"), c.run);
  for (const key of Object.keys(expected)) {
    if (!(key in actual)) throw new Error(`${what}: run() did not return output ${key}`);
    const tol = ctx.exact ? tolFor(c.tol, key, 1e-5) : tolFor(c.bf16Tol, key, 1e-2);
    expectClose(`${ctx.name} ${what}: ${key}`, actual[key], expected[key], tol);
  }
  return actual;
}
