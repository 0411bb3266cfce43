// What users hand us. Files a user names are read here, and a file that cannot be read is one
// line saying why — not found, a folder, not readable — never "not found" for all three.
// JSON from outside (a config.json, a metrics line, a safetensors header, a task or corpus line):
// every reader parses it here. JSON.parse itself reads any depth, but what a value goes through
// next is recursive (JSON.stringify, msgpack, structuredClone, the schema), and 100k nested
// brackets overflow the stack there: a stack trace instead of a one-line error. So nesting deeper
// than MAX_JSON_DEPTH is refused first, by one linear scan. Python's json module cannot write or
// read more than ~1000 levels (its recursion limit), and nothing we read is deeper than ~10.
import { readFileSync } from "node:fs";
import { UserError } from "./errors.ts";

export const MAX_JSON_DEPTH = 512;

/** Why the file `path` could not be read, as the end of a one-line message. */
export function unreadableReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOENT" || code === "ENOTDIR") return "not found";
  if (code === "EISDIR") return "is a folder, not a file";
  if (code === "EACCES" || code === "EPERM") return "not readable (permission denied)";
  if (code === "ENAMETOOLONG") return "the path is too long for the filesystem";
  return `cannot be read (${String((e as Error).message ?? e).split("\n")[0]})`;
}

/** The text of the file `path` a user named as `what` ("mix file", "task file"); a UserError saying why not. */
export function readInputText(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    const why = unreadableReason(e);
    throw new UserError(why === "not found" ? `${what} not found: ${path}` : `${what} ${path}: ${why}`);
  }
}

/** The deepest nesting of arrays and objects in `text` (strings skipped), stopping past `limit`. */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0, max = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // a string: skip to its closing quote (a backslash escapes the next character)
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max && (max = depth) > limit) return max;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return max;
}

/**
 * JSON.parse, refusing nesting deeper than MAX_JSON_DEPTH with a SyntaxError (what every reader
 * already turns into its one-line "not valid JSON" message).
 */
export function parseJson(text: string): unknown {
  if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) throw new SyntaxError(`nested deeper than ${MAX_JSON_DEPTH} levels`);
  return JSON.parse(text);
}
