/**
 * tiktoken-style BPE files (`<base64 token> <rank>` per line) through js-tiktoken, and Kimi's flavour:
 * `tiktoken.model` beside a tokenizer_config.json, as Moonshot's tokenization_kimi.py loads it. There
 * the 256 ids after the last rank are special: those named in added_tokens_decoder ([BOS], [EOS],
 * <|im_end|>, ...) and `<|reserved_token_{id}|>` for the rest; the pre-tokenizer is Kimi's regex below.
 */
import type { Tokenizer, TokenizerConfig } from './types.js';

/** cl100k's split pattern: the usual choice for tiktoken files that carry no pattern. */
export const CL100K_PATTERN =
  "('s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// Kimi's pat_str (tokenization_kimi.py) written for JavaScript's 'u' regexes, which js-tiktoken uses:
// Python regex's \p{Han} is \p{Script=Han}; the class intersection [X&&[^\p{Han}]] becomes a
// lookahead (?:(?!Han)[X]); the inline-case group (?i:'s|...) is spelled out per letter.
const HAN = '\\p{Script=Han}';
const UPPER = `(?:(?!${HAN})[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}])`;
const LOWER = `(?:(?!${HAN})[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}])`;
const CONTRACTION = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
export const KIMI_PATTERN = [
  `${HAN}+`,
  `[^\\r\\n\\p{L}\\p{N}]?${UPPER}*${LOWER}+${CONTRACTION}?`,
  `[^\\r\\n\\p{L}\\p{N}]?${UPPER}+${LOWER}*${CONTRACTION}?`,
  '\\p{N}{1,3}',
  ' ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*',
  '\\s*[\\r\\n]+',
  '\\s+(?!\\S)',
  '\\s+',
].join('|');

/** Special ids after the last rank in Kimi's tokenizer (num_reserved_special_tokens). */
export const KIMI_RESERVED_SPECIAL = 256;

/** Parse a ranks file into js-tiktoken's bpe_ranks text; errors name the file and line. */
export function parseRanks(path: string, text: string): { bpeRanks: string; numBase: number } {
  const lines = text.split('\n').filter((l) => l.trim());
  let maxRank = -1;
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const [tok, r] = lines[i].trim().split(/\s+/);
    const rank = Number(r);
    if (!tok || !Number.isInteger(rank) || rank < 0) {
      throw new Error(
        `tokenizer '${path}' line ${i + 1}: expected '<base64 token> <rank>', found '${lines[i].slice(0, 60)}'`,
      );
    }
    out.push(`x ${rank} ${tok}`);
    maxRank = Math.max(maxRank, rank);
  }
  if (maxRank < 0) throw new Error(`tokenizer '${path}': no ranks in the file`);
  return { bpeRanks: out.join('\n'), numBase: maxRank + 1 };
}

export async function tiktokenTokenizer(
  bpeRanks: string,
  numBase: number,
  pattern: string,
  special: Record<string, number>,
  config?: TokenizerConfig,
): Promise<Tokenizer> {
  const { Tiktoken } = await import('js-tiktoken/lite');
  const enc = new Tiktoken({ pat_str: pattern, special_tokens: special, bpe_ranks: bpeRanks });
  const vocabSize = Math.max(numBase, ...Object.values(special).map((i) => i + 1));
  return {
    vocabSize,
    encode: (t: string) => enc.encode(t, [], []),
    encodeWithSpecial: (t: string) => enc.encode(t, 'all', []),
    decode: (ids) => enc.decode(Array.from(ids)),
    tokenId: (s: string) => special[s],
    config,
  };
}

/**
 * Kimi's special-token table: ids numBase .. numBase+255 named from added_tokens_decoder, else
 * `<|reserved_token_{id}|>`; named ids past that range are kept too.
 */
export function kimiSpecialTokens(numBase: number, added: Map<number, string>): Record<string, number> {
  const special: Record<string, number> = {};
  for (let id = numBase; id < numBase + KIMI_RESERVED_SPECIAL; id++)
    special[added.get(id) ?? `<|reserved_token_${id}|>`] = id;
  for (const [id, content] of added) if (id >= numBase) special[content] = id;
  return special;
}
