/**
 * The two-pass int8 MLA decode (decodeInt8Scores.wgsl.ts, then decodeInt8Pv.wgsl.ts, then the merge) run in plain
 * TS, fragment by fragment, with the offsets of int8TwoPassPlan.ts and the software subgroup-matrix loads,
 * multiplies and stores of int8SgmEmulate.ts (int8 operands read as the H200's Dawn does: offsets and strides in
 * 32-bit words). Lavapipe has no subgroup matrices: this is how the kernels' work layout is checked against the
 * two-pass reference (int8LazyReference.ts, TWO_PASS_PV) on every machine; the kernels themselves on the device
 * (bench mla's check). f32 arithmetic rounded with Math.fround where the kernels round; exp2 exact here.
 */
import type { MlaInt8Dims } from './int8Reference.js';
import { lazyDither } from './int8LazyReference.js';
import { int8QueryRowsReference, load, mma, storeTile } from './int8SgmEmulate.js';
import { type MlaInt8TwoPassPlan, scoresRoles, TWO_PASS_HW, TWO_PASS_QMAX, twoPassFrags } from './int8TwoPassPlan.js';

const f = Math.fround;

/** The first word of sequence b's token t in the paged pool of RW-word rows: the kernels' rowOf (chunkEntry.wgsl.ts) x RW. */
function pagedRowOf(pageTable: Int32Array, d: MlaInt8Dims, RW: number) {
  const { pageSize, maxPages } = d;
  return (b: number, t: number) =>
    (pageTable[b * maxPages + Math.floor(t / pageSize)] * pageSize + (t % pageSize)) * RW;
}

/** What kernel A leaves: scores [B, HP, Tpad] and stats [B, nBlk, SA] (NaN where it writes nothing). */
export function emulateScores(
  qFull: Float32Array,
  pool: Int32Array,
  pageTable: Int32Array,
  lengths: Int32Array,
  d: MlaInt8Dims,
  pl: MlaInt8TwoPassPlan,
  chunkLenA: number,
): { scores: Float32Array; stats: Float32Array; Tpad: number; nBlk: number } {
  const { B } = d;
  const { RW, SW, TT, HP, SA, NG } = pl;
  if (chunkLenA % TT) throw new Error(`emulateScores: chunkLen ${chunkLenA} is not a multiple of ${TT}`);
  // The diagnostic skips compute wrong outputs by design (prefetch and stageSpread change no value: not modelled).
  if (pl.skip.length) throw new Error(`emulateScores: the diagnostic skip (${pl.skip.join(', ')}) has no emulation`);
  const F = twoPassFrags(pl);
  const qr = int8QueryRowsReference(qFull, d, HP, d.scale * Math.LOG2E);
  const qrF = new Float32Array(qr.buffer);
  const maxLen = Math.max(1, ...lengths);
  const chunks = Math.ceil(maxLen / chunkLenA);
  const Tpad = chunks * chunkLenA;
  const nBlk = Tpad / TT;
  const scores = new Float32Array(B * HP * Tpad).fill(Number.NaN);
  const stats = new Float32Array(B * nBlk * SA).fill(Number.NaN);
  const kv = new Int32Array(pl.KV1);
  const kvF = new Float32Array(kv.buffer);
  const sc = new Int32Array(pl.SCW);
  const rowOf = pagedRowOf(pageTable, d, RW);
  for (let b = 0; b < B; b++)
    for (let chunk = 0; chunk < chunks; chunk++)
      for (let g = 0; g < NG; g++) {
        const t0 = chunk * chunkLenA;
        const t1 = Math.min(lengths[b], t0 + chunkLenA);
        for (let tb = t0; tb < t1; tb += TT) {
          kv.fill(0);
          for (let t = tb; t < Math.min(t1, tb + TT); t++)
            kv.set(pool.subarray(rowOf(b, t), rowOf(b, t) + RW), (t - tb) * RW);
          sc.fill(-0x80000000);
          for (let sgi = 0; sgi < pl.NSA; sgi++) {
            const { mh, kh, nts } = scoresRoles(sgi, pl.NSA, pl.fullK);
            for (const nt of nts) {
              // One staged block here (kvb 0): the kernel's second buffer (fullK) holds the next block's rows.
              const env = { b, g, mh, kh, nt, kvb: 0 };
              for (const [part, from, to] of [
                [0, 0, F.lq],
                [1, F.lq, F.query.length],
              ] as const) {
                const acc = new Int32Array(256);
                for (let i = from; i < to; i++)
                  mma(load(qr, F.query[i], env, 16, 32), load(kv, F.key(i), env, 32, 16), acc);
                storeTile(sc, F.tile(part), env, acc, true);
              }
            }
          }
          const sb = (b * nBlk + tb / TT) * SA;
          let vx = 0;
          for (let t = 0; t < TT; t++) vx = Math.max(vx, kvF[t * RW + SW]);
          if (g === 0) stats[sb + HP] = vx;
          for (let hq = 0; hq < TWO_PASS_HW; hq++) {
            const qh = g * TWO_PASS_HW + hq;
            const sqx = qrF[(b * HP + qh) * RW + SW];
            const sqy = qrF[(b * HP + qh) * RW + SW + 1];
            let mx = -3.0e38;
            for (let t = 0; t < TT; t++) {
              const sum = (part: 0 | 1) => {
                let a = 0;
                for (let kh = 0; kh < pl.KP; kh++) a += sc[F.scoreWord(part, kh, hq, t)];
                return a;
              };
              const aL = sum(0);
              const aR = sum(1);
              const s =
                tb + t < t1
                  ? f(f(f(aL) * f(sqx * kvF[t * RW + SW])) + f(f(aR) * f(sqy * kvF[t * RW + SW + 1])))
                  : f(-3.0e38);
              scores[(b * HP + qh) * Tpad + tb + t] = s;
              mx = Math.max(mx, s);
            }
            stats[sb + qh] = mx;
          }
        }
      }
  return { scores, stats, Tpad, nBlk };
}

