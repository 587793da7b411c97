/**
 * Text cleaning: Unicode normalisation, control characters, whitespace; Gopher-style quality rules
 * (each named, each with its own threshold, any of them disabled with null); PII scrubbing with counts.
 * Everything here is a pure function of (text, config), so `trace` can redo it and check token ids.
 */
import { fmix32, fnv1a, ScratchCounter } from './hash.js';

export interface NormalizeConfig {
  /** Unicode normal form; NFKC folds compatibility characters (full-width letters, ligatures). */
  unicode: 'NFC' | 'NFKC' | 'none';
  /** Remove C0/C1 control characters except tab and newline (CR LF becomes LF). */
  controlChars: boolean;
  /** Collapse runs of spaces/tabs, strip line ends, at most one blank line, trim. */
  whitespace: boolean;
}

/** Quality thresholds; null disables a rule. Names are the drop reasons in reports. */
export interface QualityConfig {
  min_chars: number | null;
  max_chars: number | null;
  min_words: number | null;
  max_words: number | null;
  min_mean_word_length: number | null;
  max_mean_word_length: number | null;
  /** ('#' + '...' + '…') per word (Gopher symbol-to-word ratio). */
  max_symbol_word_ratio: number | null;
  /** Fraction of characters that are digits. */
  max_digit_ratio: number | null;
  /** Fraction of non-space characters that are neither letters, digits nor common punctuation. */
  max_symbol_char_ratio: number | null;
  /** Minimum fraction of words containing a letter. */
  min_alpha_word_ratio: number | null;
  /** Lines starting with a bullet, as a fraction of lines. */
  max_bullet_lines_ratio: number | null;
  /** Lines ending in an ellipsis, as a fraction of lines. */
  max_ellipsis_lines_ratio: number | null;
  /** Fraction of lines that repeat an earlier line. */
  max_dup_line_ratio: number | null;
  /** Characters in repeated lines over all characters. */
  max_dup_line_char_ratio: number | null;
  /** Characters covered by the most frequent n-gram, n = 2, 3, 4 (Gopher top n-gram rule). */
  max_top_ngram_char_ratio: Record<string, number> | null;
  /** Characters in duplicated n-grams over all word characters, n = 5..10 (Gopher). */
  max_dup_ngram_char_ratio: Record<string, number> | null;
}

export interface PiiConfig {
  email: boolean;
  phone: boolean;
  ip: boolean;
  card: boolean;
  /** Replacement per kind; `{kind}` is substituted (default '<email>', '<phone>', ...). */
  replacement: string;
}

export interface CleanConfig {
  normalize: NormalizeConfig;
  quality: QualityConfig;
  pii: PiiConfig;
}

export const DEFAULT_NORMALIZE: NormalizeConfig = { unicode: 'NFC', controlChars: true, whitespace: true };

export const DEFAULT_QUALITY: QualityConfig = {
  min_chars: 1,
  max_chars: 1_000_000,
  min_words: 20,
  max_words: 100_000,
  min_mean_word_length: 3,
  max_mean_word_length: 10,
  max_symbol_word_ratio: 0.1,
  max_digit_ratio: 0.3,
  max_symbol_char_ratio: 0.25,
  min_alpha_word_ratio: 0.8,
  max_bullet_lines_ratio: 0.9,
  max_ellipsis_lines_ratio: 0.3,
  max_dup_line_ratio: 0.3,
  max_dup_line_char_ratio: 0.2,
  max_top_ngram_char_ratio: { '2': 0.2, '3': 0.18, '4': 0.16 },
  max_dup_ngram_char_ratio: { '5': 0.15, '6': 0.14, '7': 0.13, '8': 0.12, '9': 0.11, '10': 0.1 },
};

export const DEFAULT_PII: PiiConfig = { email: true, phone: true, ip: true, card: true, replacement: '<{kind}>' };

export const DEFAULT_CLEAN: CleanConfig = { normalize: DEFAULT_NORMALIZE, quality: DEFAULT_QUALITY, pii: DEFAULT_PII };

// biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200b\ufeff]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: idem
const HAS_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b\ufeff]/;
const NON_ASCII = /[\u0080-\uffff]/;

export function normalizeText(text: string, cfg: NormalizeConfig): string {
  let t = text;
  // normalize() is costly even on ASCII; ASCII is already NFC/NFKC.
  if (cfg.unicode !== 'none' && NON_ASCII.test(t)) t = t.normalize(cfg.unicode);
  if (cfg.controlChars && HAS_CONTROL.test(t)) t = t.replace(/\r\n?/g, '\n').replace(CONTROL, '');
  if (cfg.whitespace) {
    // Patterns match only what changes (a lone space is left alone): most text has nothing to replace.
    t = t.replace(
      /[\t\u00a0\u2000-\u200a\u3000][ \t\u00a0\u2000-\u200a\u3000]*| [ \t\u00a0\u2000-\u200a\u3000]+/g,
      ' ',
    );
    if (t.includes(' \n') || t.includes('\n ')) t = t.replace(/ \n ?|\n /g, '\n');
    if (t.includes('\n\n\n')) t = t.replace(/\n{3,}/g, '\n\n');
    t = t.trim();
  }
  return t;
}

// ---------------------------------------------------------------- PII

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;
const CARD = /(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])/g;
const IPV4 = /(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])/g;
const IPV6 = /(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])/g;
// Not part of a longer run of digit groups (order numbers, card-like numbers that fail Luhn).
const PHONE =
  /(?<![\w+]|\d[ .-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,5}(?!\w|[ .-]\d)/g;

/** Luhn checksum over the digits of s (separators ignored). */
export function luhnValid(s: string): boolean {
  let sum = 0;
  let dbl = false;
  let n = 0;
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) continue;
    n++;
    let d = c;
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return n >= 13 && n <= 19 && sum % 10 === 0;
}

export type PiiCounts = Record<'email' | 'phone' | 'ip' | 'card', number>;

export function emptyPiiCounts(): PiiCounts {
  return { email: 0, phone: 0, ip: 0, card: 0 };
}

/** Replaces PII in text, adding to counts. Cards are checked with Luhn so ids and timestamps survive. */
export function scrubPii(text: string, cfg: PiiConfig, counts: PiiCounts): string {
  let t = text;
  const rep = (k: string) => cfg.replacement.replace('{kind}', k);
  if (cfg.email && t.includes('@')) {
    t = t.replace(EMAIL, () => {
      counts.email++;
      return rep('email');
    });
  }
  if (!/\d/.test(t)) return t;
  if (cfg.card) {
    t = t.replace(CARD, (m) => {
      if (!luhnValid(m)) return m;
      counts.card++;
      return rep('card');
    });
  }
  if (cfg.ip) {
    const f = () => {
      counts.ip++;
      return rep('ip');
    };
    t = t.replace(IPV4, f);
    if (t.includes(':')) t = t.replace(IPV6, f);
  }
  if (cfg.phone) {
    t = t.replace(PHONE, (m) => {
      const digits = m.replace(/\D/g, '').length;
      if (digits < 9 || digits > 15) return m;
      counts.phone++;
      return rep('phone');
    });
  }
  return t;
}

// ---------------------------------------------------------------- quality

const scratch = new ScratchCounter();
let wordStart = new Int32Array(1024);
let wordEnd = new Int32Array(1024);
let wordHash = new Uint32Array(1024);

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 9 || c === 13 || c === 0xa0 || c === 0x3000 || (c >= 0x2000 && c <= 0x200a);
}

function isLetter(c: number): boolean {
  return (
    (c >= 65 && c <= 90) ||
    (c >= 97 && c <= 122) ||
    (c >= 0xc0 && c !== 0xd7 && c !== 0xf7 && c < 0x2000) ||
    c >= 0x3040
  );
}

const ROLL_BASE = 0x01000193;

/**
 * Polynomial hash of word-hash n-grams, mod 2^32, rolled forward one word at a time (O(1) per step);
 * a jump (after a duplicate) recomputes from scratch.
 */
