/**
 * A plain-TS emulation of the f16 tensor-core state pass's work layout (stateTc16.wgsl.ts) for one workgroup (one
 * head, one 16-column value tile, K = 128): workgroup memory as flat arrays (the tile [64][TC16_TS] f16, S16 | Y16,
 * RA | RB [128][TC16_RS] f32, kbE, ktE), the 8 subgroups' 16 x 16 fragments loaded and stored at the kernel's
 * offsets and strides (row- or column-major, as subgroupMatrixLoad reads them), the staging maps (Kb: subgroup sg
 * row sg + 8 m, lane L channels 4 L ..; Kt: subgroup sg channels 16 sg .., lane L rows L / 4 + 8 m) and the lane
 * maps of phases 2 and 4 (thread t: column t / 16, rows t % 16 + 16 a), each maximum over exactly the lanes whose
 * shuffles or subgroupMax the kernel takes. What it checks: that every fragment lands where the next phase reads
 * it, that each reduction covers its row / channel / column and nothing else, and the phase order; its results
 * equal stateTc16Reference.ts's to f32 summation order (the fragments sum in 16-element pieces). The index
 * expressions are transcribed from the kernel, so a change there must be made here too.
 */
import { f16Round } from '../f16mma.js';
import { TC16_RS as RS, TC16_TS as TS } from './stateTc16.wgsl.js';
import { frexpExp } from './stateTc16Reference.js';

const fr = Math.fround;
const K = 128;

export interface Tc16EmulateInput {
  T: number;
  /** [T, K] Kt (f32), k (the bf16 values, widened), gc (each chunk's cumulative log decay, f32). */
  Kt: ArrayLike<number>;
  k: ArrayLike<number>;
  gc: ArrayLike<number>;
  /** [T, 16] v; [T] beta; [K, 16] the initial state. */
  v: ArrayLike<number>;
  beta: ArrayLike<number>;
  S0: ArrayLike<number>;
}

