// Multiple-choice task files: JSON lines, one question each,
//   {"context": "Question: ...\nAnswer:", "choices": [" yes", " no"], "gold": 0, "uncond": "Answer:"}
// `choices` are continuations of `context`, written as they follow it (OLMo's tasks put a leading
// space in each: allenai/OLMo @ 0c816eb8 olmo/eval/downstream.py, doc_to_continuations); `gold` is
// the index of the right one; `uncond` is the prompt the unconditional score conditions on
// (OLMo's doc_to_domain_conditional; its default there is " ", here too). Tokenized with cl100k_base
// (prepare.ts), the base of OLMo-2's dolma2 vocabulary. Every mistake names the file and line.
import { UserError } from "../errors.ts";
import { parseJson, readInputText } from "../input.ts";
import { cl100k } from "./prepare.ts";

export interface McChoice {
  tokens: number[];
  /** characters of the continuation without its leading space (OLMo's cont_str_len) */
  chars: number;
}

export interface McQuestion {
  context: number[];
  /** the unconditional prompt's tokens */
  uncond: number[];
  choices: McChoice[];
  gold: number;
}

/** Characters (code points, as Python's len) of a continuation less one leading space. */
export function continuationChars(choice: string): number {
  const n = [...choice].length;
  return /^\s/.test(choice) ? n - 1 : n;
}

export interface McQuestionText {
  context: string;
  choices: string[];
  gold: number;
  uncond?: string;
  /** 1-based line in the file */
  line: number;
}

/** Parse and check a task file's lines (no tokenization). */
export function parseMcTask(text: string, source: string, maxQuestions?: number): McQuestionText[] {
  const out: McQuestionText[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length && (maxQuestions === undefined || out.length < maxQuestions); i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const at = `${source}:${i + 1}`;
    let q: Record<string, unknown>;
    try {
      q = parseJson(line) as Record<string, unknown>;
    } catch {
      throw new UserError(`${at}: not a JSON line`);
    }
    if (!q || typeof q !== "object" || Array.isArray(q)) throw new UserError(`${at}: expected an object {"context", "choices", "gold"}`);
    if (typeof q.context !== "string" || q.context === "") throw new UserError(`${at}: "context" must be a non-empty string`);
    const choices = q.choices;
    if (!Array.isArray(choices) || choices.length < 2 || !choices.every((c) => typeof c === "string" && continuationChars(c) > 0)) {
      throw new UserError(`${at}: "choices" must be a list of at least 2 strings with text beyond a leading space`);
    }
    const gold = q.gold;
    if (typeof gold !== "number" || !Number.isInteger(gold) || gold < 0 || gold >= choices.length) {
      throw new UserError(`${at}: "gold" must be the index of the right choice, 0…${choices.length - 1}; got ${JSON.stringify(gold)}`);
    }
    if (q.uncond !== undefined && (typeof q.uncond !== "string" || q.uncond === "")) throw new UserError(`${at}: "uncond" must be a non-empty string`);
    out.push({ context: q.context, choices: choices as string[], gold, uncond: q.uncond as string | undefined, line: i + 1 });
  }
  if (out.length === 0) throw new UserError(`${source}: no questions (expected JSON lines {"context", "choices", "gold"})`);
  return out;
}

export async function readMcTask(path: string, opts: { vocabSize: number; maxQuestions?: number; maxSeqLen?: number }): Promise<McQuestion[]> {
  const parsed = parseMcTask(readInputText(path, "task file"), path, opts.maxQuestions);
  const enc = await cl100k();
  const encode = (s: string, at: string): number[] => {
    let ids: number[];
    try {
      ids = enc.encode(s);
    } catch (e) {
      if (e instanceof UserError) throw new UserError(`${at}: ${e.message}`);
      throw e;
    }
    const bad = ids.find((t) => t >= opts.vocabSize);
    if (bad !== undefined) throw new UserError(`${at}: token id ${bad} (cl100k_base) is >= the model's vocab size ${opts.vocabSize}`);
    return ids;
  };
  return parsed.map((q) => {
    const at = `${path}:${q.line}`;
    return {
      context: encode(q.context, at),
      uncond: encode(q.uncond ?? " ", at),
      choices: q.choices.map((c, k) => {
        const tokens = encode(c, at);
        // a continuation is scored inside one window of the model's context
        if (opts.maxSeqLen !== undefined && tokens.length > opts.maxSeqLen) {
          throw new UserError(`${at}: choice ${k} is ${tokens.length} tokens, longer than the model's context of ${opts.maxSeqLen} (model.maxSeqLen)`);
        }
        return { tokens, chars: continuationChars(c) };
      }),
      gold: q.gold,
    };
  });
}
