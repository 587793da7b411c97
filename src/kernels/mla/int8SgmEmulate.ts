/**
 * The tensor-core int8 MLA decode kernel (decodeInt8Sgm.wgsl.ts) run in plain TS, fragment by fragment,
 * with the offsets of int8SgmPlan.ts and software subgroup-matrix loads, multiplies and stores that read
 * int8 operands as the H200's Dawn does (offsets and strides in 32-bit words). Lavapipe has no subgroup
 * matrices, so this is how the kernel's work layout (which subgroup multiplies which fragments, where the
 * tiles land, how the lanes fold them into O) is checked against the int8 reference on every machine;
 * the kernel itself is checked on the device (bench mla, test/mla-int8-sgm.test.ts).
 * f32 arithmetic is rounded with Math.fround where the kernel rounds; exp2 is exact here and approximate
 * on the GPU, so the comparison with the reference is to a tolerance, not bit for bit.
 */
import { int8RowLayout } from './int8Layout.js';
import { type MlaInt8Dims, quantizeRowInt8, roundHalfEven } from './int8Reference.js';
import { affEval, type Frag, type MlaInt8SgmPlan, sgmFrags, sgmRoleEnv } from './int8SgmPlan.js';
import { lazyDither } from './int8LazyReference.js';

const f = Math.fround;

/** Query rows as int8QueryRowsWgsl writes them: [B, HP, RW] words, scales times `scaleLog2`. */
export function int8QueryRowsReference(
  qFull: Float32Array,
  d: { B: number; H: number; R: number; Rv: number },
  HP: number,
  scaleLog2: number,
): Int32Array {
  const L = int8RowLayout(d.R, d.Rv);
  const out = new Int32Array(d.B * HP * L.RW);
  const of = new Float32Array(out.buffer);
  for (let b = 0; b < d.B; b++)
    for (let h = 0; h < d.H; h++) {
      const at = (b * HP + h) * L.RW;
      out.set(quantizeRowInt8(qFull.subarray((b * d.H + h) * d.R, (b * d.H + h + 1) * d.R), d.R, d.Rv), at);
      of[at + L.SW] = f(of[at + L.SW] * f(scaleLog2));
      of[at + L.SW + 1] = f(of[at + L.SW + 1] * f(scaleLog2));
    }
  return out;
}

const byte = (w: number, i: number) => (w << (24 - 8 * i)) >> 24;

type Mat = Int32Array; // row-major, rows x cols

/** subgroupMatrixLoad of an int8 operand from words: rows x cols, element (r, c). */
export function load(src: Int32Array, fr: Frag, env: Record<string, number>, rows: number, cols: number): Mat {
  const off = affEval(fr.offset, env);
  const m = new Int32Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      // Left (M x K, row-major): K runs along memory. Right (K x N): column-major = a column's K in memory.
      const [line, along] = fr.colMajor ? [c, r] : [r, c];
      const w = off + line * fr.stride + (along >> 2);
      if (w < 0 || w >= src.length) throw new Error(`fragment load past the array: word ${w} of ${src.length}`);
      m[r * cols + c] = byte(src[w], along & 3);
    }
  return m;
}

export function mma(a: Mat, b: Mat, c: Mat): void {
  for (let i = 0; i < 16; i++)
    for (let j = 0; j < 16; j++) {
      let s = c[i * 16 + j];
      for (let k = 0; k < 32; k++) s += a[i * 32 + k] * b[k * 16 + j];
      c[i * 16 + j] = s;
    }
}

/** A word of sc no score tile has written yet (the dot products are far smaller: |q8 . k8| <= 127^2 R). */
const SC_UNSET = -0x80000000;

/** subgroupMatrixStore of a result tile; `once`: the words must not have been written since SC_UNSET. */
export function storeTile(dst: Int32Array, fr: Frag, env: Record<string, number>, c: Mat, once = false): void {
  const off = affEval(fr.offset, env);
  for (let i = 0; i < 16; i++)
    for (let j = 0; j < 16; j++) {
      const w = off + i * fr.stride + j;
      if (w < 0 || w >= dst.length) throw new Error(`fragment store past the array: word ${w} of ${dst.length}`);
      if (once && dst[w] !== SC_UNSET) throw new Error(`score tiles overlap at word ${w} of sc`);
      dst[w] = c[i * 16 + j];
    }
}

