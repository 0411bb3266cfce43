// The native op suite: every kernel of cuda/include/olmo.h, forward and backward, through the real
// FFI path (Backend over bun:ffi), on every backend found. The CPU library always runs (it is
// built here if missing); the CUDA library runs only where a GPU is usable, otherwise a visible
// skipped test says why.
import { describe, test } from "bun:test";
import type { BackendName } from "../../src/backend/backend.ts";
import { ensureNativeBuilt } from "../support/build.ts";
import { cudaStatus } from "../support/native.ts";
import { makeCtx } from "./harness.ts";
import { describeAttention } from "./ops-attention.ts";
import { describeBasics } from "./ops-basic.ts";
import { describeGradChecks } from "./ops-gradcheck.ts";
import { describeLayers } from "./ops-layers.ts";
import { describeProperties } from "./ops-properties.ts";

export function describeOps(backendName: BackendName): void {
  describe(`native ops [${backendName}]`, () => {
    const ctx = makeCtx(backendName);
    describeBasics(ctx);
    describeLayers(ctx);
    describeAttention(ctx);
    describeGradChecks(ctx);
    describeProperties(ctx);
  });
}

ensureNativeBuilt("cpu");
describeOps("cpu");
const cuda = cudaStatus();
if (cuda === true) describeOps("cuda");
else test.skip(`cuda: ${cuda}`, () => {});
