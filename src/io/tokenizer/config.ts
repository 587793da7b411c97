/**
 * Reading a Hugging Face tokenizer_config.json: the special tokens of `added_tokens_decoder`, bos / eos
 * (a string or an AddedToken object), and `chat_template` (a string, or a list of named templates).
 */
import { readFileSync } from 'node:fs';
import type { TokenizerConfig } from './types.js';

export interface ParsedTokenizerConfig extends TokenizerConfig {
  /** id -> content of every entry in added_tokens_decoder. */
  addedTokens: Map<number, string>;
}

function tokenText(v: unknown, path: string, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string')
    return (v as { content: string }).content;
  throw new Error(`${path}: ${field} is ${JSON.stringify(v)}, expected a string or an object with 'content'`);
}

export function readTokenizerConfig(path: string): ParsedTokenizerConfig {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: cannot read tokenizer config (${(e as Error).message})`);
  }
  const addedTokens = new Map<number, string>();
  const decoder = (json.added_tokens_decoder ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(decoder)) {
    const id = Number(k);
    if (!Number.isInteger(id) || id < 0) throw new Error(`${path}: added_tokens_decoder key '${k}' is not a token id`);
    addedTokens.set(id, tokenText(v, path, `added_tokens_decoder[${k}]`)!);
  }
  let chatTemplate: string | undefined;
  const ct = json.chat_template;
  if (typeof ct === 'string') chatTemplate = ct;
  else if (Array.isArray(ct)) {
    const named = ct as { name?: string; template?: string }[];
    chatTemplate = (named.find((t) => t.name === 'default') ?? named[0])?.template;
  } else if (ct !== undefined && ct !== null)
    throw new Error(`${path}: chat_template is ${typeof ct}, expected a string or a list of {name, template}`);
  return {
    addedTokens,
    chatTemplate,
    bosToken: tokenText(json.bos_token, path, 'bos_token'),
    eosToken: tokenText(json.eos_token, path, 'eos_token'),
  };
}
