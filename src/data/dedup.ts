/**
 * Exact and near-duplicate removal in one streaming pass, first occurrence kept.
 *
 * exact: sha1 of the text lower-cased with whitespace collapsed (64 bits kept) in a Hash64Map.
 * near:  MinHash over word n-gram shingles (words = runs of letters/digits, lower-cased), LSH with `bands`
 *        bands of permutations/bands rows. A document's band keys are looked up; each candidate (always an
 *        earlier kept document) is verified by the signature-estimated Jaccard >= threshold, so LSH only
 *        proposes and the threshold decides. Kept documents store 16-bit minhash values (b-bit minhash:
 *        the 1/65536 collision bias is negligible) and their band keys: O(kept docs x (2P + 12B)) bytes,
 *        never texts. Duplicates join the cluster of the representative they matched.
 */
import { createHash } from 'node:crypto';
import { fmix32, Hash64Map, mulberry32 } from './hash.js';

export interface DedupConfig {
  exact: boolean;
  near: boolean;
  /** Jaccard threshold on shingle sets. */
  threshold: number;
  /** Words per shingle. */
  shingle: number;
  permutations: number;
  bands: number;
  seed: number;
}

export const DEFAULT_DEDUP: DedupConfig = {
  exact: true,
  near: true,
  threshold: 0.8,
  shingle: 5,
  permutations: 128,
  bands: 16,
  seed: 1,
};

export function validateDedup(c: DedupConfig): void {
  if (c.permutations % c.bands !== 0) {
    throw new Error(`dedup: permutations (${c.permutations}) must be a multiple of bands (${c.bands})`);
  }
  if (!(c.threshold > 0 && c.threshold <= 1)) throw new Error(`dedup: threshold ${c.threshold} is not in (0, 1]`);
  if (c.shingle < 1) throw new Error(`dedup: shingle ${c.shingle} must be >= 1`);
}

/** What `decide` needs of a document: 64-bit content hash, 16-bit minhash signature, LSH band keys. */
export interface Prepared {
  ehi: number;
  elo: number;
  sig: Uint16Array | null;
  keys: Uint32Array | null;
}

export interface DupResult {
  reason: 'exact' | 'near';
  /** Kept-document id of the representative. */
  of: number;
  jaccard: number;
}

/** The 1-in-2^32 chance that candidates' band hashes collide is covered by verification. */
export class Deduper {
  readonly cfg: DedupConfig;
  private exactIndex = new Hash64Map(1 << 16);
  private bandIndex = new Hash64Map(1 << 16);
  private a: Uint32Array;
  private b: Uint32Array;
  private sig: Uint32Array;
  private sigs = new Uint16Array(0);
  private wordHashes = new Uint32Array(1024);
  /** Kept documents so far (ids are 0..kept-1). */
  kept = 0;

  constructor(cfg: DedupConfig) {
    validateDedup(cfg);
    this.cfg = cfg;
    const rnd = mulberry32(cfg.seed * 7919 + 17);
    const P = cfg.permutations;
    this.a = new Uint32Array(P);
    this.b = new Uint32Array(P);
    for (let i = 0; i < P; i++) {
      this.a[i] = ((rnd() * 0x100000000) | 1) >>> 0;
      this.b[i] = (rnd() * 0x100000000) >>> 0;
    }
    this.sig = new Uint32Array(P);
    if (cfg.near) this.sigs = new Uint16Array(P * 1024);
  }

  get memoryBytes(): number {
    return this.exactIndex.bytes + this.bandIndex.bytes + this.sigs.byteLength;
  }

  /** Shingle-set MinHash of text into this.sig (lower-cased words, n-gram shingles). */
  signature(lower: string): Uint32Array {
    const P = this.cfg.permutations;
    const sig = this.sig;
    sig.fill(0xffffffff);
    // Words: runs of ASCII letters/digits or any non-ASCII character that is not whitespace/punctuation.
    let nw = 0;
    const n = lower.length;
    let i = 0;
    while (i < n) {
      let c = lower.charCodeAt(i);
      const word =
        (c >= 97 && c <= 122) ||
        (c >= 48 && c <= 57) ||
        (c >= 0xc0 && c !== 0x2019 && !(c >= 0x2000 && c <= 0x206f) && c !== 0x3000);
      if (!word) {
        i++;
        continue;
      }
      let h = 0x811c9dc5;
      while (i < n) {
        c = lower.charCodeAt(i);
        if (
          !(
            (c >= 97 && c <= 122) ||
            (c >= 48 && c <= 57) ||
            (c >= 0xc0 && c !== 0x2019 && !(c >= 0x2000 && c <= 0x206f) && c !== 0x3000)
          )
        )
          break;
        h = Math.imul(h ^ c, 0x01000193);
        i++;
      }
      if (nw === this.wordHashes.length) {
        const g = new Uint32Array(nw * 2);
        g.set(this.wordHashes);
        this.wordHashes = g;
      }
      this.wordHashes[nw++] = h >>> 0;
    }
    const k = Math.min(this.cfg.shingle, Math.max(nw, 1));
    const wh = this.wordHashes;
    const a = this.a;
    const b = this.b;
    for (let w = 0; w + k <= Math.max(nw, k); w++) {
      let x = 0x9747b28c;
      for (let j = 0; j < k; j++) x = Math.imul(x ^ (nw ? wh[w + j] : 0), 0x9e3779b1) ^ (x >>> 15);
      x = fmix32(x);
      for (let p = 0; p < P; p++) {
        const v = (Math.imul(a[p], x) + b[p]) >>> 0;
        if (v < sig[p]) sig[p] = v;
      }
    }
    return sig;
  }

