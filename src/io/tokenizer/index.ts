/**
 * Tokenizer loading: Hugging Face tokenizer.json or a tiktoken ranks file, behind one small interface.
 * Plain byte-level BPE tokenizer.json files (those `data tokenizer train` writes, GPT-2 style) load into the
 * fast in-house encoder; every other tokenizer.json goes through `@huggingface/tokenizers` (pure JS, the
 * tokenizers.js of transformers.js); `.tiktoken` files go through `js-tiktoken`.
 */
import { readFileSync } from 'node:fs';
import { ByteLevelBpe } from './bpe.js';
import type { Tokenizer } from './types.js';

export type { Tokenizer } from './types.js';
export { ByteLevelBpe } from './bpe.js';
export { trainBpe, PreTokenCounter } from './train.js';

/** cl100k's split pattern: the usual choice for tiktoken files that carry no pattern. */
export const CL100K_PATTERN =
  "('s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export interface LoadOptions {
  /** tiktoken only: the pre-tokenizer regex (default cl100k's). */
  pattern?: string;
  /** tiktoken only: special tokens (default '<|endoftext|>' after the last rank). */
  specialTokens?: Record<string, number>;
  /** tokenizer.json only: force the general library even for plain byte-level BPE. */
  forceLibrary?: boolean;
}

export async function loadTokenizer(path: string, opts: LoadOptions = {}): Promise<Tokenizer> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`tokenizer '${path}': cannot read (${(e as Error).message})`);
  }
  if (path.endsWith('.tiktoken') || !text.trimStart().startsWith('{')) return loadTiktoken(path, text, opts);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`tokenizer '${path}': not valid JSON (${(e as Error).message})`);
  }
  if (!json.model) throw new Error(`tokenizer '${path}': no 'model' field; expected a Hugging Face tokenizer.json`);
  if (!opts.forceLibrary) {
    const fast = ByteLevelBpe.fromHuggingFace(json);
    if (fast) return fast;
  }
  return fromHfLibrary(json);
}

export async function fromHfLibrary(
  json: Record<string, unknown>,
  config: Record<string, unknown> = {},
): Promise<Tokenizer> {
  const { Tokenizer: HfTokenizer } = await import('@huggingface/tokenizers');
  const tok = new HfTokenizer(json as never, config as never);
  const added = new Map<string, number>();
  for (const t of (json.added_tokens as { id: number; content: string }[]) ?? []) added.set(t.content, t.id);
  const vocab = ((json.model as Record<string, unknown>).vocab ?? {}) as Record<string, number> | [string, number][];
  const size = Array.isArray(vocab) ? vocab.length : Math.max(-1, ...Object.values(vocab)) + 1;
  const vocabSize = Math.max(size, ...[...added.values()].map((i) => i + 1));
  return {
    vocabSize,
    encode: (t: string) => tok.encode(t, { add_special_tokens: false } as never).ids as number[],
    decode: (ids) => (ids.length ? tok.decode(Array.from(ids), { skip_special_tokens: false } as never) : ''),
    tokenId: (s: string) => added.get(s),
  };
}

async function loadTiktoken(path: string, text: string, opts: LoadOptions): Promise<Tokenizer> {
  const { Tiktoken } = await import('js-tiktoken/lite');
  const lines = text.split('\n').filter((l) => l.trim());
  let maxRank = -1;
  const ranks: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const [tok, r] = lines[i].trim().split(/\s+/);
    const rank = Number(r);
    if (!tok || !Number.isInteger(rank)) {
      throw new Error(
        `tokenizer '${path}' line ${i + 1}: expected '<base64 token> <rank>', found '${lines[i].slice(0, 60)}'`,
      );
    }
    ranks.push(`x ${rank} ${tok}`);
    maxRank = Math.max(maxRank, rank);
  }
  const special = opts.specialTokens ?? { '<|endoftext|>': maxRank + 1 };
  const enc = new Tiktoken({
    pat_str: opts.pattern ?? CL100K_PATTERN,
    special_tokens: special,
    bpe_ranks: ranks.join('\n'),
  });
  const vocabSize = Math.max(maxRank, ...Object.values(special)) + 1;
  return {
    vocabSize,
    encode: (t: string) => enc.encode(t, [], []),
    decode: (ids) => enc.decode(Array.from(ids)),
    tokenId: (s: string) => special[s],
  };
}