class NgramRoller {
  private h = 0;
  private pos = -2;
  private top: number;
  constructor(readonly g: number) {
    let p = 1;
    for (let j = 1; j < g; j++) p = Math.imul(p, ROLL_BASE);
    this.top = p;
  }
  at(w: number): number {
    if (w === this.pos + 1) {
      this.h = (Math.imul(this.h - Math.imul(wordHash[w - 1], this.top), ROLL_BASE) + wordHash[w + this.g - 1]) | 0;
    } else {
      let h = 0;
      for (let j = 0; j < this.g; j++) h = (Math.imul(h, ROLL_BASE) + wordHash[w + j]) | 0;
      this.h = h;
    }
    this.pos = w;
    return fmix32(this.h);
  }
}

/** Returns the name of the first failing rule, or null when the text passes. */
export function qualityCheck(text: string, q: QualityConfig): string | null {
  const n = text.length;
  if (q.min_chars !== null && n < q.min_chars) return 'min_chars';
  if (q.max_chars !== null && n > q.max_chars) return 'max_chars';
  // One pass over the characters: words (whitespace split), digits, symbols.
  let nw = 0;
  let digits = 0;
  let symbols = 0;
  let nonSpace = 0;
  let alphaWords = 0;
  let wordChars = 0;
  let hashes = 0;
  let i = 0;
  while (i < n) {
    let c = text.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    const s = i;
    let h = 0x811c9dc5;
    let alpha = false;
    for (; i < n; i++) {
      c = text.charCodeAt(i);
      if (isSpace(c)) break;
      nonSpace++;
      if (c >= 48 && c <= 57) digits++;
      else if (isLetter(c)) alpha = true;
      else if (c === 35) hashes++;
      else if (
        !(
          c === 46 ||
          c === 44 ||
          c === 39 ||
          c === 34 ||
          c === 45 ||
          c === 58 ||
          c === 59 ||
          c === 33 ||
          c === 63 ||
          c === 40 ||
          c === 41
        )
      ) {
        symbols++;
      }
      h = Math.imul(h ^ c, 0x01000193);
    }
    if (nw === wordStart.length) {
      const grow = (a: Int32Array) => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      wordStart = grow(wordStart);
      wordEnd = grow(wordEnd);
      const wh = new Uint32Array(wordHash.length * 2);
      wh.set(wordHash);
      wordHash = wh;
    }
    wordStart[nw] = s;
    wordEnd[nw] = i;
    wordHash[nw] = h >>> 0;
    wordChars += i - s;
    if (alpha) alphaWords++;
    nw++;
  }
  if (q.min_words !== null && nw < q.min_words) return 'min_words';
  if (q.max_words !== null && nw > q.max_words) return 'max_words';
  const meanLen = nw ? wordChars / nw : 0;
  if (q.min_mean_word_length !== null && meanLen < q.min_mean_word_length) return 'min_mean_word_length';
  if (q.max_mean_word_length !== null && meanLen > q.max_mean_word_length) return 'max_mean_word_length';
  if (q.max_digit_ratio !== null && n && digits / n > q.max_digit_ratio) return 'max_digit_ratio';
  if (q.max_symbol_char_ratio !== null && nonSpace && symbols / nonSpace > q.max_symbol_char_ratio) {
    return 'max_symbol_char_ratio';
  }
  if (q.min_alpha_word_ratio !== null && nw && alphaWords / nw < q.min_alpha_word_ratio) return 'min_alpha_word_ratio';
  if (q.max_symbol_word_ratio !== null && nw) {
    let ell = 0;
    let p = text.indexOf('...');
    while (p >= 0) {
      ell++;
      p = text.indexOf('...', p + 3);
    }
    p = text.indexOf('\u2026');
    while (p >= 0) {
      ell++;
      p = text.indexOf('\u2026', p + 1);
    }
    if ((hashes + ell) / nw > q.max_symbol_word_ratio) return 'max_symbol_word_ratio';
  }
  // Lines.
  if (
    q.max_bullet_lines_ratio !== null ||
    q.max_ellipsis_lines_ratio !== null ||
    q.max_dup_line_ratio !== null ||
    q.max_dup_line_char_ratio !== null
  ) {
    let lines = 0;
    let bullets = 0;
    let ellipses = 0;
    let dupLines = 0;
    let dupLineChars = 0;
    let start = 0;
    scratch.reset(64);
    while (start <= n) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = n;
      if (end > start) {
        lines++;
        const c0 = text.charCodeAt(start);
        if (c0 === 0x2022 || c0 === 0x2023 || c0 === 0x25cf || c0 === 0x25e6 || c0 === 0x2043 || c0 === 0x2013) {
          bullets++;
        } else if ((c0 === 42 || c0 === 45) && text.charCodeAt(start + 1) === 32) bullets++;
        const cl = text.charCodeAt(end - 1);
        if (cl === 0x2026 || (cl === 46 && end - start >= 3 && text.startsWith('...', end - 3))) ellipses++;
        if (scratch.add(fnv1a(text, start, end)) > 1) {
          dupLines++;
          dupLineChars += end - start;
        }
      }
      start = end + 1;
    }
    if (lines) {
      if (q.max_bullet_lines_ratio !== null && bullets / lines > q.max_bullet_lines_ratio)
        return 'max_bullet_lines_ratio';
      if (q.max_ellipsis_lines_ratio !== null && ellipses / lines > q.max_ellipsis_lines_ratio) {
        return 'max_ellipsis_lines_ratio';
      }
      if (q.max_dup_line_ratio !== null && dupLines / lines > q.max_dup_line_ratio) return 'max_dup_line_ratio';
      if (q.max_dup_line_char_ratio !== null && dupLineChars / n > q.max_dup_line_char_ratio) {
        return 'max_dup_line_char_ratio';
      }
    }
  }
  if (q.max_top_ngram_char_ratio && nw) {
    for (const [k, thr] of Object.entries(q.max_top_ngram_char_ratio)) {
      const g = Number(k);
      if (nw < g) continue;
      scratch.reset(nw);
      let best = 0;
      let bestAt = 0;
      const roll = new NgramRoller(g);
      for (let w = 0; w + g <= nw; w++) {
        const cnt = scratch.add(roll.at(w));
        if (cnt > best) {
          best = cnt;
          bestAt = w;
        }
      }
      if (best > 1) {
        let len = 0;
        for (let j = 0; j < g; j++) len += wordEnd[bestAt + j] - wordStart[bestAt + j];
        if ((best * len) / wordChars > thr) return `max_top_ngram_char_ratio_${g}`;
      }
    }
  }
  if (q.max_dup_ngram_char_ratio && nw) {
    for (const [k, thr] of Object.entries(q.max_dup_ngram_char_ratio)) {
      const g = Number(k);
      if (nw < g) continue;
      scratch.reset(nw);
      let dupChars = 0;
      let w = 0;
      const roll = new NgramRoller(g);
      // datatrove's find_all_duplicate: skip over a repeated n-gram so its characters count once.
      while (w + g <= nw) {
        if (scratch.add(roll.at(w)) > 1) {
          for (let j = 0; j < g; j++) dupChars += wordEnd[w + j] - wordStart[w + j];
          w += g;
        } else w++;
      }
      if (dupChars / wordChars > thr) return `max_dup_ngram_char_ratio_${g}`;
    }
  }
  return null;
}

export interface CleanResult {
  text: string;
  /** null when kept, else the drop reason (a rule name, or 'empty'). */
  drop: string | null;
}

/** normalise -> PII -> quality. PII runs before quality so replaced spans do not count as symbols. */
export function cleanDocument(raw: string, cfg: CleanConfig, pii: PiiCounts): CleanResult {
  let text = normalizeText(raw, cfg.normalize);
  if (!text) return { text, drop: 'empty' };
  text = scrubPii(text, cfg.pii, pii);
  return { text, drop: qualityCheck(text, cfg.quality) };
}
