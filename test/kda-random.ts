/** Random KDA problems for the tests (unit-norm q, k; log decays <= 0; beta in (0, 1)), and their checks. */
import type { KdaCoreGrads } from '../src/kernels/kda/index.js';
import type { KdaGrads } from '../src/kernels/kda/reference.js';
import { Rng } from '../src/util/random.js';
import { expectClose } from './helpers.js';

/** Every core gradient (dq, dk, dv, dg, dbeta, dS0) within `tol` of the reference's, relative to its max. */
export async function expectCoreGrads(got: KdaCoreGrads, want: KdaGrads, tol: number): Promise<void> {
  for (const name of ['dq', 'dk', 'dv', 'dg', 'dbeta', 'dS0'] as const) {
    const t = got[name];
    if (!t) throw new Error(`missing gradient ${name}`);
    expectClose(await t.toFloat32(), want[name], tol, name);
  }
}

export interface KdaCase {
  T: number;
  H: number;
  K: number;
  V: number;
  GK: number;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  g: Float32Array;
  beta: Float32Array;
  dO: Float32Array;
}

function unitRows(rng: Rng, rows: number, K: number): Float32Array {
  const a = rng.normalArray(rows * K);
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let c = 0; c < K; c++) s += a[i * K + c] ** 2;
    const r = 1 / Math.sqrt(s);
    for (let c = 0; c < K; c++) a[i * K + c] *= r;
  }
  return a;
}

export function randomCase(seed: number, T: number, H: number, K: number, V: number, GK = K, gMax = 0.5): KdaCase {
  const rng = new Rng(seed);
  const g = new Float32Array(T * H * GK);
  for (let i = 0; i < g.length; i++) g[i] = -rng.uniform(0.001, gMax);
  const beta = new Float32Array(T * H);
  for (let i = 0; i < beta.length; i++) beta[i] = rng.uniform(0.05, 0.95);
  return {
    T,
    H,
    K,
    V,
    GK,
    q: unitRows(rng, T * H, K),
    k: unitRows(rng, T * H, K),
    v: rng.normalArray(T * H * V),
    g,
    beta,
    dO: rng.normalArray(T * H * V),
  };
}
