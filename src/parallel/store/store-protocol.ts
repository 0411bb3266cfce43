// olmo's rendezvous store protocol: one JSON object per line each way (wire.ts bounds the lines).
// Requests {id, op, ...} → replies {id, ok, value | error}:
//   set {key, value}            store a string
//   get {key, timeoutMs}        wait until the key exists, then return its value
//   add {key, delta}            atomic integer add, returns the new value (missing key = 0)
//   barrier {name, rank, world, timeoutMs}
//                               reply to everyone once all `world` ranks arrived; on timeout the
//                               error names the ranks that never came.
// Every field of every message is checked here against the job before anything acts on it: the
// server may be reached by anyone who can reach its port (README, Multi-process).
import { MAX_KEY_BYTES, MAX_TIMER_MS, MAX_VALUE_BYTES, utf8Bytes } from "./wire.ts";

export type Request =
  | { id: number; op: "set"; key: string; value: string }
  | { id: number; op: "get"; key: string; timeoutMs: number }
  | { id: number; op: "add"; key: string; delta: number }
  | { id: number; op: "barrier"; name: string; rank: number; world: number; timeoutMs: number };
export type Op = Request["op"];

export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

const isObject = (m: unknown): m is Record<string, unknown> => typeof m === "object" && m !== null && !Array.isArray(m);
const show = (v: unknown) => (typeof v === "string" ? JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v) : String(JSON.stringify(v) ?? v).slice(0, 40));
const wholeIn = (v: unknown, lo: number, hi: number): v is number => typeof v === "number" && Number.isInteger(v) && v >= lo && v <= hi;

function checkKey(what: string, v: unknown): string | null {
  if (typeof v !== "string" || v.length === 0) return `${what} ${show(v)} is not a non-empty string`;
  const n = utf8Bytes(v);
  return n > MAX_KEY_BYTES ? `${what} of ${n} bytes exceeds ${MAX_KEY_BYTES}` : null;
}

function checkTimeout(v: unknown): string | null {
  return typeof v === "number" && Number.isFinite(v) && v > 0 && v <= MAX_TIMER_MS ? null : `timeoutMs ${show(v)} is not a number of milliseconds in (0, ${MAX_TIMER_MS}]`;
}

/** One request line, checked against a job of `jobWorld` ranks; a string says what is wrong with it. */
export function parseRequest(line: string, jobWorld: number): Request | string {
  let m: unknown;
  try {
    m = JSON.parse(line);
  } catch {
    return "a line that is not JSON";
  }
  if (!isObject(m)) return "a message that is not a JSON object";
  if (!wholeIn(m.id, 0, Number.MAX_SAFE_INTEGER)) return `request id ${show(m.id)} is not a whole number >= 0`;
  const bad = (why: string | null) => (why === null ? null : `${String(m.op)}: ${why}`);
  switch (m.op) {
    case "set": {
      const why = checkKey("key", m.key) ?? (typeof m.value !== "string" ? `value ${show(m.value)} is not a string`
        : utf8Bytes(m.value) > MAX_VALUE_BYTES ? `a value of ${utf8Bytes(m.value)} bytes exceeds ${MAX_VALUE_BYTES}` : null);
      return bad(why) ?? { id: m.id, op: "set", key: m.key as string, value: m.value as string };
    }
    case "get":
      return bad(checkKey("key", m.key) ?? checkTimeout(m.timeoutMs)) ?? { id: m.id, op: "get", key: m.key as string, timeoutMs: m.timeoutMs as number };
    case "add": {
      const why = checkKey("key", m.key) ?? (wholeIn(m.delta, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) ? null : `delta ${show(m.delta)} is not a safe integer`);
      return bad(why) ?? { id: m.id, op: "add", key: m.key as string, delta: m.delta as number };
    }
    case "barrier": {
      const why = checkKey("name", m.name) ?? checkTimeout(m.timeoutMs)
        ?? (!wholeIn(m.world, 1, jobWorld) ? `world ${show(m.world)} is not a whole number from 1 to ${jobWorld} (the job's world size)`
          : !wholeIn(m.rank, 0, (m.world as number) - 1) ? `rank ${show(m.rank)} is not a whole number from 0 to ${(m.world as number) - 1}` : null);
      return bad(why) ?? { id: m.id, op: "barrier", name: m.name as string, rank: m.rank as number, world: m.world as number, timeoutMs: m.timeoutMs as number };
    }
    default:
      return `unknown op ${show(m.op)}`;
  }
}

/** One reply line to a request of `op` (looked up by its id); a string says what is wrong with it. */
export function parseReply(line: string, opOf: (id: number) => Op | undefined): Reply | string {
  let m: unknown;
  try {
    m = JSON.parse(line);
  } catch {
    return "a line that is not JSON";
  }
  if (!isObject(m)) return "a reply that is not a JSON object";
  const op = typeof m.id === "number" ? opOf(m.id) : undefined;
  if (op === undefined) return `a reply to no request in flight (id ${show(m.id)})`;
  const id = m.id as number;
  if (m.ok === false) return typeof m.error === "string" ? { id, ok: false, error: m.error } : `an error reply without a message (id ${id})`;
  if (m.ok !== true) return `a reply whose "ok" is ${show(m.ok)} (id ${id})`;
  const v = m.value;
  const fits = op === "get" ? typeof v === "string" && utf8Bytes(v) <= MAX_VALUE_BYTES
    : op === "add" ? wholeIn(v, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)
    : v === null || v === undefined;
  return fits ? { id, ok: true, value: v } : `a ${op} reply with value ${show(v)} (id ${id})`;
}
