/**
 * Synthetic corpora with known ground truth, for tests and benchmarks: pseudo-word documents (Zipf word
 * frequencies so BPE has structure to learn), plus exact duplicates, near duplicates (a few words changed, case
 * and whitespace altered), low-quality documents, PII and malformed lines, at stated rates.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { fmix32 } from './hash.js';

/**
 * sfc32 (period >= 2^32, in practice ~2^127): mulberry32's single 2^32 cycle makes streams of nearby seeds
 * overlap once each file takes hundreds of millions of draws, which repeated whole documents across files.
 */
function sfc32(seed: number): () => number {
  let a = fmix32(seed ^ 0x9e3779b9);
  let b = fmix32(seed + 0x85ebca6b);
  let c = fmix32(seed ^ 0xc2b2ae35);
  let d = 1;
  const next = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 15; i++) next();
  return next;
}

export interface CorpusOptions {
  seed?: number;
  /** Seed of the pseudo-word vocabulary (default 1: every file of a corpus shares one language). */
  vocabSeed?: number;
  /** Fractions of emitted lines. */
  exactDupRate?: number;
  nearDupRate?: number;
  junkRate?: number;
  piiRate?: number;
  malformedRate?: number;
  minWords?: number;
  maxWords?: number;
  /** Words changed in a near duplicate. */
  nearEdits?: number;
}

export type DocKind = 'distinct' | 'exact' | 'near' | 'junk' | 'pii' | 'malformed';

const SYL = [
  'ka',
  'to',
  'ri',
  'en',
  'sa',
  'mo',
  'lu',
  'ne',
  'di',
  'po',
  'an',
  've',
  'ti',
  'ra',
  'el',
  'or',
  'ba',
  'ku',
  'mi',
  'se',
  'the',
  'ing',
  'qu',
  'st',
];

export class CorpusGenerator {
  private rnd: () => number;
  readonly vocab: string[];
  private history: string[] = [];
  private o: Required<CorpusOptions>;
  docs = 0;

  constructor(opts: CorpusOptions = {}) {
    this.o = {
      seed: 1,
      vocabSeed: 1,
      exactDupRate: 0.03,
      nearDupRate: 0.03,
      junkRate: 0.02,
      piiRate: 0.02,
      malformedRate: 0.001,
      minWords: 80,
      maxWords: 600,
      nearEdits: 2,
      ...opts,
    };
    this.rnd = sfc32(this.o.vocabSeed);
    const seen = new Set<string>();
    this.vocab = [];
    while (this.vocab.length < 20000) {
      const n = 1 + Math.floor(this.rnd() * 4);
      let w = '';
      for (let i = 0; i < n; i++) w += SYL[Math.floor(this.rnd() * SYL.length)];
      if (!seen.has(w)) {
        seen.add(w);
        this.vocab.push(w);
      }
    }
    this.rnd = sfc32(this.o.seed);
  }

  private word(): string {
    // Zipf-like: rank ~ u^3 concentrates mass on frequent words.
    const u = this.rnd();
    return this.vocab[Math.floor(u * u * u * this.vocab.length)];
  }

  /** A fresh document: sentences in paragraphs. */
  distinct(): string {
    const n = this.o.minWords + Math.floor(this.rnd() * (this.o.maxWords - this.o.minWords));
    const parts: string[] = [];
    let sentence = 0;
    for (let i = 0; i < n; i++) {
      let w = this.word();
      if (sentence === 0) w = w[0].toUpperCase() + w.slice(1);
      sentence++;
      if (sentence > 6 && this.rnd() < 0.12) {
        w += this.rnd() < 0.1 ? '?' : '.';
        sentence = 0;
        if (this.rnd() < 0.15) w += '\n';
      } else if (this.rnd() < 0.05) w += ',';
      parts.push(w);
    }
    return `${parts.join(' ').replace(/\n /g, '\n')}.`;
  }

  near(base: string): string {
    const words = base.split(' ');
    for (let e = 0; e < this.o.nearEdits; e++) words[Math.floor(this.rnd() * words.length)] = this.word();
    let t = words.join(' ');
    const r = this.rnd();
    if (r < 0.3) t = t.toUpperCase();
    else if (r < 0.6) t = t.replace(/ /g, () => (this.rnd() < 0.05 ? '   ' : ' '));
    return t;
  }

  junk(): string {
    const r = this.rnd();
    if (r < 0.4) return `${this.word()} ${this.word()}`;
    if (r < 0.7) return Array.from({ length: 40 }, () => '#### $$$ %%% &&& ***').join(' ');
    return Array.from({ length: 30 }, () => `${this.word()} ${this.word()} ${this.word()}...`).join('\n');
  }

  pii(): string {
    const d = this.distinct().split(' ');
    const at = Math.floor(d.length / 2);
    d.splice(
      at,
      0,
      'contact',
      'jane.doe@example.com',
      'or',
      '+1',
      '(555)',
      '123-4567,',
      'card',
      '4111',
      '1111',
      '1111',
      '1111',
      'from',
      '192.168.1.20',
    );
    return d.join(' ');
  }

  /** One JSONL line (with its newline) and what it is. */
  line(): [string, DocKind] {
    const r = this.rnd();
    const o = this.o;
    let kind: DocKind = 'distinct';
    let text: string;
    if (r < o.malformedRate) return [`{"text": "broken ${this.word()}\n`, 'malformed'];
    if (r < o.malformedRate + o.exactDupRate && this.history.length) {
      kind = 'exact';
      text = this.history[Math.floor(this.rnd() * this.history.length)];
    } else if (r < o.malformedRate + o.exactDupRate + o.nearDupRate && this.history.length) {
      kind = 'near';
      text = this.near(this.history[Math.floor(this.rnd() * this.history.length)]);
    } else if (r < o.malformedRate + o.exactDupRate + o.nearDupRate + o.junkRate) {
      kind = 'junk';
      text = this.junk();
    } else if (r < o.malformedRate + o.exactDupRate + o.nearDupRate + o.junkRate + o.piiRate) {
      kind = 'pii';
      text = this.pii();
    } else {
      text = this.distinct();
      if (this.history.length < 256) this.history.push(text);
      else if (this.rnd() < 0.02) this.history[Math.floor(this.rnd() * 256)] = text;
    }
    this.docs++;
    return [`${JSON.stringify({ id: this.docs, text })}\n`, kind];
  }
}

/** Writes about `bytes` of JSONL to path; returns counts per kind. */
export function writeCorpus(
  path: string,
  bytes: number,
  opts: CorpusOptions = {},
): Record<DocKind, number> & { bytes: number } {
  const g = new CorpusGenerator(opts);
  const counts = { distinct: 0, exact: 0, near: 0, junk: 0, pii: 0, malformed: 0, bytes: 0 };
  const fd = openSync(path, 'w');
  let buf: string[] = [];
  let pending = 0;
  while (counts.bytes < bytes) {
    const [l, k] = g.line();
    counts[k]++;
    buf.push(l);
    pending += l.length;
    counts.bytes += l.length;
    if (pending > 1 << 22) {
      writeSync(fd, buf.join(''));
      buf = [];
      pending = 0;
    }
  }
  writeSync(fd, buf.join(''));
  closeSync(fd);
  return counts;
}
