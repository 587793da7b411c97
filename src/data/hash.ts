/**
 * Small, fast hashes and an open-addressing table keyed by 64-bit hashes (two u32 halves), so
 * dedup indexes hold millions of entries in typed arrays instead of JS Maps (bounded, predictable RAM).
 */

/** murmur3 finaliser: a bijective 32-bit mix; spreads FNV's weak low bits before minhash permutations. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a over UTF-16 code units of s[start, end). */
export function fnv1a(s: string, start = 0, end = s.length, seed = 0x811c9dc5): number {
  let h = seed;
  for (let i = start; i < end; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Deterministic 32-bit PRNG (mulberry32); the pipeline's only randomness, always seeded. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Map from a 64-bit key (hi, lo) to a non-negative int32 value. Linear probing, grows at load 1/2.
 * (0,0) is the empty marker, so keys are stored with lo |= 1 when both halves are zero.
 */
export class Hash64Map {
  private hi: Uint32Array;
  private lo: Uint32Array;
  private val: Int32Array;
  private mask: number;
  size = 0;

  constructor(initialCapacity = 1 << 16) {
    let cap = 1;
    while (cap < initialCapacity * 2) cap <<= 1;
    this.hi = new Uint32Array(cap);
    this.lo = new Uint32Array(cap);
    this.val = new Int32Array(cap);
    this.mask = cap - 1;
  }

  get bytes(): number {
    return this.hi.byteLength * 3;
  }

  private slot(hi: number, lo: number): number {
    let i = fmix32(hi ^ Math.imul(lo, 0x9e3779b1)) & this.mask;
    for (;;) {
      const h = this.hi[i];
      const l = this.lo[i];
      if ((h === 0 && l === 0) || (h === hi && l === lo)) return i;
      i = (i + 1) & this.mask;
    }
  }

  get(hi: number, lo: number): number {
    hi >>>= 0;
    lo >>>= 0;
    if (hi === 0 && lo === 0) lo = 1;
    const i = this.slot(hi, lo);
    return this.hi[i] === 0 && this.lo[i] === 0 ? -1 : this.val[i];
  }

  /** Inserts if absent; returns the existing value, or -1 when inserted. */
  setIfAbsent(hi: number, lo: number, value: number): number {
    hi >>>= 0;
    lo >>>= 0;
    if (hi === 0 && lo === 0) lo = 1;
    const i = this.slot(hi, lo);
    if (!(this.hi[i] === 0 && this.lo[i] === 0)) return this.val[i];
    this.hi[i] = hi;
    this.lo[i] = lo;
    this.val[i] = value;
    if (++this.size * 2 > this.mask + 1) this.grow();
    return -1;
  }

  private grow(): void {
    const { hi, lo, val } = this;
    const cap = (this.mask + 1) * 2;
    this.hi = new Uint32Array(cap);
    this.lo = new Uint32Array(cap);
    this.val = new Int32Array(cap);
    this.mask = cap - 1;
    for (let j = 0; j < hi.length; j++) {
      if (hi[j] === 0 && lo[j] === 0) continue;
      const i = this.slot(hi[j], lo[j]);
      this.hi[i] = hi[j];
      this.lo[i] = lo[j];
      this.val[i] = val[j];
    }
  }
}

/**
 * A reusable per-document counter of 32-bit hashes: generation stamps avoid clearing the arrays
 * between documents, so the Gopher n-gram statistics cost O(words) with no allocation.
 */
export class ScratchCounter {
  private keys = new Uint32Array(1 << 12);
  private counts = new Int32Array(1 << 12);
  private gen = new Uint32Array(1 << 12);
  private cur = 0;
  private mask = (1 << 12) - 1;

  reset(expected: number): void {
    if (expected * 2 > this.mask + 1) {
      let cap = this.mask + 1;
      while (cap < expected * 2) cap <<= 1;
      this.keys = new Uint32Array(cap);
      this.counts = new Int32Array(cap);
      this.gen = new Uint32Array(cap);
      this.mask = cap - 1;
      this.cur = 0;
    }
    this.cur++;
    if (this.cur === 0xffffffff) {
      this.gen.fill(0);
      this.cur = 1;
    }
  }

  /** Adds 1 to key's count and returns the new count. */
  add(key: number): number {
    let i = fmix32(key) & this.mask;
    for (;;) {
      if (this.gen[i] !== this.cur) {
        this.gen[i] = this.cur;
        this.keys[i] = key;
        this.counts[i] = 1;
        return 1;
      }
      if (this.keys[i] === key) return ++this.counts[i];
      i = (i + 1) & this.mask;
    }
  }
}
