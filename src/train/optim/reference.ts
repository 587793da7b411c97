/**
 * Plain-TS definitions of the optimizer steps: what the cpu backend runs (in place on host arrays)
 * and what the tests compare the WGSL kernels and whole optimizer steps against.
 */

export interface AdamwHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  wd: number;
  /** Step number, 1-based (bias correction 1 - beta^t). */
  t: number;
}

/** One AdamW step in place; returns nothing, writes the applied change to upd. */
export function adamwReference(
  g: Float32Array,
  w: Float32Array,
  m: Float32Array,
  v: Float32Array,
  upd: Float32Array,
  h: AdamwHyper,
  gradScale = 1,
): void {
  const bc1 = 1 - h.beta1 ** h.t;
  const bc2 = 1 - h.beta2 ** h.t;
  for (let i = 0; i < w.length; i++) {
    const gs = g[i] * gradScale;
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * gs;
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * gs * gs;
    const u = -h.lr * (m[i] / bc1 / (Math.sqrt(v[i] / bc2) + h.eps) + h.wd * w[i]);
    w[i] += u;
    upd[i] = u;
  }
}

export function muonMomentumReference(
  g: Float32Array,
  m: Float32Array,
  out: Float32Array,
  mu: number,
  gradScale = 1,
): void {
  for (let i = 0; i < g.length; i++) {
    const gs = g[i] * gradScale;
    m[i] = mu * m[i] + gs;
    out[i] = gs + mu * m[i];
  }
}

export function normalizeRowsReference(
  x: Float32Array,
  sumsq: Float32Array,
  rowLen: number,
  eps: number,
): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] / (Math.sqrt(sumsq[Math.floor(i / rowLen)]) + eps);
  return out;
}

export function axpbyReference(x: Float32Array, y: Float32Array, alpha: number, beta: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = alpha * x[i] + beta * y[i];
  return out;
}

export function muonApplyReference(
  o: Float32Array,
  w: Float32Array,
  upd: Float32Array,
  lr: number,
  scale: number,
  wd: number,
): void {
  for (let i = 0; i < w.length; i++) {
    const u = -lr * (scale * o[i] + wd * w[i]);
    w[i] += u;
    upd[i] = u;
  }
}

export function scaleRowsReference(w: Float32Array, factor: Float32Array, rowLen: number): void {
  for (let i = 0; i < w.length; i++) w[i] *= factor[Math.floor(i / rowLen)];
}

export function sumsqReference(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return s;
}

/** Squared norm of each of the R equal rows of x (f64 accumulation). */
export function sumsqRowsReference(x: Float32Array, R: number): Float32Array {
  const L = x.length / R;
  const out = new Float32Array(R);
  for (let r = 0; r < R; r++) out[r] = sumsqReference(x.subarray(r * L, (r + 1) * L));
  return out;
}

/** Global-norm clipping factor: gradScale * min(1, maxNorm / (norm + 1e-6)), norm of the averaged gradient. */
export function clipReference(
  sumsqs: ArrayLike<number>,
  gradScale: number,
  maxNorm: number,
): { norm: number; factor: number } {
  let s = 0;
  for (let i = 0; i < sumsqs.length; i++) s += sumsqs[i];
  const norm = Math.sqrt(s) * gradScale;
  return { norm, factor: maxNorm > 0 ? gradScale * Math.min(1, maxNorm / (norm + 1e-6)) : gradScale };
}

/** Quintic Newton-Schulz coefficients of Muon (Keller Jordan; Moonlight / K2). */
export const NS_COEFFS = [3.4445, -4.775, 2.0315] as const;
export const NS_STEPS = 5;
export const NS_EPS = 1e-7;

/**
 * Approximate orthogonalisation of one [rows, cols] matrix in f64: X = G / (||G||_F + eps), transposed
 * when rows > cols so X X^T is the small Gram matrix, then 5 x (A = X X^T; X = a X + (b A + c A^2) X).
 */
export function newtonSchulzReference(g: Float32Array, rows: number, cols: number, steps = NS_STEPS): Float64Array {
  const tall = rows > cols;
  const p = tall ? cols : rows;
  const q = tall ? rows : cols;
  let x = new Float64Array(p * q);
  let norm = 0;
  for (const v of g) norm += v * v;
  norm = Math.sqrt(norm) + NS_EPS;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) x[tall ? c * q + r : r * q + c] = g[r * cols + c] / norm;
  }
  const [a, b, c] = NS_COEFFS;
  // Loops in i-k-j order so the inner loop runs along rows (this is the cpu backend's Muon).
  const A = new Float64Array(p * p);
  const B = new Float64Array(p * p);
  for (let s = 0; s < steps; s++) {
    for (let i = 0; i < p; i++)
      for (let j = 0; j <= i; j++) {
        let acc = 0;
        const xi = i * q;
        const xj = j * q;
        for (let k = 0; k < q; k++) acc += x[xi + k] * x[xj + k];
        A[i * p + j] = acc;
        A[j * p + i] = acc;
      }
    for (let i = 0; i < p; i++) {
      const row = B.subarray(i * p, (i + 1) * p);
      for (let j = 0; j < p; j++) row[j] = b * A[i * p + j];
      for (let k = 0; k < p; k++) {
        const aik = c * A[i * p + k];
        for (let j = 0; j < p; j++) row[j] += aik * A[k * p + j];
      }
    }
    const next = new Float64Array(p * q);
    for (let i = 0; i < p; i++) {
      const row = next.subarray(i * q, (i + 1) * q);
      for (let j = 0; j < q; j++) row[j] = a * x[i * q + j];
      for (let k = 0; k < p; k++) {
        const bik = B[i * p + k];
        const xk = k * q;
        for (let j = 0; j < q; j++) row[j] += bik * x[xk + j];
      }
    }
    x = next;
  }
  if (!tall) return x;
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = x[c * q + r];
  return out;
}

export interface MuonHyper {
  lr: number;
  momentum: number;
  wd: number;
}

/** Muon's update scale: 0.2 * sqrt(max(m, n)) gives the update about AdamW's RMS (Moonlight). */
export function muonScale(rows: number, cols: number): number {
  return 0.2 * Math.sqrt(Math.max(rows, cols));
}

/** One Muon step on matrices [E, rows, cols] (E = 1 for a plain matrix), in place. */
export function muonReference(
  g: Float32Array,
  w: Float32Array,
  m: Float32Array,
  E: number,
  rows: number,
  cols: number,
  h: MuonHyper,
  gradScale = 1,
): void {
  const u = new Float32Array(g.length);
  muonMomentumReference(g, m, u, h.momentum, gradScale);
  const size = rows * cols;
  const scale = muonScale(rows, cols);
  for (let e = 0; e < E; e++) {
    const o = newtonSchulzReference(u.subarray(e * size, (e + 1) * size), rows, cols);
    for (let i = 0; i < size; i++) {
      const k = e * size + i;
      w[k] -= h.lr * (scale * o[i] + h.wd * w[k]);
    }
  }
}
