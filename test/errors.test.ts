// Every error is one line on stderr (src/errors.ts oneLine): control characters a message quotes —
// a newline in a path, a terminal escape sequence in a name read from a file — are written as
// escapes; other text, unicode included, is unchanged.
import { expect, test } from "bun:test";
import { oneLine } from "../src/errors.ts";

test("control characters are escaped, everything else is kept", () => {
  expect(oneLine("token file not found: /data/new\nline.u32")).toBe("token file not found: /data/new\\nline.u32");
  expect(oneLine("a\r\tb\u0000c\u001b[31md\u007f\u0085\u2028\u2029")).toBe("a\\r\\tb\\u0000c\\u001b[31md\\u007f\\u0085\\u2028\\u2029");
  expect(oneLine("naïve café — 日本語 🙂 \\n stays")).toBe("naïve café — 日本語 🙂 \\n stays");
  expect(oneLine("x".repeat(1000)).length).toBe(1000);
});

test("any string becomes one line", () => {
  const all = Array.from({ length: 0x3000 }, (_, i) => String.fromCharCode(i)).join("");
  expect(oneLine(all).split(/\r\n|\r|\n|\u2028|\u2029|\u0085/).length).toBe(1);
});
