/**
 * Kernels of expertsBackward on WebGPU. Rows are the (token, slot) pairs in the plan's expert order
 * (plan.wgsl.ts): position pos holds token perm[pos]; pairOf[pos] is the pair index n*k + j there.
 *
 *   pairs      pairOf[slotPos[i]] = i (the inverse of the plan's scatter)
 *   rows       grouped row matmuls over the plan's tiles (one expert per tile), in three forms:
 *                gateUp  a = x W1_e^T, b = x W3_e^T      (A gathered by perm, weights [E, N, K], two outputs)
 *                dh      g = dy W2_e                       (A gathered by perm, weight [E, K, N])
 *                dx      dxp = da W1_e + db W3_e           (two operands summed, weights [E, K, N])
 *   pointwise  per position: h = silu(a) b, dWeights = g . h, then in place a <- da, b <- db, g <- w h
 *   outer      per expert, weight gradients as sums over that expert's segment of rows:
 *                dW2_e = dy_seg^T (w h)_seg,   dW1_e = da_seg^T x_seg,   dW3_e = db_seg^T x_seg
 *   combine    dx[n] = sum_j dxp[slotPos[n k + j]]   (grouped.wgsl.ts combineWgsl, unweighted: fixed slot order)
 * Every output element has exactly one writer, so no float atomics are needed.
 */
import { expertTileStart } from './plan.wgsl.js';
import { linearGroup } from '../common.js';

/** Row tile of `rows`; must equal the plan's tile height (GROUPED_BM). */
export const ROWS_BM = 32;
const ROWS_BN = 64;
const BK = 16;
const WG = 256;
export const ROWS_BN_OUT = ROWS_BN;
export const OUTER_TILE = 64;
export const POINTWISE_WG = 128;
export const PAIRS_WG = 256;

export type RowsMode = 'gateUp' | 'dh' | 'dx';

export function rowsWgsl(mode: RowsMode): string {
  const gather = mode !== 'dx';
  const twoA = mode === 'dx';
  const twoW = mode !== 'dh';
  const twoOut = mode === 'gateUp';
  // Weight element (n, kk) of expert e: [E, N, K] for gateUp, [E, K, N] otherwise.
  const wIndex = mode === 'gateUp' ? 'wBase + n * p.Kin + kk' : 'wBase + kk * p.Nout + n';
  const names = ['A1', ...(twoA ? ['A2'] : []), ...(gather ? ['perm'] : []), 'tiles', 'tileCount', 'W1'];
  if (twoW) names.push('W2');
  const decl = names.map(
    (n, i) =>
      `@group(0) @binding(${i + 1}) var<storage, read> ${n}: array<${/^(perm|tiles|tileCount)$/.test(n) ? 'u32' : 'f32'}>;`,
  );
  decl.push(`@group(0) @binding(${names.length + 1}) var<storage, read_write> Out1: array<f32>;`);
  if (twoOut) decl.push(`@group(0) @binding(${names.length + 2}) var<storage, read_write> Out2: array<f32>;`);
  const row = gather ? 'perm[r]' : 'r';
  return /* wgsl */ `
struct Params { Kin: u32, Nout: u32, _a: u32, _b: u32 };
@group(0) @binding(0) var<uniform> p: Params;
${decl.join('\n')}

var<workgroup> As1: array<f32, ${ROWS_BM * BK}>;
${twoA ? `var<workgroup> As2: array<f32, ${ROWS_BM * BK}>;` : ''}
var<workgroup> Bs1: array<f32, ${BK * ROWS_BN}>;
${twoW ? `var<workgroup> Bs2: array<f32, ${BK * ROWS_BN}>;` : ''}

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
${expertTileStart(ROWS_BN)}
  let wBase = e * p.Nout * p.Kin;
  let wLast = wBase + p.Nout * p.Kin - 1u;
  var acc1: array<f32, 8>;
  var acc2: array<f32, 8>;
  for (var i = 0u; i < 8u; i++) { acc1[i] = 0.0; acc2[i] = 0.0; }
  for (var k0 = 0u; k0 < p.Kin; k0 += ${BK}u) {
    for (var i = lid; i < ${ROWS_BM * BK}u; i += ${WG}u) {
      let r = r0 + i / ${BK}u;
      let kk = k0 + i % ${BK}u;
      let inb = r < r1 && kk < p.Kin;
      let src = select(0u, ${row} * p.Kin + kk, inb);
      As1[i] = select(0.0, A1[src], inb);
      ${twoA ? 'As2[i] = select(0.0, A2[src], inb);' : ''}
    }
    for (var i = lid; i < ${BK * ROWS_BN}u; i += ${WG}u) {
      // Consecutive threads walk the contiguous dimension of the weight.
      let n = col0 + ${mode === 'gateUp' ? `i / ${BK}u` : `i % ${ROWS_BN}u`};
      let kk = k0 + ${mode === 'gateUp' ? `i % ${BK}u` : `i / ${ROWS_BN}u`};
      let inb = n < p.Nout && kk < p.Kin;
      let wi = min(${wIndex}, wLast);
      let s = (kk - k0) * ${ROWS_BN}u + (n - col0);
      Bs1[s] = select(0.0, W1[wi], inb);
      ${twoW ? 'Bs2[s] = select(0.0, W2[wi], inb);' : ''}
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK}u; kk++) {
      for (var rr = 0u; rr < 2u; rr++) {
        let a1 = As1[(ty * 2u + rr) * ${BK}u + kk];
        ${twoA ? `let a2 = As2[(ty * 2u + rr) * ${BK}u + kk];` : ''}
        for (var cc = 0u; cc < 4u; cc++) {
          let bi = kk * ${ROWS_BN}u + tx * 4u + cc;
          ${
            mode === 'gateUp'
              ? 'acc1[rr * 4u + cc] += a1 * Bs1[bi];\n          acc2[rr * 4u + cc] += a1 * Bs2[bi];'
              : mode === 'dx'
                ? 'acc1[rr * 4u + cc] += a1 * Bs1[bi] + a2 * Bs2[bi];'
                : 'acc1[rr * 4u + cc] += a1 * Bs1[bi];'
          }
        }
      }
    }
    workgroupBarrier();
  }
  for (var rr = 0u; rr < 2u; rr++) {
    let r = r0 + ty * 2u + rr;
    if (r >= r1) { continue; }
    for (var cc = 0u; cc < 4u; cc++) {
      let n = col0 + tx * 4u + cc;
      if (n >= p.Nout) { continue; }
      Out1[r * p.Nout + n] = acc1[rr * 4u + cc];
      ${twoOut ? 'Out2[r * p.Nout + n] = acc2[rr * 4u + cc];' : ''}
    }
  }
}`;
}

