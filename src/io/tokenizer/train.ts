/**
 * Byte-level BPE training (the classic algorithm): count regex pre-tokens, then repeatedly merge the most
 * frequent adjacent pair. Pair counts are updated incrementally for the words that contain the merged pair
 * only, and the best pair comes from a max-heap with lazy invalidation, so a few MB train in seconds.
 * Ties break on the smaller (left id, right id), so training is deterministic.
 */
import { ByteLevelBpe, GPT2_PATTERN } from './bpe.js';

export interface TrainOptions {
  vocabSize: number;
  /** Pairs seen fewer times stop training early. */
  minFrequency?: number;
  specialTokens?: string[];
  pattern?: string;
}

const PAIR = 1 << 21;

class MaxHeap {
  private c: number[] = [];
  private k: number[] = [];
  get size(): number {
    return this.c.length;
  }
  private less(i: number, j: number): boolean {
    // "i below j": smaller count, or equal count and larger key.
    return this.c[i] < this.c[j] || (this.c[i] === this.c[j] && this.k[i] > this.k[j]);
  }
  private swap(i: number, j: number): void {
    [this.c[i], this.c[j]] = [this.c[j], this.c[i]];
    [this.k[i], this.k[j]] = [this.k[j], this.k[i]];
  }
  push(count: number, key: number): void {
    this.c.push(count);
    this.k.push(key);
    let i = this.c.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(p, i)) break;
      this.swap(p, i);
      i = p;
    }
  }
  pop(): [number, number] {
    const top: [number, number] = [this.c[0], this.k[0]];
    const lc = this.c.pop()!;
    const lk = this.k.pop()!;
    if (this.c.length) {
      this.c[0] = lc;
      this.k[0] = lk;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.c.length && this.less(m, l)) m = l;
        if (r < this.c.length && this.less(m, r)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

/** Pre-token counts of a text sample (call repeatedly to stream a sample in). */
export class PreTokenCounter {
  readonly counts = new Map<string, number>();
  private re: RegExp;
  bytes = 0;
  constructor(pattern = GPT2_PATTERN) {
    this.re = new RegExp(pattern, 'gu');
  }
  add(text: string): void {
    this.bytes += text.length;
    for (const m of text.matchAll(this.re)) this.counts.set(m[0], (this.counts.get(m[0]) ?? 0) + 1);
  }
}

export function trainBpe(sample: Iterable<string> | PreTokenCounter, opts: TrainOptions): ByteLevelBpe {
  const pattern = opts.pattern ?? GPT2_PATTERN;
  const specials = opts.specialTokens ?? ['<|endoftext|>'];
  const numMerges = opts.vocabSize - 256 - specials.length;
  if (numMerges < 0)
    throw new Error(`tokenizer vocab_size ${opts.vocabSize} is below 256 bytes + ${specials.length} special tokens`);
  if (opts.vocabSize > PAIR) throw new Error(`tokenizer vocab_size ${opts.vocabSize} exceeds ${PAIR}`);
  const minFreq = opts.minFrequency ?? 2;
  let counter: PreTokenCounter;
  if (sample instanceof PreTokenCounter) counter = sample;
  else {
    counter = new PreTokenCounter(pattern);
    for (const t of sample) counter.add(t);
  }
  const enc = new TextEncoder();
  const words: Int32Array[] = [];
  const freq: number[] = [];
  for (const [w, c] of counter.counts) {
    const b = enc.encode(w);
    if (b.length < 2) continue;
    words.push(Int32Array.from(b));
    freq.push(c);
  }
  const pairCount = new Map<number, number>();
  const where = new Map<number, number[]>();
  for (let wi = 0; wi < words.length; wi++) {
    const w = words[wi];
    for (let i = 0; i + 1 < w.length; i++) {
      const key = w[i] * PAIR + w[i + 1];
      pairCount.set(key, (pairCount.get(key) ?? 0) + freq[wi]);
      let l = where.get(key);
      if (!l) {
        l = [];
        where.set(key, l);
      }
      if (l[l.length - 1] !== wi) l.push(wi);
    }
  }
  const heap = new MaxHeap();
  for (const [k, c] of pairCount) heap.push(c, k);
  const merges: [number, number][] = [];
  const touched = new Set<number>();
  while (merges.length < numMerges && heap.size) {
    const [c, key] = heap.pop();
    if (pairCount.get(key) !== c) continue;
    if (c < minFreq) break;
    const a = Math.floor(key / PAIR);
    const b = key % PAIR;
    const z = 256 + merges.length;
    merges.push([a, b]);
    touched.clear();
    const ws = where.get(key) ?? [];
    where.delete(key);
    for (const wi of ws) {
      const w = words[wi];
      let has = false;
      for (let i = 0; i + 1 < w.length; i++) {
        if (w[i] === a && w[i + 1] === b) {
          has = true;
          break;
        }
      }
      if (!has) continue;
      const f = freq[wi];
      for (let i = 0; i + 1 < w.length; i++) {
        const k = w[i] * PAIR + w[i + 1];
        pairCount.set(k, pairCount.get(k)! - f);
        touched.add(k);
      }
      const out: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          out.push(z);
          i++;
        } else out.push(w[i]);
      }
      const nw = Int32Array.from(out);
      words[wi] = nw;
      for (let i = 0; i + 1 < nw.length; i++) {
        const k = nw[i] * PAIR + nw[i + 1];
        pairCount.set(k, (pairCount.get(k) ?? 0) + f);
        touched.add(k);
        if (nw[i] === z || nw[i + 1] === z) {
          let l = where.get(k);
          if (!l) {
            l = [];
            where.set(k, l);
          }
          if (l[l.length - 1] !== wi) l.push(wi);
        }
      }
    }
    for (const k of touched) {
      const n = pairCount.get(k)!;
      if (n <= 0) pairCount.delete(k);
      else if (k !== key) heap.push(n, k);
    }
    pairCount.delete(key);
  }
  const special: Record<string, number> = {};
  specials.forEach((s, i) => {
    special[s] = 256 + merges.length + i;
  });
  return new ByteLevelBpe({ merges, special, pattern });
}