/**
 * o_lat [B, H, Rv] as the two kernels compute it: scores with `chunkLenA` rows a workgroup, P x V with `chunkLenB`
 * rows a chunk, the chunks' partials merged as merge.wgsl.ts does (in f64).
 */
export function mlaDecodeInt8TwoPassEmulate(
  qFull: Float32Array,
  pool: Int32Array,
  pageTable: Int32Array,
  lengths: Int32Array,
  d: MlaInt8Dims,
  pl: MlaInt8TwoPassPlan,
  chunkLenA: number,
  chunkLenB: number,
): Float32Array {
  const { B, H, Rv } = d;
  const { RW, SW, TT, HP, SA, NG, CS, NSB, CFS, WC, KSB, NCFW } = pl;
  if (chunkLenB % TT) throw new Error(`mlaDecodeInt8TwoPassEmulate: chunkLen ${chunkLenB} is not a multiple of ${TT}`);
  const { scores, stats, Tpad, nBlk } = emulateScores(qFull, pool, pageTable, lengths, d, pl, chunkLenA);
  const F = twoPassFrags(pl);
  const poolF = new Float32Array(pool.buffer, pool.byteOffset, pool.length);
  const rowOf = pagedRowOf(pageTable, d, RW);
  const maxLen = Math.max(1, ...lengths);
  const chunks = Math.ceil(maxLen / chunkLenB);
  const MH = TWO_PASS_HW / 16;
  const out = new Float32Array(B * H * Rv);
  const kv = new Int32Array(pl.KVB);
  const pw = new Int32Array(pl.NB * 2 * TWO_PASS_HW * (TT / 4));
  for (let b = 0; b < B; b++) {
    const parts: { m: Float32Array; l: Float32Array; o: Float32Array }[] = [];
    for (let chunk = 0; chunk < chunks; chunk++) {
      const t0 = chunk * chunkLenB;
      const t1 = Math.min(lengths[b], t0 + chunkLenB);
      const mOut = new Float32Array(H);
      const lOut = new Float32Array(H);
      const oOut = new Float32Array(H * Rv);
      for (let gg = 0; gg < NG; gg++) {
        // The chunk's max per head and largest c_kv scale, from kernel A's block stats.
        const m = new Float32Array(TWO_PASS_HW).fill(-3.0e38);
        let sRef = 0;
        for (let i = Math.floor(t0 / TT); i < Math.ceil(t1 / TT); i++) {
          const sb = (b * nBlk + i) * SA;
          for (let h = 0; h < TWO_PASS_HW; h++) m[h] = Math.max(m[h], stats[sb + gg * TWO_PASS_HW + h]);
          sRef = Math.max(sRef, stats[sb + HP]);
        }
        const xScale = sRef > 0 ? f(1 / sRef) : 0;
        const unit = f(sRef * f(1 / TWO_PASS_QMAX));
        const l = new Float64Array(TWO_PASS_HW);
        for (let cs = 0; cs < CS; cs++) {
          const acc = Array.from({ length: NSB }, () =>
            Array.from({ length: MH * CFS * 2 }, () => new Int32Array(256)),
          );
          const ai = (m: number, j: number, dg: number) => (m * CFS + j) * 2 + dg;
          for (let tb = t0; tb < t1; tb += pl.TS) {
            pw.fill(0);
            kv.fill(0);
            for (let t = 0; t < pl.TS; t++) {
              const valid = tb + t < t1;
              const sl = valid ? poolF[rowOf(b, tb + t) + SW] : 0;
              if (valid) kv.set(pool.subarray(rowOf(b, tb + t) + cs * WC, rowOf(b, tb + t) + (cs + 1) * WC), t * KSB);
              for (let hl = 0; hl < TWO_PASS_HW; hl++) {
                const h = gg * TWO_PASS_HW + hl;
                const pr = valid ? f(2 ** f(scores[(b * HP + h) * Tpad + tb + t] - m[hl])) : 0;
                if (cs === 0) l[hl] += pr;
                const x = Math.min(1, f(pr * f(sl * xScale)));
                const q = Math.min(TWO_PASS_QMAX, Math.floor(f(f(x * TWO_PASS_QMAX) + lazyDither(tb + t, h))));
                // Block k = t / TT of the step: its hi digits' words, then its lo digits'.
                const w = 2 * (t >> 5) * TWO_PASS_HW * (TT / 4) + hl * (TT / 4) + ((t & 31) >> 2);
                pw[w] |= (q >> 7) << (8 * (t & 3));
                pw[TWO_PASS_HW * (TT / 4) + w] |= (q & 127) << (8 * (t & 3));
              }
            }
            for (let sgi = 0; sgi < NSB; sgi++) {
              const env = { sgi };
              for (let k = 0; k < pl.NB; k++)
                for (let j = 0; j < CFS; j++) {
                  const v = load(kv, F.v(j, k), env, 32, 16);
                  for (let mm = 0; mm < MH; mm++)
                    for (let dg = 0; dg < 2; dg++)
                      mma(load(pw, F.pLeft(mm, dg, k), env, 16, 32), v, acc[sgi][ai(mm, j, dg)]);
                }
            }
          }
          // The flush: each accumulator through the subgroup's slot, lane reading words lane + 32 e.
          for (let sgi = 0; sgi < NSB; sgi++)
            for (let mm = 0; mm < MH; mm++)
              for (let j = 0; j < CFS; j++) {
                const c: Int32Array[] = [];
                for (let dg = 0; dg < 2; dg++) {
                  storeTile(kv, F.slot, { sgi }, acc[sgi][ai(mm, j, dg)]);
                  c.push(kv.slice(sgi * 256, sgi * 256 + 256));
                }
                for (let lane = 0; lane < 32; lane++)
                  for (let e = 0; e < 8; e++) {
                    const h = gg * TWO_PASS_HW + 16 * mm + 2 * e + (lane >> 4);
                    const dd = (cs * NCFW + CFS * sgi + j) * 16 + (lane & 15);
                    const word = lane + 32 * e;
                    const o = f(unit * f(f(128 * f(c[0][word])) + f(c[1][word])));
                    if (h < H && dd < Rv) oOut[h * Rv + dd] = o;
                  }
              }
        }
        for (let hl = 0; hl < TWO_PASS_HW; hl++) {
          const h = gg * TWO_PASS_HW + hl;
          if (h >= H) continue;
          mOut[h] = m[hl];
          lOut[h] = f(l[hl]);
        }
      }
      parts.push({ m: mOut, l: lOut, o: oOut });
    }
    for (let h = 0; h < H; h++) {
      const M = Math.max(...parts.map((q) => q.m[h]));
      let Ls = 0;
      const acc = new Float64Array(Rv);
      for (const q of parts) {
        const w = 2 ** (q.m[h] - M);
        Ls += q.l[h] * w;
        for (let c = 0; c < Rv; c++) acc[c] += q.o[h * Rv + c] * w;
      }
      for (let c = 0; c < Rv; c++) out[(b * H + h) * Rv + c] = Ls > 0 ? acc[c] / Ls : 0;
    }
  }
  return out;
}