/** o_lat [B, H, Rv] as the kernel computes it with `chunkLen` rows a chunk, merged as merge.wgsl.ts does. */
export function mlaDecodeInt8SgmEmulate(
  qFull: Float32Array,
  pool: Int32Array,
  pageTable: Int32Array,
  lengths: Int32Array,
  d: MlaInt8Dims,
  pl: MlaInt8SgmPlan,
  chunkLen: number,
): Float32Array {
  const { B, H, Rv, pageSize, maxPages } = d;
  const { RW, SW, TT, HP, HW, NS, CFS } = pl;
  if (chunkLen % TT) throw new Error(`chunkLen ${chunkLen} is not a multiple of ${TT}`);
  // The diagnostic stage skips compute wrong outputs by design: nothing here to emulate them against.
  if (pl.skip.length)
    throw new Error(`mlaDecodeInt8SgmEmulate: the diagnostic skip (${pl.skip.join(', ')}) has no emulation`);
  const F = sgmFrags(pl);
  const qr = int8QueryRowsReference(qFull, d, HP, d.scale * Math.LOG2E);
  const qrF = new Float32Array(qr.buffer);
  const maxLen = Math.max(1, ...lengths);
  const chunks = Math.ceil(maxLen / chunkLen);
  const out = new Float32Array(B * H * Rv);
  const kv = new Int32Array(pl.KVW);
  const kvF = new Float32Array(kv.buffer);
  const sc = new Int32Array(pl.SCW);
  const pw = new Int32Array(pl.PWW);
  const ND = pl.NCF * 16;
  for (let b = 0; b < B; b++) {
    const parts: { m: Float32Array; l: Float32Array; o: Float32Array }[] = [];
    for (let chunk = 0; chunk < chunks; chunk++) {
      const t0 = chunk * chunkLen;
      const t1 = Math.min(lengths[b], t0 + chunkLen);
      const m = new Float32Array(pl.HP).fill(-3.0e38);
      const l = new Float32Array(pl.HP);
      const o = new Float32Array(pl.HP * ND);
      for (let g = 0; g < pl.NG; g++) {
        const mRun = new Float32Array(HW).fill(-3.0e38);
        const lRun = new Float32Array(HW * TT); // per head and token lane
        const O = new Float32Array(HW * ND);
        const alphaS = new Float32Array(HW);
        const sigmaS = new Float32Array(HW);
        const sq = (h: number, k: number) => qrF[(b * HP + g * HW + h) * RW + SW + k];
        // lazy (decodeInt8SgmLazy.wgsl.ts): s_ref of the chunk, the digits' unit, the i32 accumulators of every
        // subgroup's fragments (hi, lo), and the flush through the subgroup's slot into O.
        const QMAX = pl.lazyOneDigit ? 127 : 128 * 127 + 127;
        let sRef = pl.lazySRef1 ? 1 : 0;
        for (let t = t0; t < t1 && !pl.lazySRef1; t++) {
          const row = pageTable[b * maxPages + Math.floor(t / pageSize)] * pageSize + (t % pageSize);
          sRef = Math.max(sRef, new Float32Array(pool.buffer, pool.byteOffset)[row * RW + SW]);
        }
        const xScale = sRef > 0 ? f(2 ** -pl.lazyTau / sRef) : 0;
        const unit = f(sRef * f(2 ** pl.lazyTau / QMAX));
        const allFrags = Array.from({ length: F.rounds }, (_, r) => F.roundFrags(r)).flat();
        const acc = Array.from({ length: NS }, () => allFrags.map(() => [new Int32Array(256), new Int32Array(256)]));
        const flush = (rescale: boolean) => {
          const slot = new Set<number>();
          for (let sgi = 0; sgi < NS; sgi++) {
            const base = affEval(F.slot(0, 0).offset, { sgi });
            for (let w = base; w < base + 256; w++)
              if (slot.has(w) || w >= pl.SCW) throw new Error(`lazy flush: slot word ${w} shared or past sc`);
              else slot.add(w);
            allFrags.forEach(({ j, m: mm }, k) => {
              const c = acc[sgi][k].map((a) => {
                storeTile(sc, F.slot(0, 0), { sgi }, a);
                const x = new Float32Array(256);
                for (let lane = 0; lane < 32; lane++)
                  for (let e = 0; e < 8; e++) {
                    const { row, col } = F.foldLane(lane, e);
                    x[row * 16 + col] = sc[base + lane + 32 * e];
                  }
                a.fill(0);
                return x;
              });
              for (let row = 0; row < 16; row++)
                for (let col = 0; col < 16; col++) {
                  const h = 16 * mm + row;
                  const dd = (CFS * sgi + j) * 16 + col;
                  const a = pl.lazyOneDigit
                    ? c[0][row * 16 + col]
                    : f(f(128 * c[0][row * 16 + col]) + c[1][row * 16 + col]);
                  const sum = f(O[h * ND + dd] + f(unit * a));
                  O[h * ND + dd] = rescale ? f(sum * alphaS[h]) : sum;
                }
            });
          }
        };
        for (let tb = t0; tb < t1; tb += TT) {
          kv.fill(0);
          for (let r = 0; r < TT; r++) {
            const t = tb + r;
            if (t >= t1) continue;
            const row = pageTable[b * maxPages + Math.floor(t / pageSize)] * pageSize + (t % pageSize);
            kv.set(pool.subarray(row * RW, (row + 1) * RW), r * RW);
          }
          // S: every subgroup's accumulators; the partials' tiles must cover each word of the scores once.
          sc.fill(SC_UNSET, 0, (F.partials.L + F.partials.R) * HW * pl.SS);
          for (let sgi = 0; sgi < NS; sgi++) {
            const env = { b, g, ...sgmRoleEnv(pl, sgi) };
            const query = F.query.map((fr) => load(qr, fr, env, 16, 32));
            for (const { products, store, guard } of F.accs) {
              if (guard && !(env[guard.role as keyof typeof env] < guard.below)) continue;
              const acc = new Int32Array(256);
              for (const { q, k } of products) mma(query[q], load(kv, k, env, 32, 16), acc);
              storeTile(sc, store, env, acc, true);
            }
          }
          // softmax, per head over the block's tokens
          pw.fill(0);
          let rescaled = false;
          for (let h = 0; h < HW; h++) {
            const s = new Float32Array(TT);
            const valid = (t: number) => tb + t < t1;
            let mx = -3.0e38;
            for (let t = 0; t < TT; t++) {
              const word = (part: 'L' | 'R', par: number) => {
                const x = sc[F.scoreWord(part, par, h, t)];
                if (x === SC_UNSET)
                  throw new Error(`score partial ${part}${par} of head ${h}, token ${t}: not written`);
                return x;
              };
              let aL = 0;
              for (let par = 0; par < F.partials.L; par++) aL += word('L', par);
              let aR = 0;
              for (let par = 0; par < F.partials.R; par++) aR += word('R', par);
              const skL = kvF[t * RW + SW];
              const skR = kvF[t * RW + SW + 1];
              s[t] = valid(t) ? f(f(aL * f(sq(h, 0) * skL)) + f(aR * f(sq(h, 1) * skR))) : -3.0e38;
              mx = Math.max(mx, s[t]);
            }
            if (pl.lazy) {
              const up = mx > f(mRun[h] + pl.lazyTau);
              const mRef = up ? mx : mRun[h];
              const alpha = f(2 ** f(mRun[h] - mRef));
              for (let t = 0; t < TT; t++) {
                const pr = valid(t) ? f(2 ** f(s[t] - mRef)) : 0;
                lRun[h * TT + t] = f(f(lRun[h * TT + t] * alpha) + pr);
                const x = Math.min(1, f(pr * f(kvF[t * RW + SW] * xScale)));
                const u = pl.lazyNoDither ? 0.5 : f(lazyDither(tb + t, g * HW + h));
                const Q = Math.min(QMAX, Math.floor(f(f(x * QMAX) + u)));
                pw[F.pWord(h, t >> 2)] |= (pl.lazyOneDigit ? Q : Q >> 7) << (8 * (t & 3));
                pw[(HW * TT) / 4 + F.pWord(h, t >> 2)] |= (Q & 127) << (8 * (t & 3));
              }
              mRun[h] = mRef;
              alphaS[h] = alpha;
              if (up) rescaled = true;
              continue;
            }
            const mNew = Math.max(mRun[h], mx);
            const alpha = f(2 ** (mRun[h] - mNew));
            const pv = new Float32Array(TT);
            let pm = 0;
            for (let t = 0; t < TT; t++) {
              const pr = valid(t) ? f(2 ** f(s[t] - mNew)) : 0;
              lRun[h * TT + t] = f(f(lRun[h * TT + t] * alpha) + pr);
              pv[t] = f(pr * kvF[t * RW + SW]);
              pm = Math.max(pm, pv[t]);
            }
            mRun[h] = mNew;
            const inv = pm > 0 ? f(127 / pm) : 0;
            for (let t = 0; t < TT; t++) pw[F.pWord(h, t >> 2)] |= roundHalfEven(f(pv[t] * inv)) << (8 * (t & 3));
            alphaS[h] = alpha;
            sigmaS[h] = f(pm * f(1 / 127));
          }
          if (pl.lazy) {
            if ((rescaled && pl.lazyFlush) || pl.lazyEvery) flush(true);
            for (let sgi = 0; sgi < NS; sgi++)
              for (const [k, { j, m: mm }] of allFrags.entries())
                for (const digit of [0, 1])
                  mma(
                    load(pw, F.pLeft(mm, digit), { sgi }, 16, 32),
                    load(kv, F.v(j), { sgi }, 32, 16),
                    acc[sgi][k][digit],
                  );
            if (pl.lazyEvery) flush(false);
            continue;
          }
          // P x V rounds, folded by the lanes. The subgroups run at once on the GPU, with one barrier
          // between a round's stores and its folds: a round's slots must not overlap each other or, with two
          // sets of slots (no barrier after the folds), the previous round's (still being read by slower
          // subgroups when the next round stores).
          for (let r = 0; r < F.rounds; r++) {
            const words = (rr: number) =>
              Array.from({ length: NS }, (_, sgi) =>
                // kvSlots: a round's slots in kv apart from those in sc (past any word of sc)
                F.roundFrags(rr).map(
                  (_, k) => affEval(F.slot(rr, k).offset, { sgi }) + (F.slotArray(rr) === 'kv' ? pl.SCW : 0),
                ),
              )
                .flat()
                .map((o) => [o, o + 256] as const);
            const mine = words(r);
            const all = r && pl.slotSets === 2 ? [...mine, ...words(r - 1)] : mine;
            for (let i = 0; i < mine.length; i++)
              for (let k = i + 1; k < all.length; k++)
                if (mine[i][0] < all[k][1] && all[k][0] < mine[i][1])
                  throw new Error(`P x V round ${r}: slots [${mine[i]}) and [${all[k]}) overlap`);
          }
          // The products (pvAhead: every one of the block before the first round, as the kernel then reuses kv).
          const product = (sgi: number, j: number, mm: number) => {
            const c = new Int32Array(256);
            mma(load(pw, F.pLeft(mm), { sgi }, 16, 32), load(kv, F.v(j), { sgi }, 32, 16), c);
            return c;
          };
          const ahead = pl.pvAhead
            ? Array.from({ length: NS }, (_, sgi) =>
                Array.from({ length: F.rounds }, (_, r) => F.roundFrags(r).map(({ j, m: mm }) => product(sgi, j, mm))),
              )
            : undefined;
          for (let r = 0; r < F.rounds; r++)
            for (let sgi = 0; sgi < NS; sgi++) {
              const env = { sgi };
              const fr = F.roundFrags(r);
              const arr = F.slotArray(r) === 'kv' ? kv : sc;
              fr.forEach(({ j, m: mm }, k) => {
                storeTile(arr, F.slot(r, k), env, ahead ? ahead[sgi][r][k] : product(sgi, j, mm));
              });
              for (const [k, { j, m: mm }] of fr.entries()) fold(arr, affEval(F.slot(r, k).offset, env), sgi, j, mm);
            }
          function fold(arr: Int32Array, base: number, sgi: number, j: number, mm: number) {
            for (let lane = 0; lane < 32; lane++)
              for (let e = 0; e < 8; e++) {
                const { row, col } = F.foldLane(lane, e);
                const h = 16 * mm + row;
                const dd = (CFS * sgi + j) * 16 + col;
                const x = arr[base + row * 16 + col];
                O[h * ND + dd] = f(sigmaS[h] * x + f(O[h * ND + dd] * alphaS[h]));
              }
          }
        }
        if (pl.lazy) flush(false);
        for (let h = 0; h < HW; h++) {
          m[g * HW + h] = mRun[h];
          let lt = 0;
          for (let t = 0; t < TT; t++) lt += lRun[h * TT + t];
          l[g * HW + h] = lt;
          o.set(O.subarray(h * ND, (h + 1) * ND), (g * HW + h) * ND);
        }
      }
      parts.push({ m, l, o });
    }
    for (let h = 0; h < H; h++) {
      let M = -3.0e38;
      for (const p of parts) M = Math.max(M, p.m[h]);
      let Ls = 0;
      for (const p of parts) Ls += p.l[h] * 2 ** (p.m[h] - M);
      for (let dd = 0; dd < Rv; dd++) {
        let s = 0;
        for (const p of parts) s += p.o[h * ND + dd] * 2 ** (p.m[h] - M);
        out[(b * H + h) * Rv + dd] = Ls > 0 ? s / Ls : 0;
      }
    }
  }
  return out;
}