/** pairOf[slotPos[i]] = i. */
export function pairsWgsl(): string {
  return /* wgsl */ `
struct Params { NK: u32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> slotPos: array<u32>;
@group(0) @binding(2) var<storage, read_write> pairOf: array<u32>;
@compute @workgroup_size(${PAIRS_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${linearGroup} * ${PAIRS_WG}u + lid;
  if (i < p.NK) { pairOf[slotPos[i]] = i; }
}`;
}

/**
 * One workgroup per position: with a, b (pre-activations), g = dy W2_e and w the pair's mixing weight,
 *   h = silu(a) b,  dWeights[pair] = g . h,  a <- w g b silu'(a),  b <- w g silu(a),  g <- w h.
 * Every element is read and rewritten by the same thread, so the in-place update is safe.
 */
export function pointwiseWgsl(): string {
  return /* wgsl */ `
struct Params { NK: u32, I: u32, _a: u32, _b: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pairOf: array<u32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> Ga: array<f32>;
@group(0) @binding(4) var<storage, read_write> Ub: array<f32>;
@group(0) @binding(5) var<storage, read_write> Gh: array<f32>;
@group(0) @binding(6) var<storage, read_write> dWeights: array<f32>;
var<workgroup> part: array<f32, ${POINTWISE_WG}>;
@compute @workgroup_size(${POINTWISE_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let pos = ${linearGroup};
  if (pos >= p.NK) { return; }
  let pair = pairOf[pos];
  let w = weights[pair];
  var dot = 0.0;
  for (var i = lid; i < p.I; i += ${POINTWISE_WG}u) {
    let o = pos * p.I + i;
    let a = Ga[o];
    let b = Ub[o];
    let g = Gh[o];
    let sg = 1.0 / (1.0 + exp(-a));
    let silu = a * sg;
    let h = silu * b;
    dot += g * h;
    Ga[o] = w * g * b * sg * (1.0 + a * (1.0 - sg));
    Ub[o] = w * g * silu;
    Gh[o] = w * h;
  }
  part[lid] = dot;
  workgroupBarrier();
  for (var s = ${POINTWISE_WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { part[lid] += part[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { dWeights[pair] = part[0]; }
}`;
}

export interface OuterVariant {
  gatherA: boolean;
  gatherB: boolean;
  /** Two A operands and two outputs sharing B (dW1 and dW3 from da, db and x). */
  dual: boolean;
}

