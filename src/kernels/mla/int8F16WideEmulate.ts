/**
 * The 512-thread f16 decode kernel (decodeInt8F16Wide.wgsl.ts) walked in plain TS: its workgroup arrays (kv, part,
 * pw, alpha), fragment offsets and strides (int8F16Plan.ts f16Frags: key8, tile8, value, p), subgroups and threads,
 * each product a fragment product summed in f64 and rounded to f32. What it checks that the reference
 * (int8F16Reference.ts) cannot: that the 16 x 8 score tiles, the per-token softmax threads and the staged rows are the
 * ones the scheme means. Returns the partials [B, chunks, H, Rv + 2] and o [B, H, Rv] merged as merge.wgsl.ts does.
 */
import { f16Round } from '../f16mma.js';
import {
  foldedQuery,
  lazyMax,
  loadFrag as load,
  mergePartials,
  mmaFrag as mma,
  emulationStart,
  rescaleO,
  storeFrag as store,
  workgroupArrays,
  writePartials,
} from './int8F16EmulateParts.js';
import type { MlaInt8F16Plan } from './int8F16Plan.js';
import type { MlaInt8Dims } from './int8Reference.js';

export function mlaDecodeInt8F16WideEmulate(
  pl: MlaInt8F16Plan,
  qFull: Float32Array,
  pool: Int32Array,
  pageTable: Int32Array,
  lengths: Int32Array,
  d: MlaInt8Dims,
  chunkLen: number,
): { partial: Float32Array; out: Float32Array; chunks: number } {
  const { B, H, R, Rv } = d;
  const { TB, KS, PS, KPQ, CPW, HP, NG, tau } = pl;
  if (!pl.wide) throw new Error('mlaDecodeInt8F16WideEmulate: needs a wide plan');
  const { F, view, chunks, qh, partial } = emulationStart(pl, qFull, pool, pageTable, lengths, d, chunkLen);
  const { L, poolF, byte } = view;
  const W4 = R / 4;
  for (let b = 0; b < B; b++)
    for (let chunk = 0; chunk < chunks; chunk++)
      for (let g = 0; g < NG; g++) {
        const t0 = chunk * chunkLen;
        const t1 = Math.min(lengths[b], t0 + chunkLen);
        const { kv, part, pw, alpha } = workgroupArrays(pl);
        // Staging: thread lid (row lid / 32, words lid % 32 + 32 n): word w's 4 codes x their part's scale as f16 at
        // channels 4 w.. of the row (the store order, swizzled or not, does not change where a value lands).
        const stage = (tb: number, kb: number) => {
          for (let lid = 0; lid < 512; lid++) {
            const rowT = lid >> 5;
            const colW = lid & 31;
            const tt = tb + rowT;
            for (let w = colW; w < W4; w += 32) {
              const base = kb * TB * KS + rowT * KS + 4 * w;
              for (let k = 0; k < 4; k++) {
                let x = 0;
                if (tt < t1) {
                  const row = view.rowOf(b, tt);
                  const lat = 4 * w < Rv;
                  const sk = poolF[row + L.SW + (lat ? 0 : 1)];
                  x = f16Round(Math.fround(byte(row + w, k) * sk));
                }
                kv[base + k] = x;
              }
            }
          }
        };
        // The query fragments of subgroup sgi = 4 kq + 2 mh + nh: head half mh, K quarter kq (qFold: from kv).
        const qkv = pl.qFold ? foldedQuery(qh, b, g, HP, R, TB, KS) : qh;
        const q = Array.from({ length: 16 }, (_, sgi) => {
          const mh = (sgi >> 1) & 1;
          const kq = sgi >> 2;
          return Array.from({ length: KPQ }, (_, j) =>
            pl.qFold
              ? load(qkv, F.queryKv(mh, KPQ * kq + j), KS, 16, 16)
              : load(qh, F.query(b, g, mh, KPQ * kq + j), R, 16, 16),
          );
        });
        // O tiles: subgroup sgi, head half m, column tile CPW sgi + c.
        const o: Float64Array[][] = Array.from({ length: 16 }, () =>
          Array.from({ length: 2 * CPW }, () => new Float64Array(256)),
        );
        const mRef = new Float64Array(32).fill(-3e38);
        const lRun = new Float64Array(512);
        if (t0 < t1) stage(t0, 0);
        let kb = 0;
        for (let tb = t0; tb < t1; tb += TB) {
          for (let sgi = 0; sgi < 16; sgi++) {
            const nh = sgi & 1;
            const mh = (sgi >> 1) & 1;
            const kq = sgi >> 2;
            let a: Float64Array = new Float64Array(128);
            for (let j = 0; j < KPQ; j++)
              a = mma(q[sgi][j], load(kv, F.key8(kb, nh, KPQ * kq + j), KS, 16, 8, true), a, 8);
            store(part, F.tile8(kq, mh, nh), a, 16, 8);
          }
          // softmax: thread lid = 16 hq + tq.
          let flag = false;
          const nv = t1 - tb;
          const sv = new Float64Array(512);
          for (let lid = 0; lid < 512; lid++) {
            const e = lid;
            let s = 0;
            for (let k = 0; k < 4; k++) s = Math.fround(s + part[512 * k + e]);
            sv[lid] = (lid & 15) < nv ? s : -3e38;
          }
          for (let hq = 0; hq < 32; hq++) {
            let bm = -3e38;
            for (let tq = 0; tq < 16; tq++) bm = Math.max(bm, sv[16 * hq + tq]);
            const { al, moved } = lazyMax(mRef, hq, bm, tau);
            if (moved) flag = true;
            alpha[hq] = al;
            for (let tq = 0; tq < 16; tq++) {
              const lid = 16 * hq + tq;
              const ph = f16Round(Math.fround(2 ** (sv[lid] - mRef[hq])));
              lRun[lid] = Math.fround(Math.fround(lRun[lid] * al) + ph);
              pw[hq * PS + tq] = ph;
            }
          }
          if (tb + TB < t1) stage(tb + TB, 1 - kb);
          if (flag) rescaleO(o, alpha, CPW);
          for (let sgi = 0; sgi < 16; sgi++) {
            const p = [0, 1].map((m) => load(pw, F.p(m), PS, 16, 16));
            for (let c = 0; c < CPW; c++) {
              const v = load(kv, F.value(kb, CPW * sgi + c), KS, 16, 16);
              for (let m = 0; m < 2; m++) o[sgi][m * CPW + c] = mma(p[m], v, o[sgi][m * CPW + c], 16);
            }
          }
          kb = 1 - kb;
        }
        writePartials(partial, (b * chunks + chunk) * H, H, Rv, g, o, CPW, mRef, lRun, 16);
      }
  const out = mergePartials(partial, B, H, Rv, chunks);
  return { partial, out, chunks };
}
