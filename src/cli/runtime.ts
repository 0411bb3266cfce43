// Which backend and how many CPU threads a command runs with. One precedence for every command:
// command line (`--backend=cuda`, `--threads=8` overrides of train) > environment (OLMO_BACKEND,
// OLMO_THREADS) > the run config (`backend`, `threads`) > the default (auto: CUDA when a GPU is
// usable; all cores). An empty variable counts as unset; any other value that is not valid is a
// one-line error naming the variable, never silently ignored or rounded.
import { UserError } from "../errors.ts";

export type BackendChoice = "cpu" | "cuda" | "auto";
type Env = Record<string, string | undefined>;

export interface Runtime {
  backend: BackendChoice;
  /** undefined: all cores */
  threads?: number;
  /** where each came from, for the run's first log line */
  backendFrom: string;
  threadsFrom: string;
}

export interface RuntimeSources {
  /** values given on the command line (already validated by the config schema) */
  cli?: { backend?: BackendChoice; threads?: number };
  config?: { backend?: BackendChoice; threads?: number };
  env?: Env;
}

const BACKENDS: BackendChoice[] = ["cpu", "cuda", "auto"];

function envBackend(env: Env): BackendChoice | undefined {
  const raw = env.OLMO_BACKEND;
  if (raw === undefined || raw === "") return undefined;
  if (!BACKENDS.includes(raw as BackendChoice)) throw new UserError(`OLMO_BACKEND=${raw} is not one of ${BACKENDS.join(", ")}`);
  return raw as BackendChoice;
}

function envThreads(env: Env): number | undefined {
  const raw = env.OLMO_THREADS;
  if (raw === undefined || raw === "") return undefined;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1 || Number(raw) > 4096) {
    throw new UserError(`OLMO_THREADS=${raw} must be a whole number of CPU threads from 1 to 4096`);
  }
  return Number(raw);
}

export function resolveRuntime(src: RuntimeSources = {}): Runtime {
  const env = src.env ?? process.env;
  const eb = envBackend(env), et = envThreads(env);
  const [backend, backendFrom] =
    src.cli?.backend !== undefined ? [src.cli.backend, "--backend"]
    : eb !== undefined ? [eb, "OLMO_BACKEND"]
    : src.config?.backend !== undefined ? [src.config.backend, "config"]
    : ["auto" as const, "default"];
  const [threads, threadsFrom] =
    src.cli?.threads !== undefined ? [src.cli.threads, "--threads"]
    : et !== undefined ? [et, "OLMO_THREADS"]
    : src.config?.threads !== undefined ? [src.config.threads, "config"]
    : [undefined, "default"];
  return { backend, threads, backendFrom, threadsFrom };
}

/** "backend cpu from OLMO_BACKEND, threads 2 from --threads" */
export function describeRuntime(r: Runtime): string {
  return `backend ${r.backend} from ${r.backendFrom}, threads ${r.threads ?? "all"} from ${r.threadsFrom}`;
}
