/**
 * FlashAttention-2 backward in three kernels, none of which stores a T x T matrix:
 *   rowDot   D_t = dO_t . o_t                      (one invocation per query row)
 *   dkdv     a workgroup owns BKV key rows of one (batch, head), keeps K and V in workgroup memory and
 *            dk, dv in registers, and walks the query blocks that can see them (from the diagonal on
 *            when causal), recomputing P = exp(scale q.k - lse) and dS = P (dO.v - D) per tile
 *   dq       a workgroup owns BQ query rows, keeps Q and dO, walks the key blocks up to the diagonal
 * dq and dk/dv are separate because WebGPU has no float atomics: each output row has exactly one owner.
 *
 * Thread (r, c) of the BQ x BKV grid computes tile entry (query r, key c). For the accumulation the same
 * index is read as (lane = r, key row c) in dkdv (columns lane, lane + BQ, ...) and as (query row r,
 * lane c) in dq (columns c, c + BKV, ...), so every output element has one thread.
 *
 * Rows sit in workgroup memory with a stride of one element (f32 or vec4) more than their width: with D a
 * multiple of 32 (192, 128) the 16 threads reading 16 different K rows at one column would otherwise all
 * hit one memory bank. When Dk and Dv are multiples of 4 everything moves as vec4 (a quarter of the
 * workgroup-memory load instructions, which bound these kernels), else as f32.
 *
 * Tile sizes are picked per head size so the working set, (BQ + BKV)(Dk + Dv) + 2 BQ BKV floats, fits
 * the device's workgroup memory (32 KiB on lavapipe and in the WebGPU default): 16 x 16 for small heads,
 * smaller for the 192/128 heads of the 48B model and the 256/256 worst case.
 */
import { linearGroup } from '../common.js';

export const ROWDOT_WG = 64;

export interface BackwardTiles {
  /** Rows a workgroup keeps for the whole kernel (keys in dkdv, queries in dq). */
  own: number;
  /** Rows streamed per step (queries in dkdv, keys in dq). */
  step: number;
}

export function backwardTiles(Dk: number, Dv: number, workgroupBytes: number): BackwardTiles {
  const budget = Math.floor(workgroupBytes / 4);
  for (const [own, step] of [
    [16, 16],
    [16, 8],
    [8, 8],
    [8, 4],
    [4, 4],
  ]) {
    // K, V, Q, dO tiles (each padded by one row of lanes), P and dS, lse and D rows.
    if ((own + step) * (Dk + Dv + 8) + 2 * own * step + 6 * Math.max(own, step) <= budget) return { own, step };
  }
  throw new Error(
    `attentionBackward: head sizes Dk=${Dk}, Dv=${Dv} do not fit ${workgroupBytes} B of workgroup memory`,
  );
}

export interface BackwardVariant {
  Dk: number;
  Dv: number;
  causal: boolean;
  tiles: BackwardTiles;
  /** 4: rows moved and multiplied as vec4 (Dk, Dv multiples of 4: flashVec), a quarter of the loads; else 1. */
  vec: 1 | 4;
}

export function backwardKey(kind: 'dkdv' | 'dq', v: BackwardVariant): string {
  return `attention_bwd_${kind}_dk${v.Dk}_dv${v.Dv}_${v.causal ? 'causal' : 'full'}_${v.tiles.own}x${v.tiles.step}_v${v.vec}`;
}

/** D[(b H + h) T + t] = sum_c dO[b, t, h, c] o[b, t, h, c]; rows numbered in [B, T, H] order. */
export function rowDotWgsl(Dv: number): string {
  return /* wgsl */ `
struct Params { rows: u32, T: u32, H: u32, _p: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> O: array<f32>;
@group(0) @binding(2) var<storage, read> dO: array<f32>;
@group(0) @binding(3) var<storage, read_write> D: array<f32>;
@compute @workgroup_size(${ROWDOT_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = ${linearGroup} * ${ROWDOT_WG}u + lid;
  if (row >= p.rows) { return; }
  var acc = 0.0;
  for (var c = 0u; c < ${Dv}u; c++) { acc += O[row * ${Dv}u + c] * dO[row * ${Dv}u + c]; }
  let h = row % p.H;
  let bt = row / p.H;
  let b = bt / p.T;
  let t = bt % p.T;
  D[(b * p.H + h) * p.T + t] = acc;
}`;
}

