/**
 * Byte-level BPE (GPT-2 style): text -> regex pre-tokens -> UTF-8 bytes -> merges by rank. Token strings use
 * GPT-2's bytes_to_unicode alphabet, so the model round-trips through a Hugging Face tokenizer.json.
 * Encoding caches pre-token -> ids, which is where the speed on natural text comes from.
 */
import type { Tokenizer } from './types.js';

export const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** GPT-2's reversible byte -> printable character map. */
export const BYTE_TO_CHAR: string[] = (() => {
  const bs: number[] = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out: string[] = new Array(256);
  for (let i = 0; i < 256; i++) out[bs[i]] = String.fromCharCode(cs[i]);
  return out;
})();

export const CHAR_TO_BYTE = new Map<string, number>(BYTE_TO_CHAR.map((c, b) => [c, b]));

const PAIR = 1 << 21;
const NON_ASCII = /[\u0080-\uffff]/;

function isAsciiLetter(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
/** JS \s restricted to ASCII: tab, LF, VT, FF, CR, space. */
function isWs(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

/**
 * GPT2_PATTERN on ASCII text without the regex engine. Alternatives are tried in the regex's order at each
 * position: contractions, ' ?letters', ' ?digits', ' ?other', then whitespace, where `\s+(?!\S)` leaves the
 * last whitespace character of a run for the next piece when a non-space follows.
 */
export function splitGpt2Ascii(t: string, piece: (start: number, end: number) => void): void {
  const n = t.length;
  let i = 0;
  while (i < n) {
    const c = t.charCodeAt(i);
    if (c === 39 && i + 1 < n) {
      const d = t.charCodeAt(i + 1);
      if (d === 115 || d === 116 || d === 109 || d === 100) {
        piece(i, i + 2);
        i += 2;
        continue;
      }
      if (i + 2 < n) {
        const e = t.charCodeAt(i + 2);
        if ((d === 114 && e === 101) || (d === 118 && e === 101) || (d === 108 && e === 108)) {
          piece(i, i + 3);
          i += 3;
          continue;
        }
      }
    }
    let j = i;
    let k = c;
    if (c === 32 && i + 1 < n) {
      j = i + 1;
      k = t.charCodeAt(j);
    }
    if (isAsciiLetter(k)) {
      j++;
      while (j < n && isAsciiLetter(t.charCodeAt(j))) j++;
      piece(i, j);
      i = j;
      continue;
    }
    if (isDigit(k)) {
      j++;
      while (j < n && isDigit(t.charCodeAt(j))) j++;
      piece(i, j);
      i = j;
      continue;
    }
    if (!isWs(k) && (j > i || !isWs(c))) {
      j++;
      while (j < n) {
        const x = t.charCodeAt(j);
        if (isWs(x) || isAsciiLetter(x) || isDigit(x)) break;
        j++;
      }
      piece(i, j);
      i = j;
      continue;
    }
    // Whitespace run [i, j).
    j = i + 1;
    while (j < n && isWs(t.charCodeAt(j))) j++;
    if (j < n && j - i > 1) j--;
    piece(i, j);
    i = j;
  }
}

export interface BpeModel {
  /** Merges in rank order as pairs of token ids; token 256+i is merge i. Ids 0..255 are the bytes. */
  merges: [number, number][];
  /** Special tokens appended after the merges: content -> id. */
  special: Record<string, number>;
  pattern: string;
}

export class ByteLevelBpe implements Tokenizer {
  readonly vocabSize: number;
  readonly model: BpeModel;
  private ranks = new Map<number, number>();
  private tokenBytes: Uint8Array[] = [];
  private cache = new Map<string, number[]>();
  private re: RegExp;
  private enc = new TextEncoder();
  private dec = new TextDecoder('utf-8');
  private specialById = new Map<number, string>();
  /** The GPT-2 pattern has a hand-written ASCII splitter (same pieces as the regex, ~2x faster). */
  private fastSplit: boolean;

  constructor(model: BpeModel) {
    this.model = model;
    this.re = new RegExp(model.pattern, 'gu');
    this.fastSplit = model.pattern === GPT2_PATTERN;
    for (let b = 0; b < 256; b++) this.tokenBytes.push(Uint8Array.of(b));
    model.merges.forEach(([a, b], i) => {
      if (a >= 256 + i || b >= 256 + i) throw new Error(`BPE merge ${i} refers to a later token (${a}, ${b})`);
      this.ranks.set(a * PAIR + b, i);
      const x = this.tokenBytes[a];
      const y = this.tokenBytes[b];
      const z = new Uint8Array(x.length + y.length);
      z.set(x);
      z.set(y, x.length);
      this.tokenBytes.push(z);
    });
    let max = 256 + model.merges.length - 1;
    for (const [s, id] of Object.entries(model.special)) {
      this.specialById.set(id, s);
      max = Math.max(max, id);
    }
    this.vocabSize = max + 1;
  }

  tokenId(special: string): number | undefined {
    return this.model.special[special];
  }

  private bpe(piece: string): number[] {
    const bytes = this.enc.encode(piece);
    let syms: number[] = Array.from(bytes);
    while (syms.length > 1) {
      let best = -1;
      let bestRank = Number.MAX_SAFE_INTEGER;
      for (let i = 0; i + 1 < syms.length; i++) {
        const r = this.ranks.get(syms[i] * PAIR + syms[i + 1]);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const [a, b] = this.model.merges[bestRank];
      const z = 256 + bestRank;
      const out: number[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) {
          out.push(z);
          i++;
        } else out.push(syms[i]);
      }
      syms = out;
    }
    return syms;
  }

  encode(text: string): number[] {
    const out: number[] = [];
    this.encodeInto(text, out);
    return out;
  }

  /** Appends ids to out (avoids concatenation in the pipeline's hot loop). */
  encodeInto(text: string, out: number[]): void {
    if (this.fastSplit && !NON_ASCII.test(text)) {
      splitGpt2Ascii(text, (s, e) => this.emit(text.slice(s, e), out));
      return;
    }
    const re = this.re;
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    // biome-ignore lint/suspicious/noAssignInExpressions: regex scan
    while ((m = re.exec(text)) !== null) this.emit(m[0], out);
  }

  private emit(piece: string, out: number[]): void {
    let ids = this.cache.get(piece);
    if (!ids) {
      ids = this.bpe(piece);
      if (this.cache.size > 500_000) this.cache.clear();
      this.cache.set(piece, ids);
    }
    for (let i = 0; i < ids.length; i++) out.push(ids[i]);
  }

  /** UTF-8 bytes of one token (specials as their text). */
  bytesOf(id: number): Uint8Array {
    const s = this.specialById.get(id);
    if (s !== undefined) return this.enc.encode(s);
    const b = this.tokenBytes[id];
    if (!b) throw new Error(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
    return b;
  }

  decode(ids: readonly number[] | Uint32Array): string {
    let n = 0;
    for (const id of ids) n += this.bytesOf(id).length;
    const buf = new Uint8Array(n);
    let o = 0;
    for (const id of ids) {
      const b = this.bytesOf(id);
      buf.set(b, o);
      o += b.length;
    }
    return this.dec.decode(buf);
  }

  tokenString(id: number): string {
    const s = this.specialById.get(id);
    if (s !== undefined) return s;
    return Array.from(this.tokenBytes[id], (b) => BYTE_TO_CHAR[b]).join('');
  }

  /** A Hugging Face `tokenizer.json` (tokenizers >= 0.13 reads it; merges as "a b" strings). */
  toHuggingFace(): Record<string, unknown> {
    const vocab: Record<string, number> = {};
    for (let id = 0; id < 256 + this.model.merges.length; id++) vocab[this.tokenString(id)] = id;
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: Object.entries(this.model.special).map(([content, id]) => ({
        id,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
      normalizer: null,
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: this.model.pattern }, behavior: 'Isolated', invert: false },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
        ],
      },
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges: this.model.merges.map(([a, b]) => `${this.tokenString(a)} ${this.tokenString(b)}`),
      },
    };
  }

  /**
   * Reads a tokenizer.json if it is plain byte-level BPE with one Split regex (what `toHuggingFace` writes);
   * returns null for anything else so the caller falls back to the general library.
   */
  static fromHuggingFace(json: Record<string, unknown>): ByteLevelBpe | null {
    const model = json.model as Record<string, unknown> | undefined;
    const pre = json.pre_tokenizer as Record<string, unknown> | null | undefined;
    if (model?.type !== 'BPE' || json.normalizer || model.byte_fallback || model.continuing_subword_prefix) return null;
    if (pre?.type !== 'Sequence') return null;
    const ps = pre.pretokenizers as Record<string, unknown>[];
    if (ps?.length !== 2 || ps[0].type !== 'Split' || ps[1].type !== 'ByteLevel' || ps[1].use_regex) return null;
    const split = ps[0] as { pattern?: { Regex?: string }; behavior?: string; invert?: boolean };
    if (!split.pattern?.Regex || split.behavior !== 'Isolated' || split.invert) return null;
    const vocab = model.vocab as Record<string, number>;
    const strToId = new Map(Object.entries(vocab));
    for (let b = 0; b < 256; b++) if (strToId.get(BYTE_TO_CHAR[b]) !== b) return null;
    const merges: [number, number][] = [];
    const raw = model.merges as (string | [string, string])[];
    for (let i = 0; i < raw.length; i++) {
      const m = raw[i];
      const [x, y] = typeof m === 'string' ? m.split(' ') : m;
      const a = strToId.get(x);
      const b = strToId.get(y);
      if (a === undefined || b === undefined || strToId.get(x + y) !== 256 + i) return null;
      merges.push([a, b]);
    }
    const special: Record<string, number> = {};
    for (const t of (json.added_tokens as { id: number; content: string }[]) ?? []) special[t.content] = t.id;
    return new ByteLevelBpe({ merges, special, pattern: split.pattern.Regex });
  }
}