  /** The pure half of `check`: hashes, 16-bit signature and band keys (runs in worker threads). */
  prepare(text: string): Prepared {
    const lower = text.toLowerCase();
    let ehi = 0;
    let elo = 0;
    if (this.cfg.exact) {
      const d = createHash('sha1')
        .update(lower.replace(/\s\s+|[^\S ]/g, ' ').trim())
        .digest(); // runs -> one space; lone spaces are left alone (fast)
      ehi = d.readUInt32LE(0);
      elo = d.readUInt32LE(4);
    }
    if (!this.cfg.near) return { ehi, elo, sig: null, keys: null };
    const P = this.cfg.permutations;
    const B = this.cfg.bands;
    const R = P / B;
    const full = this.signature(lower);
    const sig = new Uint16Array(P);
    for (let p = 0; p < P; p++) sig[p] = full[p] >>> 16;
    const keys = new Uint32Array(2 * B);
    for (let band = 0; band < B; band++) {
      let h1 = 0x12345678 ^ Math.imul(band + 1, 0x27d4eb2d);
      let h2 = 0x9abcdef0 ^ band;
      for (let r = 0; r < R; r++) {
        const v = full[band * R + r];
        h1 = fmix32(h1 ^ v);
        h2 = Math.imul(h2 ^ v, 0x01000193) + r;
      }
      keys[2 * band] = h1;
      keys[2 * band + 1] = (h2 >>> 0) ^ band;
    }
    return { ehi, elo, sig, keys };
  }

  /** The stateful half: decides against earlier kept documents and records this one when kept. */
  decide(p: Prepared): DupResult | null {
    if (this.cfg.exact) {
      const prev = this.exactIndex.get(p.ehi, p.elo);
      if (prev >= 0) return { reason: 'exact', of: prev, jaccard: 1 };
    }
    const id = this.kept;
    if (this.cfg.near && p.sig && p.keys) {
      const P = this.cfg.permutations;
      const B = this.cfg.bands;
      const { sig, keys } = p;
      let best = -1;
      let bestJ = 0;
      for (let band = 0; band < B; band++) {
        const cand = this.bandIndex.get(keys[2 * band], keys[2 * band + 1]);
        if (cand >= 0 && cand !== best) {
          let same = 0;
          const off = cand * P;
          for (let q = 0; q < P; q++) if (this.sigs[off + q] === sig[q]) same++;
          const j = same / P;
          if (j >= this.cfg.threshold && j > bestJ) {
            best = cand;
            bestJ = j;
          }
        }
      }
      if (best >= 0) return { reason: 'near', of: best, jaccard: bestJ };
      if ((id + 1) * P > this.sigs.length) {
        const g = new Uint16Array(this.sigs.length * 2);
        g.set(this.sigs);
        this.sigs = g;
      }
      this.sigs.set(sig, id * P);
      for (let band = 0; band < B; band++) this.bandIndex.setIfAbsent(keys[2 * band], keys[2 * band + 1], id);
    }
    if (this.cfg.exact) this.exactIndex.setIfAbsent(p.ehi, p.elo, id);
    this.kept++;
    return null;
  }

  /** Checks a document and records it when kept. Returns null when kept (its id is kept-1 after the call). */
  check(text: string): DupResult | null {
    return this.decide(this.prepare(text));
  }
}

/** Exact Jaccard of word-shingle sets (tests and diagnostics; allocates). */
export function shingleJaccard(x: string, y: string, k = 5): number {
  const sh = (s: string) => {
    const w = s.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
    const set = new Set<string>();
    for (let i = 0; i + k <= Math.max(w.length, k); i++) set.add(w.slice(i, i + k).join(' '));
    return set;
  };
  const A = sh(x);
  const B = sh(y);
  let inter = 0;
  for (const s of A) if (B.has(s)) inter++;
  return inter / (A.size + B.size - inter || 1);
}