/** Element type, widths in elements, and the WGSL snippets that differ between the f32 and vec4 forms. */
function shape(v: BackwardVariant) {
  const ty = v.vec === 4 ? 'vec4<f32>' : 'f32';
  return {
    ty,
    K: v.Dk / v.vec,
    V: v.Dv / v.vec,
    zero: `${ty}(0.0)`,
    dot: (a: string, b: string) => (v.vec === 4 ? `dot(${a}, ${b})` : `${a} * ${b}`),
  };
}

function header(ty: string): string {
  return `
struct Params { T: u32, H: u32, scale: f32, dk: u32, dv: u32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Q: array<${ty}>;
@group(0) @binding(2) var<storage, read> K: array<${ty}>;
@group(0) @binding(3) var<storage, read> V: array<${ty}>;
@group(0) @binding(4) var<storage, read> dO: array<${ty}>;
@group(0) @binding(5) var<storage, read> LSE: array<f32>;
@group(0) @binding(6) var<storage, read> Drow: array<f32>;`;
}

/**
 * WGSL loading rows [r0, r0 + n) of a [B, T, H, width] tensor's head (width in elements) into a workgroup
 * array with row stride width + 1 (zeros past T).
 */
function loadRows(dst: string, src: string, n: number, width: number, r0: string, WG: number, zero: string): string {
  return `for (var i = lid; i < ${n * width}u; i += ${WG}u) {
    let row = ${r0} + i / ${width}u;
    ${dst}[(i / ${width}u) * ${width + 1}u + i % ${width}u] = select(${zero}, ${src}[((b * p.T + min(row, p.T - 1u)) * p.H + h) * ${width}u + i % ${width}u], row < p.T);
  }`;
}

/** WGSL computing, for thread (r, c), the score tile entry: sets P and dS (masked entries 0). */
function tileEntry(v: BackwardVariant, BKV: number, t: string, j: string): string {
  const { K, V, dot } = shape(v);
  return `var s = 0.0;
    for (var d = 0u; d < p.dk; d++) { s += ${dot(`qs[r * ${K + 1}u + d]`, `ks[c * ${K + 1}u + d]`)}; }
    var dp = 0.0;
    for (var d = 0u; d < p.dv; d++) { dp += ${dot(`dos[r * ${V + 1}u + d]`, `vs[c * ${V + 1}u + d]`)}; }
    let visible = ${t} < p.T && ${j} < p.T${v.causal ? ` && ${j} <= ${t}` : ''};
    let P = select(0.0, exp(s * p.scale - rowL[r]), visible);
    ps[r * ${BKV}u + c] = P;
    dss[r * ${BKV}u + c] = P * (dp - rowD[r]);`;
}

/** Accumulators name0..name{n-1} (unrolled by the generator, so no indexed private array). */
function decl(name: string, n: number, zero: string): string {
  return Array.from({ length: n }, (_, i) => `var ${name}${i} = ${zero};`).join(' ');
}

function unrolled(n: number, line: (i: number) => string): string {
  return Array.from({ length: n }, (_, i) => line(i)).join('\n      ');
}

function sharedDecls(v: BackwardVariant, BQ: number, BKV: number): string {
  const { ty, K, V } = shape(v);
  // Padded by one tile row: the unrolled accumulations read columns up to a multiple of the lane count
  // past the row width, whose sums are never stored.
  const pad = Math.max(BQ, BKV);
  return `var<workgroup> qs: array<${ty}, ${BQ * (K + 1) + pad}>;
var<workgroup> dos: array<${ty}, ${BQ * (V + 1) + pad}>;
var<workgroup> ks: array<${ty}, ${BKV * (K + 1) + pad}>;
var<workgroup> vs: array<${ty}, ${BKV * (V + 1) + pad}>;
var<workgroup> ps: array<f32, ${BQ * BKV}>;
var<workgroup> dss: array<f32, ${BQ * BKV}>;
var<workgroup> rowL: array<f32, ${BQ}>;
var<workgroup> rowD: array<f32, ${BQ}>;`;
}

function loadRowStats(BQ: number, q0: string): string {
  return `if (lid < ${BQ}u) {
    let t = ${q0} + lid;
    let si = (b * p.H + h) * p.T + min(t, p.T - 1u);
    rowL[lid] = LSE[si];
    rowD[lid] = Drow[si];
  }`;
}