/** The workgroup's results: hB [chunks][K * 16] (S entering each chunk), Y [T, 16], the final state [K, 16]. */
export function stateTc16Emulate(x: Tc16EmulateInput): { hB: Float32Array[]; Y: Float32Array; S: Float32Array } {
  const { T } = x;
  const tile = new Float64Array(64 * TS);
  const sy = new Float64Array(K * 16);
  const rr = new Float32Array(K * RS);
  const kbE = new Int32Array(64);
  const ktE = new Int32Array(K);
  // 16 x 16 fragments: load (row- or column-major), multiply-accumulate in f32, store row-major.
  const load = (mem: ArrayLike<number>, off: number, stride: number, colMajor = false) =>
    Array.from({ length: 256 }, (_, e) => {
      const [r, c] = [Math.floor(e / 16), e % 16];
      return mem[colMajor ? off + c * stride + r : off + r * stride + c];
    });
  const mma = (a: number[], b: number[], acc: number[]) =>
    acc.map((s, e) => {
      const [r, c] = [Math.floor(e / 16), e % 16];
      let t = 0;
      for (let q = 0; q < 16; q++) t = fr(t + a[r * 16 + q] * b[q * 16 + c]);
      return fr(s + t);
    });
  const store = (mem: Float32Array, off: number, acc: number[], stride: number) => {
    for (let e = 0; e < 256; e++) mem[off + Math.floor(e / 16) * stride + (e % 16)] = acc[e];
  };
  // Per-thread state of the lanes: sreg[t][m] (rows t % 16 + 16 m of column t / 16), sE, yE per thread.
  const sreg = Array.from({ length: 256 }, (_, t) =>
    Float32Array.from({ length: 8 }, (_, m) => x.S0[((t % 16) + 16 * m) * 16 + Math.floor(t / 16)]),
  );
  const sE = new Int32Array(256);
  const yE = new Int32Array(256);
  // colMax: the max over the 16 lanes differing in bits 0..3 (thread t's group: t - t % 16 ..).
  const colMax = (vals: number[]) => vals.map((_, t) => Math.max(...vals.slice(t - (t % 16), t - (t % 16) + 16)));
  const sToF16 = () => {
    const mx = colMax(sreg.map((s) => Math.max(...Array.from(s, Math.abs))));
    for (let t = 0; t < 256; t++) {
      sE[t] = frexpExp(mx[t]);
      for (let m = 0; m < 8; m++)
        sy[((t % 16) + 16 * m) * 16 + Math.floor(t / 16)] = f16Round(sreg[t][m] * 2 ** -sE[t]);
    }
  };
  const stageKb = (ts: number, L: number) => {
    for (let sg = 0; sg < 8; sg++) {
      for (let m = 0; m < 8; m++) {
        const i = sg + 8 * m;
        // The subgroup's 32 lanes: channels 4 ln .. 4 ln + 3 of row i (0 past L).
        const row = Array.from({ length: K }, (_, ch) =>
          i < L ? fr(x.k[(ts + i) * K + ch] * fr(Math.exp(x.gc[(ts + i) * K + ch]))) : 0,
        );
        const e = frexpExp(Math.max(...row.map(Math.abs)));
        for (let ch = 0; ch < K; ch++) tile[i * TS + ch] = f16Round(row[ch] * 2 ** -e);
        kbE[i] = e;
      }
    }
  };
  const stageKt = (ts: number, L: number) => {
    for (let sg = 0; sg < 8; sg++) {
      // Lane ln: channels 16 sg + 4 (ln % 4) .., rows ln / 4 + 8 m; the max over the lanes of equal ln % 4.
      for (let q4 = 0; q4 < 4; q4++) {
        for (let q = 0; q < 4; q++) {
          const ch = 16 * sg + 4 * q4 + q;
          let mx = 0;
          for (let ln = q4; ln < 32; ln += 4)
            for (let m = 0; m < 8; m++) {
              const i = Math.floor(ln / 4) + 8 * m;
              if (i < L) mx = Math.max(mx, Math.abs(x.Kt[(ts + i) * K + ch]));
            }
          const e = frexpExp(mx);
          for (let ln = q4; ln < 32; ln += 4)
            for (let m = 0; m < 8; m++) {
              const i = Math.floor(ln / 4) + 8 * m;
              tile[i * TS + ch] = f16Round((i < L ? x.Kt[(ts + i) * K + ch] : 0) * 2 ** -e);
            }
          ktE[ch] = e;
        }
      }
    }
  };
  const hB: Float32Array[] = [];
  const Y = new Float32Array(T * 16);
  sToF16();
  if (T > 0) stageKb(0, Math.min(64, T));
  for (let ts = 0; ts < T; ts += 64) {
    const L = Math.min(64, T - ts);
    // 1. RA = Kb16 S16, subgroup sg: rows 16 (sg % 4) .., channels 64 (sg / 4) ..; hB from the registers.
    for (let sg = 0; sg < 8; sg++) {
      const [mt, kh] = [(sg % 4) * 16, Math.floor(sg / 4) * 64];
      let acc = new Array(256).fill(0);
      for (let ks = 0; ks < 64; ks += 16)
        acc = mma(load(tile, mt * TS + kh + ks, TS), load(sy, (kh + ks) * 16, 16), acc);
      store(rr, (Math.floor(sg / 4) * 64 + mt) * RS, acc, RS);
    }
    const h = new Float32Array(K * 16);
    for (let t = 0; t < 256; t++)
      for (let m = 0; m < 8; m++) h[((t % 16) + 16 * m) * 16 + Math.floor(t / 16)] = sreg[t][m];
    hB.push(h);
    // 2. Y, Y16 (lanes), Kt staged.
    const y = Array.from({ length: 256 }, () => new Float32Array(4));
    const ymx = new Array(256).fill(0);
    for (let t = 0; t < 256; t++) {
      const [c, r] = [Math.floor(t / 16), t % 16];
      for (let a = 0; a < 4; a++) {
        const i = r + 16 * a;
        const kbs = fr(fr(rr[i * RS + c] + rr[(64 + i) * RS + c]) * 2 ** (kbE[i] + sE[t]));
        const [vi, bi] = i < L ? [x.v[(ts + i) * 16 + c], x.beta[ts + i]] : [0, 0];
        y[t][a] = fr(bi * fr(vi - kbs));
        ymx[t] = Math.max(ymx[t], Math.abs(y[t][a]));
        if (i < L) Y[(ts + i) * 16 + c] = y[t][a];
      }
    }
    const ym = colMax(ymx);
    for (let t = 0; t < 256; t++) {
      yE[t] = frexpExp(ym[t]);
      for (let a = 0; a < 4; a++) sy[((t % 16) + 16 * a) * 16 + Math.floor(t / 16)] = f16Round(y[t][a] * 2 ** -yE[t]);
    }
    stageKt(ts, L);
    // 3. RB = Kt16^T Y16, subgroup sg: channels 16 sg .. (the tile column-major).
    for (let sg = 0; sg < 8; sg++) {
      let acc = new Array(256).fill(0);
      for (let ks = 0; ks < 64; ks += 16)
        acc = mma(load(tile, ks * TS + 16 * sg, TS, true), load(sy, ks * 16, 16), acc);
      store(rr, 16 * sg * RS, acc, RS);
    }
    // 4. S update, S16; the next chunk's Kb staged.
    for (let t = 0; t < 256; t++) {
      for (let m = 0; m < 8; m++) {
        const k = (t % 16) + 16 * m;
        const gl = x.gc[(ts + L - 1) * K + k];
        sreg[t][m] = fr(
          fr(fr(Math.exp(gl)) * sreg[t][m]) + fr(rr[k * RS + Math.floor(t / 16)] * 2 ** (ktE[k] + yE[t])),
        );
      }
    }
    sToF16();
    if (ts + 64 < T) stageKb(ts + 64, Math.min(64, T - ts - 64));
  }
  const S = new Float32Array(K * 16);
  for (let t = 0; t < 256; t++)
    for (let m = 0; m < 8; m++) S[((t % 16) + 16 * m) * 16 + Math.floor(t / 16)] = sreg[t][m];
  return { hB, Y, S };
}
