// The one rule for Python values that a checkpoint carries outside its tensors (DCP's non-tensor
// items: an optimizer's param-group fields): only plain data is accepted — None, booleans, ints,
// floats, strings, and lists, tuples and dicts of them. A pickle can also hold calls (REDUCE, NEWOBJ:
// `os.system("…")` is one GLOBAL and one REDUCE), class references and persistent ids; our reader
// never executes them, but a Python loader of a file we wrote would. So a value that is not plain
// data is refused in one line, and what is written back is always re-pickled by our own pickler from
// the checked value (never the bytes as they came), so nothing we did not understand reaches Python.
// What OLMo-core's optimizers store there (allenai/OLMo-core @ d7301e62, src/olmo_core/optim/
// adamw.py SkipStepAdamW defaults and optim/config.py OptimConfig.build): lr, betas (a tuple),
// eps, weight_decay, foreach / fused (None or bool), initial_lr and params (a list of names);
// torch.optim.AdamW adds amsgrad, maximize, capturable and differentiable (booleans).
import { UserError } from "../../errors.ts";
import { PyDict, PyFloat, PyGlobal, PyObject, PyTuple, type PyValue, typeName, unpickle } from "./pickle-read.ts";
import { pickle } from "./pickle-write.ts";

/** Nesting a param-group field could plausibly need; deeper is refused (no recursion on crafted input). */
const MAX_DEPTH = 32;

/** Why `v` is not plain data (the first offending part), or null when it is. */
export function notPlainData(v: PyValue): string | null {
  const stack: [PyValue, number][] = [[v, 0]];
  while (stack.length) {
    const [x, depth] = stack.pop()!;
    if (depth > MAX_DEPTH) return `values nested deeper than ${MAX_DEPTH} levels`;
    if (x === null || typeof x === "boolean" || typeof x === "string" || typeof x === "bigint" || x instanceof PyFloat) continue;
    if (typeof x === "number") {
      if (!Number.isInteger(x)) return `the number ${x}, which is not a pickled int or float`;
      continue;
    }
    if (Array.isArray(x) || x instanceof PyTuple) {
      for (const y of Array.isArray(x) ? x : x.items) stack.push([y, depth + 1]);
      continue;
    }
    if (x instanceof PyDict) {
      for (const [k, y] of x.entries) {
        if (typeof k !== "string" && typeof k !== "number" && typeof k !== "bigint") return `a dict key that is a ${typeName(k)}`;
        stack.push([y, depth + 1]);
      }
      continue;
    }
    // a call or construction, a reference to a class or function, a persistent id, bytes, a set:
    // none of them is what an optimizer's param group holds
    if (x instanceof PyObject) return x.kind === "reduce" ? `a call of ${x.className}` : `an object of class ${x.className}`;
    if (x instanceof PyGlobal) return `a reference to ${x.qualified}`;
    return `a ${typeName(x)}`;
  }
  return null;
}

/** Refuse anything but plain data, naming where it was found. */
export function checkPlainData(v: PyValue, where: string): void {
  const why = notPlainData(v);
  if (why !== null) {
    throw new UserError(`${where}: holds ${why}, not plain data (olmo accepts only None, booleans, numbers, strings and lists, tuples and dicts of them outside the tensors, and never passes on anything else)`);
  }
}

/** A pickled value (floats kept as floats), checked to be plain data, and its re-pickled bytes to write. */
export function plainPickle(pkl: Uint8Array, where: string): { value: PyValue; pickle: Uint8Array } {
  const value = unpickle(pkl, where, { keepFloats: true });
  checkPlainData(value, where);
  return { value, pickle: pickle(value) };
}
