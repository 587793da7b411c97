/**
 * Tokenizer loading: Hugging Face tokenizer.json or a tiktoken ranks file, behind one small interface.
 * Plain byte-level BPE tokenizer.json files (those `data tokenizer train` writes, GPT-2 style) load into the
 * fast in-house encoder; every other tokenizer.json goes through `@huggingface/tokenizers` (pure JS, the
 * tokenizers.js of transformers.js); `.tiktoken` files go through `js-tiktoken`. A model directory picks
 * by the files present: tokenizer.json, or Kimi's tiktoken.model, each with its tokenizer_config.json
 * (special tokens, bos / eos, chat template) when there is one.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ByteLevelBpe } from './bpe.js';
import { withSpecialSplit } from './chat.js';
import { type ParsedTokenizerConfig, readTokenizerConfig } from './config.js';
import { CL100K_PATTERN, KIMI_PATTERN, kimiSpecialTokens, parseRanks, tiktokenTokenizer } from './tiktoken.js';
import type { Tokenizer } from './types.js';

export type { Tokenizer, TokenizerConfig } from './types.js';
export { applyChatTemplate, type ChatMessage, renderChatTemplate } from './chat.js';
export { CL100K_PATTERN, KIMI_PATTERN } from './tiktoken.js';
export { ByteLevelBpe } from './bpe.js';
export { trainBpe, PreTokenCounter } from './train.js';

export interface LoadOptions {
  /** tiktoken only: the pre-tokenizer regex (default cl100k's). */
  pattern?: string;
  /** tiktoken only: special tokens (default '<|endoftext|>' after the last rank). */
  specialTokens?: Record<string, number>;
  /** tokenizer.json only: force the general library even for plain byte-level BPE. */
  forceLibrary?: boolean;
}

/** Files a model directory may hold its tokenizer in, in the order they are looked for. */
export const TOKENIZER_FILES = ['tokenizer.json', 'tiktoken.model'] as const;

/** A tokenizer file, or a model directory (tokenizer.json or tiktoken.model, with tokenizer_config.json). */
export async function loadTokenizer(path: string, opts: LoadOptions = {}): Promise<Tokenizer> {
  if (existsSync(path) && statSync(path).isDirectory()) return loadTokenizerDir(path, opts);
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
  const { bpeRanks, numBase } = parseRanks(path, text);
  const special = opts.specialTokens ?? { '<|endoftext|>': numBase };
  return tiktokenTokenizer(bpeRanks, numBase, opts.pattern ?? CL100K_PATTERN, special);
}

async function loadTokenizerDir(dir: string, opts: LoadOptions): Promise<Tokenizer> {
  const cfgPath = join(dir, 'tokenizer_config.json');
  const cfg: ParsedTokenizerConfig | undefined = existsSync(cfgPath) ? readTokenizerConfig(cfgPath) : undefined;
  const ids = (tok: Tokenizer, special: ReadonlyMap<string, number>): Tokenizer => {
    if (!cfg) return tok;
    const id = (s?: string) => (s === undefined ? undefined : special.get(s));
    return {
      ...tok,
      config: { ...cfg, bosTokenId: id(cfg.bosToken), eosTokenId: id(cfg.eosToken) },
    };
  };
  if (existsSync(join(dir, 'tokenizer.json'))) {
    const file = join(dir, 'tokenizer.json');
    const base = await loadTokenizer(file, opts);
    const special = new Map<string, number>();
    const json = JSON.parse(readFileSync(file, 'utf8')) as { added_tokens?: { id: number; content: string }[] };
    for (const t of json.added_tokens ?? []) special.set(t.content, t.id);
    for (const [id, content] of cfg?.addedTokens ?? []) special.set(content, id);
    const tok: Tokenizer = {
      vocabSize: base.vocabSize,
      encode: (t) => base.encode(t),
      decode: (d) => base.decode(d),
      tokenId: (s) => special.get(s) ?? base.tokenId?.(s),
    };
    tok.encodeWithSpecial = withSpecialSplit(tok, special);
    return ids(tok, special);
  }
  if (existsSync(join(dir, 'tiktoken.model'))) {
    const file = join(dir, 'tiktoken.model');
    const { bpeRanks, numBase } = parseRanks(file, readFileSync(file, 'utf8'));
    const special = opts.specialTokens ?? kimiSpecialTokens(numBase, cfg?.addedTokens ?? new Map());
    const tok = await tiktokenTokenizer(bpeRanks, numBase, opts.pattern ?? KIMI_PATTERN, special, cfg);
    return ids(tok, new Map(Object.entries(special)));
  }
  throw new Error(
    `tokenizer directory '${dir}': found none of ${TOKENIZER_FILES.join(', ')} (with an optional tokenizer_config.json)`,
  );
}