/**
 * Storage bindings 1.. of the expert outer-product kernels (outerWgsl, outerSplit.wgsl.ts): A1 (and A2 when
 * dual), B, perm, counts read; C1 (and C2) written.
 */
export function outerBindings(v: OuterVariant): string[] {
  const names = ['A1', ...(v.dual ? ['A2'] : []), 'B', 'perm', 'counts'];
  const decl = names.map(
    (n, i) =>
      `@group(0) @binding(${i + 1}) var<storage, read> ${n}: array<${/^(perm|counts)$/.test(n) ? 'u32' : 'f32'}>;`,
  );
  decl.push(`@group(0) @binding(${names.length + 1}) var<storage, read_write> C1: array<f32>;`);
  if (v.dual) decl.push(`@group(0) @binding(${names.length + 2}) var<storage, read_write> C2: array<f32>;`);
  return decl;
}

export function outerKey(v: OuterVariant): string {
  return `moe_bwd_outer_${v.gatherA ? 'ga' : 'a'}_${v.gatherB ? 'gb' : 'b'}_${v.dual ? 'dual' : 'single'}`;
}

/**
 * C_e[m, n] = sum over rows r of expert e's segment of A[rowA(r), m] B[rowB(r), n], for C [E, M, N].
 * Workgroup (mb, nb, e) owns a 64 x 64 tile; thread (ty, tx) of 16 x 16 owns 4 x 4 of it. Segment start =
 * sum of the counts before e. An expert with no rows writes zeros (its gradient).
 */
export function outerWgsl(v: OuterVariant): string {
  const T = OUTER_TILE;
  const decl = outerBindings(v);
  return /* wgsl */ `
struct Params { M: u32, N: u32, _a: u32, _b: u32 };
@group(0) @binding(0) var<uniform> p: Params;
${decl.join('\n')}

var<workgroup> As1: array<f32, ${BK * T}>;
${v.dual ? `var<workgroup> As2: array<f32, ${BK * T}>;` : ''}
var<workgroup> Bs: array<f32, ${BK * T}>;

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let e = wid.z;
  var start = 0u;
  for (var f = 0u; f < e; f++) { start += counts[f]; }
  let end = start + counts[e];
  let m0 = wid.x * ${T}u;
  let n0 = wid.y * ${T}u;
  let tx = lid % 16u;
  let ty = lid / 16u;
  var acc1: array<f32, 16>;
  var acc2: array<f32, 16>;
  for (var i = 0u; i < 16u; i++) { acc1[i] = 0.0; acc2[i] = 0.0; }
  for (var r0 = start; r0 < end; r0 += ${BK}u) {
    for (var i = lid; i < ${BK * T}u; i += ${WG}u) {
      let r = r0 + i / ${T}u;
      let m = m0 + i % ${T}u;
      let n = n0 + i % ${T}u;
      let inA = r < end && m < p.M;
      let inB = r < end && n < p.N;
      let rc = min(r, end - 1u);
      let ra = ${v.gatherA ? 'perm[rc]' : 'rc'};
      let rb = ${v.gatherB ? 'perm[rc]' : 'rc'};
      As1[i] = select(0.0, A1[select(0u, ra * p.M + m, inA)], inA);
      ${v.dual ? 'As2[i] = select(0.0, A2[select(0u, ra * p.M + m, inA)], inA);' : ''}
      Bs[i] = select(0.0, B[select(0u, rb * p.N + n, inB)], inB);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK}u; kk++) {
      for (var mm = 0u; mm < 4u; mm++) {
        let a1 = As1[kk * ${T}u + ty * 4u + mm];
        ${v.dual ? `let a2 = As2[kk * ${T}u + ty * 4u + mm];` : ''}
        for (var nn = 0u; nn < 4u; nn++) {
          let b = Bs[kk * ${T}u + tx * 4u + nn];
          acc1[mm * 4u + nn] += a1 * b;
          ${v.dual ? 'acc2[mm * 4u + nn] += a2 * b;' : ''}
        }
      }
    }
    workgroupBarrier();
  }
  for (var mm = 0u; mm < 4u; mm++) {
    let m = m0 + ty * 4u + mm;
    if (m >= p.M) { continue; }
    for (var nn = 0u; nn < 4u; nn++) {
      let n = n0 + tx * 4u + nn;
      if (n >= p.N) { continue; }
      let o = (e * p.M + m) * p.N + n;
      C1[o] = acc1[mm * 4u + nn];
      ${v.dual ? 'C2[o] = acc2[mm * 4u + nn];' : ''}
    }
  }
}`;
}
