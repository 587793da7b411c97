/**
 * The f16 tensor-core decode kernel (decodeInt8F16.wgsl.ts) walked in plain TS: the same workgroup arrays (kv, part,
 * pw, alpha), the same fragment offsets and strides (int8F16Plan.ts f16Frags), the same phases, subgroups and
 * threads, each product a 16 x 16 x 16 fragment product summed in f64 and rounded to f32 (the tensor cores' f32
 * results; their internal order is not WGSL's to fix). What it checks that the reference (int8F16Reference.ts)
 * cannot: that the fragments the kernel loads and stores are the ones the scheme means. Returns the partials
 * [B, chunks, H, Rv + 2] the kernel writes and o [B, H, Rv] merged as merge.wgsl.ts does.
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
import { int8F16Stage } from './int8F16Reference.js';
import { f16PoolView } from './f16Layout.js';
import type { MlaInt8Dims } from './int8Reference.js';

type Frag = Float64Array;

export function mlaDecodeInt8F16Emulate(
  pl: MlaInt8F16Plan,
  qFull: Float32Array,
  pool: Int32Array,
  pageTable: Int32Array,
  lengths: Int32Array,
  d: MlaInt8Dims,
  chunkLen: number,
): { partial: Float32Array; out: Float32Array; chunks: number } {
  const { B, H, R, Rv } = d;
  const { TB, KS, PS, KPQ, CPS, HP, NG, tau } = pl;
  const { F, view, chunks, qh, partial } = emulationStart(pl, qFull, pool, pageTable, lengths, d, chunkLen);
  const { L, poolF, byte } = view;
  // f16 cache: the staged values are the pool's f16 channels as they are (rows of R / 2 words).
  const view16 = pl.cache === 'f16' ? f16PoolView(pool, pageTable, d) : undefined;
  for (let b = 0; b < B; b++)
    for (let chunk = 0; chunk < chunks; chunk++)
      for (let g = 0; g < NG; g++) {
        const t0 = chunk * chunkLen;
        const t1 = Math.min(lengths[b], t0 + chunkLen);
        const { kv, part, pw, alpha } = workgroupArrays(pl);
        // Staging: item i = row i / rowItems, its `width` codes (4 or 16) from channel width (i % rowItems), times
        // their part's scale, as f16.
        const width = R / pl.rowItems;
        const stage = (tb: number, kb: number) => {
          for (let i = 0; i < pl.items; i++) {
            const tt = tb + Math.floor(i / pl.rowItems);
            const c = i % pl.rowItems;
            const base = kb * TB * KS + Math.floor(i / pl.rowItems) * KS + width * c;
            for (let k = 0; k < width; k++) {
              let x = 0;
              if (tt < t1 && view16) {
                x = view16.channel(view16.rowOf(b, tt), width * c + k);
              } else if (tt < t1) {
                const row = view.rowOf(b, tt);
                const sk = poolF[row + L.SW + (width * c < Rv ? 0 : 1)];
                x = int8F16Stage(byte(row + (width / 4) * c, k), sk, pl.convert);
              }
              kv[base + k] = x;
            }
          }
        };
        // qFold: the group's 32 head rows staged in kv at stride KS (heads past H zero), the fragments loaded from there.
        const qkv = pl.qFold ? foldedQuery(qh, b, g, HP, R, TB, KS) : qh;
        const q = Array.from({ length: 8 }, (_, sgi) =>
          Array.from({ length: KPQ }, (_, j) =>
            pl.qFold
              ? load(qkv, F.queryKv(sgi & 1, KPQ * (sgi >> 1) + j), KS)
              : load(qh, F.query(b, g, sgi & 1, KPQ * (sgi >> 1) + j), R),
          ),
        );
        const o: Frag[][] = Array.from({ length: 8 }, () =>
          Array.from({ length: 2 * CPS }, () => new Float64Array(256)),
        );
        const mRef = new Float64Array(32).fill(-3e38);
        const lRun = new Float64Array(256);
        if (t0 < t1) stage(t0, 0);
        let kb = 0;
        for (let tb = t0; tb < t1; tb += TB) {
          // scores: subgroup sgi = 2 kq + mh, its head half's K quarter into its part tile.
          for (let sgi = 0; sgi < 8; sgi++) {
            let a: Frag = new Float64Array(256);
            for (let j = 0; j < KPQ; j++)
              a = mma(q[sgi][j], load(kv, F.key(kb, KPQ * (sgi >> 1) + j), KS, 16, 16, true), a);
            store(part, F.tile(sgi), a, 16);
          }
          // softmax: thread lid = 8 hq + tq.
          let flag = false;
          const nv = t1 - tb;
          const sv: number[][] = [];
          for (let lid = 0; lid < 256; lid++) {
            const hq = lid >> 3;
            const tq = lid & 7;
            const s = [0, 0];
            for (let k = 0; k < 4; k++)
              for (let i = 0; i < 2; i++)
                s[i] = Math.fround(s[i] + part[F.tile(2 * k + (hq >> 4)) + 16 * (hq & 15) + 2 * tq + i]);
            for (let i = 0; i < 2; i++) if (2 * tq + i >= nv) s[i] = -3e38;
            sv.push(s);
          }
          for (let hq = 0; hq < 32; hq++) {
            let bm = -3e38;
            for (let tq = 0; tq < 8; tq++) bm = Math.max(bm, ...sv[8 * hq + tq]);
            const { al, moved } = lazyMax(mRef, hq, bm, tau);
            if (moved) flag = true;
            alpha[hq] = al;
            for (let tq = 0; tq < 8; tq++) {
              const lid = 8 * hq + tq;
              const ph = sv[lid].map((x) => f16Round(Math.fround(2 ** (x - mRef[hq]))));
              lRun[lid] = Math.fround(Math.fround(Math.fround(lRun[lid] * al) + ph[0]) + ph[1]);
              pw[hq * PS + 2 * tq] = ph[0];
              pw[hq * PS + 2 * tq + 1] = ph[1];
            }
          }
          if (tb + TB < t1) stage(tb + TB, 1 - kb);
          if (flag) rescaleO(o, alpha, CPS);
          // P x V: subgroup sgi, value column tiles CPS sgi + c, both head halves.
          for (let sgi = 0; sgi < 8; sgi++) {
            const p = [0, 1].map((m) => load(pw, F.p(m), PS));
            for (let c = 0; c < CPS; c++) {
              const v = load(kv, F.value(kb, CPS * sgi + c), KS);
              for (let m = 0; m < 2; m++) o[sgi][m * CPS + c] = mma(p[m], v, o[sgi][m * CPS + c]);
            }
          }
          kb = 1 - kb;
        }
        // The partials: heads past H dropped.
        writePartials(partial, (b * chunks + chunk) * H, H, Rv, g, o, CPS, mRef, lRun, 8);
      }
  // The merge (merge.wgsl.ts), in f64.
  const out = mergePartials(partial, B, H, Rv, chunks);
  return { partial, out, chunks };
}