export function dkdvWgsl(v: BackwardVariant): string {
  const { ty, K, V, zero } = shape(v);
  const BKV = v.tiles.own;
  const BQ = v.tiles.step;
  const WG = BQ * BKV;
  const PK = Math.ceil(K / BQ);
  const PV = Math.ceil(V / BQ);
  return /* wgsl */ `${header(ty)}
@group(0) @binding(7) var<storage, read_write> dK: array<${ty}>;
@group(0) @binding(8) var<storage, read_write> dV: array<${ty}>;
${sharedDecls(v, BQ, BKV)}

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let r = lid / ${BKV}u;
  let c = lid % ${BKV}u;
  let k0 = wid.x * ${BKV}u;
  let h = wid.y;
  let b = wid.z;
  ${loadRows('ks', 'K', BKV, K, 'k0', WG, zero)}
  ${loadRows('vs', 'V', BKV, V, 'k0', WG, zero)}
  ${decl('dk', PK, zero)}
  ${decl('dv', PV, zero)}
  // Causal: queries before this key block see none of it.
  for (var q0 = ${v.causal ? `(k0 / ${BQ}u) * ${BQ}u` : '0u'}; q0 < p.T; q0 += ${BQ}u) {
    workgroupBarrier();
    ${loadRows('qs', 'Q', BQ, K, 'q0', WG, zero)}
    ${loadRows('dos', 'dO', BQ, V, 'q0', WG, zero)}
    ${loadRowStats(BQ, 'q0')}
    workgroupBarrier();
    ${tileEntry(v, BKV, 'q0 + r', 'k0 + c')}
    workgroupBarrier();
    // Thread (lane r, key row c): dv[c, col] += sum_t P[t, c] dO[t, col], dk likewise with dS and Q, for
    // col = r, r + BQ, ...; the unrolled per-column statements keep the accumulators in registers.
    for (var tt = 0u; tt < ${BQ}u; tt++) {
      let pv = ps[tt * ${BKV}u + c];
      let gs = dss[tt * ${BKV}u + c];
      let vb = tt * ${V + 1}u + r;
      let kb = tt * ${K + 1}u + r;
      ${unrolled(PV, (i) => `dv${i} += pv * dos[vb + ${i * BQ}u];`)}
      ${unrolled(PK, (i) => `dk${i} += gs * qs[kb + ${i * BQ}u];`)}
    }
  }
  let j = k0 + c;
  if (j < p.T) {
    let base = (b * p.T + j) * p.H + h;
    ${unrolled(PK, (i) => `if (r + ${i * BQ}u < ${K}u) { dK[base * ${K}u + r + ${i * BQ}u] = dk${i} * p.scale; }`)}
    ${unrolled(PV, (i) => `if (r + ${i * BQ}u < ${V}u) { dV[base * ${V}u + r + ${i * BQ}u] = dv${i}; }`)}
  }
}`;
}

export function dqWgsl(v: BackwardVariant): string {
  const { ty, K, V, zero } = shape(v);
  const BQ = v.tiles.own;
  const BKV = v.tiles.step;
  const WG = BQ * BKV;
  const PK = Math.ceil(K / BKV);
  return /* wgsl */ `${header(ty)}
@group(0) @binding(7) var<storage, read_write> dQ: array<${ty}>;
${sharedDecls(v, BQ, BKV)}

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let r = lid / ${BKV}u;
  let c = lid % ${BKV}u;
  let q0 = wid.x * ${BQ}u;
  let h = wid.y;
  let b = wid.z;
  ${loadRows('qs', 'Q', BQ, K, 'q0', WG, zero)}
  ${loadRows('dos', 'dO', BQ, V, 'q0', WG, zero)}
  ${loadRowStats(BQ, 'q0')}
  ${decl('dq', PK, zero)}
  let lastKey = ${v.causal ? `min(q0 + ${BQ - 1}u, p.T - 1u)` : 'p.T - 1u'};
  for (var k0 = 0u; k0 <= lastKey; k0 += ${BKV}u) {
    workgroupBarrier();
    ${loadRows('ks', 'K', BKV, K, 'k0', WG, zero)}
    ${loadRows('vs', 'V', BKV, V, 'k0', WG, zero)}
    workgroupBarrier();
    ${tileEntry(v, BKV, 'q0 + r', 'k0 + c')}
    workgroupBarrier();
    // Thread (query row r, lane c): dq[r, col] += sum_j dS[r, j] k[j, col] for col = c, c + BKV, ...
    for (var jj = 0u; jj < ${BKV}u; jj++) {
      let gs = dss[r * ${BKV}u + jj];
      let kb = jj * ${K + 1}u + c;
      ${unrolled(PK, (i) => `dq${i} += gs * ks[kb + ${i * BKV}u];`)}
    }
  }
  let t = q0 + r;
  if (t < p.T) {
    let base = ((b * p.T + t) * p.H + h) * ${K}u;
    ${unrolled(PK, (i) => `if (c + ${i * BKV}u < ${K}u) { dQ[base + c + ${i * BKV}u] = dq${i} * p.scale; }`)}
  }
}`;
}
