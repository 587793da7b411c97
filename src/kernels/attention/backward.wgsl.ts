/**
 * FlashAttention-2 backward, register-tiled, in three kernels, none of which stores a T x T matrix:
 *   rowDot   D_t = dO_t . o_t                      (one invocation per query row)
 *   dkdv     a workgroup owns BLOCK key rows of one (batch, head) with dk, dv in registers, and walks the
 *            query blocks that can see them (from the diagonal on when causal): per block it forms
 *            S^T = K Q^T and dP^T = V dO^T, then P = exp(scale S - lse), dS = P (dP - D), and accumulates
 *            dv += P^T dO, dk += dS^T Q
 *   dq       a workgroup owns BLOCK query rows, walks the key blocks up to the diagonal: S = Q K^T,
 *            dP = dO V^T, dq += dS K
 * dq and dk/dv are separate because WebGPU has no float atomics: each output row has exactly one owner.
 *
 * Every product is a small matmul done the way kernels/matmul does it: 16 x 16 threads, each owning a
 * 4 x 4 block of the BLOCK x BLOCK score tile as four vec4 accumulators, fed by 16-wide slices of the
 * operands staged transposed (dimension-major) in workgroup memory so a thread reads one vec4 of "own"
 * rows and one vec4 of "step" rows per dimension: 16 FMAs per two loads. The score tile goes through
 * workgroup memory (P, then dS, in one buffer) because the accumulation dv += P^T dO contracts over the
 * rows the score tile spreads across threads. For the accumulations a thread owns 4 rows and the
 * columns tx, tx + 16, ... of the output (ceil(D / 16) vec4 accumulators over the 4 rows), reading 4 x 4
 * score blocks as four vec4 and the staged operand as scalars (consecutive threads, consecutive words).
 * Nothing is ever read from global memory twice within a step; K and V of the owned block are re-staged
 * per query block (they stay in L1/L2) so that the working set is one score tile plus a 16-row staging
 * slice: ~26 KB, which fits lavapipe's 32 KiB and leaves room for two workgroups per SM on the H200.
 *
 * Causal: with equal block sizes only the diagonal block needs the mask; blocks above it are skipped.
 * Workgroups are (head, block, batch), blocks numbered so the longest walks (workgroup y = 0, which the
 * GPU launches first) start first and the short ones fill in at the end.
 */
import { linearGroup } from '../common.js';

export const ROWDOT_WG = 64;

/** Rows per block (owned and streamed); 16 x 16 threads of 4 x 4 each. */
export const BLOCK = 64;
const TPR = 16; // threads per row and per column of the score tile
/** Staging slice: 16 dimensions of 64 rows for two operands, row stride 68 (vec4-aligned, bank-spread). */
const SROW = BLOCK + 4;
const STAGE = 2 * 16 * SROW;

export interface BackwardVariant {
  Dk: number;
  Dv: number;
  causal: boolean;
  /** Dk and Dv multiples of 4: inputs read as vec4 (a quarter of the global loads and index arithmetic). */
  vec: boolean;
}

export function backwardKey(kind: 'dkdv' | 'dq', v: BackwardVariant): string {
  return `attention_bwd_${kind}_tiled_dk${v.Dk}_dv${v.Dv}_${v.causal ? 'causal' : 'full'}${v.vec ? '_v4' : ''}`;
}

/** Blocks of BLOCK rows along T. */
export const blocksOf = (T: number) => Math.ceil(T / BLOCK);

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

/**
 * The loop bounds as uniforms (dims, block, contraction slice rows): constant bounds get fully unrolled,
 * which makes lavapipe's shader compile take minutes; the 16-wide inner loops stay constant.
 */
export function backwardLoopBounds(Dk: number, Dv: number): number[] {
  return [Dk, Dv, BLOCK, perThread(Dk).rows, perThread(Dv).rows];
}

/** Columns per thread in the accumulations, and the padded row width of a staged contraction slice. */
function perThread(D: number) {
  const cols = Math.ceil(D / TPR);
  const pad = cols * TPR;
  // Rows per contraction slice: the slice (rows x pad floats) must fit the staging buffer.
  const rows = Math.min(16, Math.floor(STAGE / pad / 4) * 4);
  return { cols, pad, rows };
}

function header(vec: boolean): string {
  const ty = vec ? 'vec4<f32>' : 'f32';
  return `
struct Params { T: u32, H: u32, scale: f32, nb: u32, dk: u32, dv: u32, blk: u32, rk: u32, rv: u32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Q: array<${ty}>;
@group(0) @binding(2) var<storage, read> K: array<${ty}>;
@group(0) @binding(3) var<storage, read> V: array<${ty}>;
@group(0) @binding(4) var<storage, read> dO: array<${ty}>;
@group(0) @binding(5) var<storage, read> LSE: array<f32>;
@group(0) @binding(6) var<storage, read> Drow: array<f32>;`;
}

function sharedDecls(): string {
  // One staging buffer of vec4 (WGSL has no aliasing): the score slices read it as vec4, the
  // contractions as scalars through a component index.
  return `var<workgroup> st4: array<vec4<f32>, ${STAGE / 4}>;
var<workgroup> ps: array<vec4<f32>, ${(BLOCK * SROW) / 4}>;`;
}

/** Element index of (row, col) of a [B, T, H, width] tensor's head h (row clamped into [0, T)). */
const at = (row: string, col: string, width: number) =>
  `((b * p.T + min(${row}, p.T - 1u)) * p.H + h) * ${width}u + ${col}`;

/**
 * WGSL accumulating into the vec4 accumulators <acc>0..3 (row i of the thread's own 4 rows, lanes = its
 * 4 step rows) the product own[r0A + 4 ty + i, :] . step[r0B + 4 tx + j, :] over width D, 16 dims at a
 * time. The slices sit dimension-major in st4 (own rows at 0, step rows at 16 * SROW floats) so the
 * inner loop reads one vec4 of each. The next slice is fetched into registers while the current one is
 * multiplied (as kernels/matmul does), hiding global-memory latency behind the FMAs.
 */
function scores(
  acc: string,
  own: string,
  step: string,
  D: number,
  vec: boolean,
  bound: string,
  r0A: string,
  r0B: string,
): string {
  const regs: string[] = [];
  const loads: string[] = [];
  const stores: string[] = [];
  for (const isB of [false, true]) {
    const src = isB ? step : own;
    const r0 = isB ? r0B : r0A;
    const base = isB ? `${(16 * SROW) / 4}u + ` : '';
    const tag = isB ? 'b' : 'a';
    if (vec) {
      // 64 rows x 16 dims = 256 vec4: one per thread, row lid / 4, dims 4 (lid % 4) .. + 3.
      const r = `r${tag}`;
      regs.push(`var ${r}: vec4<f32>;`);
      loads.push(
        `${r} = select(vec4<f32>(0.0), ${src}[${at(`${r0} + lid / 4u`, `min((DZ + (lid % 4u) * 4u) / 4u, ${D / 4 - 1}u)`, D / 4)}], ${r0} + lid / 4u < p.T && DZ + (lid % 4u) * 4u < ${D}u);`,
      );
      for (let k = 0; k < 4; k++)
        stores.push(`st4[${base}((lid % 4u) * 4u + ${k}u) * ${SROW / 4}u + lid / 16u][(lid / 4u) % 4u] = ${r}[${k}];`);
    } else {
      for (let n = 0; n < 4; n++) {
        const r = `r${tag}${n}`;
        const el = `(lid + ${n * TPR * TPR}u)`;
        regs.push(`var ${r}: f32;`);
        loads.push(
          `${r} = select(0.0, ${src}[${at(`${r0} + ${el} / 16u`, `min(DZ + ${el} % 16u, ${D - 1}u)`, D)}], ${r0} + ${el} / 16u < p.T && DZ + ${el} % 16u < ${D}u);`,
        );
        stores.push(`st4[${base}(${el} % 16u) * ${SROW / 4}u + ${el} / 64u][(${el} / 16u) % 4u] = ${r};`);
      }
    }
  }
  return `{
    ${regs.join(' ')}
    var d0 = 0u;
    ${loads.join('\n    ').replaceAll('DZ', 'd0')}
    for (; d0 < ${bound}; d0 += 16u) {
      workgroupBarrier();
      ${stores.join('\n      ')}
      workgroupBarrier();
      if (d0 + 16u < ${bound}) {
        ${loads.join('\n        ').replaceAll('DZ', '(d0 + 16u)')}
      }
      for (var dd = 0u; dd < 16u; dd++) {
        let a = st4[dd * ${SROW / 4}u + ty];
        let bb = st4[${(16 * SROW) / 4}u + dd * ${SROW / 4}u + tx];
        ${[0, 1, 2, 3].map((i) => `${acc}${i} = fma(vec4<f32>(a[${i}]), bb, ${acc}${i});`).join(' ')}
      }
    }
    }`;
}

/**
 * WGSL for acc_c[i] += sum_s ps[4 ty + i, s] * src[r0 + s, tx + 16 c] over the BLOCK step rows s (the
 * score block in ps, rows = own rows), the operand staged in slices of `rows` rows of width pad.
 */
function contract(acc: string, src: string, D: number, vec: boolean, rowsBound: string, r0: string): string {
  const { cols, pad, rows } = perThread(D);
  const n = rows * pad;
  const lines: string[] = [];
  for (let jj = 0; jj < 4; jj++) {
    lines.push(
      `{ let pc = vec4<f32>(p0[${jj}], p1[${jj}], p2[${jj}], p3[${jj}]); let sb = (sr + ${jj}u) * ${pad}u + tx;`,
    );
    for (let c = 0; c < cols; c++)
      lines.push(
        `  ${acc}${c} = fma(pc, vec4<f32>(st4[(sb + ${c * TPR}u) / 4u][(sb + ${c * TPR}u) % 4u]), ${acc}${c});`,
      );
    lines.push('}');
  }
  return `for (var s0 = 0u; s0 < p.blk; s0 += ${rowsBound}) {
      workgroupBarrier();
      ${
        vec
          ? `for (var e = lid; e < ${n / 4}u; e += ${TPR * TPR}u) {
        let row = ${r0} + s0 + (e * 4u) / ${pad}u;
        let c = (e * 4u) % ${pad}u;
        st4[e] = select(vec4<f32>(0.0), ${src}[${at('row', `min(c / 4u, ${D / 4 - 1}u)`, D / 4)}], row < p.T && c < ${D}u);
      }`
          : `for (var e = lid; e < ${n}u; e += ${TPR * TPR}u) {
        let row = ${r0} + s0 + e / ${pad}u;
        let c = e % ${pad}u;
        st4[e / 4u][e % 4u] = select(0.0, ${src}[${at('row', `min(c, ${D - 1}u)`, D)}], row < p.T && c < ${D}u);
      }`
      }
      workgroupBarrier();
      for (var s = s0; s < s0 + ${rowsBound}; s += 4u) {
        let p0 = ps[(ty * 4u) * ${SROW / 4}u + s / 4u];
        let p1 = ps[(ty * 4u + 1u) * ${SROW / 4}u + s / 4u];
        let p2 = ps[(ty * 4u + 2u) * ${SROW / 4}u + s / 4u];
        let p3 = ps[(ty * 4u + 3u) * ${SROW / 4}u + s / 4u];
        let sr = s - s0;
        ${lines.join('\n        ')}
      }
    }`;
}

const decl = (name: string, n: number) =>
  Array.from({ length: n }, (_, i) => `var ${name}${i} = vec4<f32>(0.0);`).join(' ');
const four = (line: (i: number) => string) => [0, 1, 2, 3].map(line).join('\n    ');

/** Stores of acc_c[i] (row r0 + 4 ty + i, column tx + 16 c) times `mul` into dst, inside the tensor. */
function storeRows(dst: string, acc: string, D: number, r0: string, mul: string): string {
  const { cols } = perThread(D);
  const out: string[] = [];
  for (let i = 0; i < 4; i++) {
    out.push(`if (${r0} + ty * 4u + ${i}u < p.T) {`);
    for (let c = 0; c < cols; c++) {
      const col = `tx + ${c * TPR}u`;
      const store = `${dst}[${at(`${r0} + ty * 4u + ${i}u`, col, D)}] = ${acc}${c}[${i}]${mul};`;
      out.push((c + 1) * TPR > D ? `  if (${col} < ${D}u) { ${store} }` : `  ${store}`);
    }
    out.push('}');
  }
  return out.join('\n  ');
}

function prologue(): string {
  return `let tx = lid % ${TPR}u;
  let ty = lid / ${TPR}u;
  let h = wid.x;
  let b = wid.z;`;
}

export function dkdvWgsl(v: BackwardVariant): string {
  const PK = perThread(v.Dk).cols;
  const PV = perThread(v.Dv).cols;
  return /* wgsl */ `${header(v.vec)}
@group(0) @binding(7) var<storage, read_write> dK: array<f32>;
@group(0) @binding(8) var<storage, read_write> dV: array<f32>;
${sharedDecls()}
var<workgroup> rowL: array<vec4<f32>, ${BLOCK / 4}>;
var<workgroup> rowD: array<vec4<f32>, ${BLOCK / 4}>;

@compute @workgroup_size(${TPR * TPR})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  ${prologue()}
  // Key block 0 is seen by every query block: the longest first.
  let k0 = wid.y * ${BLOCK}u;
  ${decl('dk', PK)}
  ${decl('dv', PV)}
  let keys = vec4<u32>(k0 + ty * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
  for (var q0 = ${v.causal ? 'k0' : '0u'}; q0 < p.T; q0 += ${BLOCK}u) {
    if (lid < ${BLOCK}u) {
      let si = (b * p.H + h) * p.T + min(q0 + lid, p.T - 1u);
      rowL[lid / 4u][lid % 4u] = LSE[si];
      rowD[lid / 4u][lid % 4u] = Drow[si];
    }
    ${decl('s', 4)}
    ${decl('g', 4)}
    // s_i = S^T rows (keys 4ty + i) x lanes (queries 4tx + j); g_i = dP^T likewise.
    ${scores('s', 'K', 'Q', v.Dk, v.vec, 'p.dk', 'k0', 'q0')}
    ${scores('g', 'V', 'dO', v.Dv, v.vec, 'p.dv', 'k0', 'q0')}
    let qs = vec4<u32>(q0 + tx * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
    let L = rowL[tx];
    let Dq = rowD[tx];
    ${four(
      (
        i,
      ) => `let vis${i} = (qs < vec4<u32>(p.T)) & (vec4<u32>(keys[${i}]) < vec4<u32>(p.T))${v.causal ? ` & (vec4<u32>(keys[${i}]) <= qs)` : ''};
    let P${i} = select(vec4<f32>(0.0), exp(s${i} * p.scale - L), vis${i});`,
    )}
    ${four((i) => `ps[(ty * 4u + ${i}u) * ${SROW / 4}u + tx] = P${i};`)}
    ${contract('dv', 'dO', v.Dv, v.vec, 'p.rv', 'q0')}
    workgroupBarrier();
    ${four((i) => `ps[(ty * 4u + ${i}u) * ${SROW / 4}u + tx] = P${i} * (g${i} - Dq);`)}
    ${contract('dk', 'Q', v.Dk, v.vec, 'p.rk', 'q0')}
  }
  ${storeRows('dK', 'dk', v.Dk, 'k0', ' * p.scale')}
  ${storeRows('dV', 'dv', v.Dv, 'k0', '')}
}`;
}

export function dqWgsl(v: BackwardVariant): string {
  const PK = perThread(v.Dk).cols;
  return /* wgsl */ `${header(v.vec)}
@group(0) @binding(7) var<storage, read_write> dQ: array<f32>;
${sharedDecls()}

@compute @workgroup_size(${TPR * TPR})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  ${prologue()}
  // The last query block walks every key block: the longest first.
  let q0 = (p.nb - 1u - wid.y) * ${BLOCK}u;
  ${decl('dq', PK)}
  let qs = vec4<u32>(q0 + ty * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
  let statBase = (b * p.H + h) * p.T;
  let L = vec4<f32>(${[0, 1, 2, 3].map((i) => `LSE[statBase + min(qs[${i}], p.T - 1u)]`).join(', ')});
  let Dq = vec4<f32>(${[0, 1, 2, 3].map((i) => `Drow[statBase + min(qs[${i}], p.T - 1u)]`).join(', ')});
  let lastKey = ${v.causal ? `min(q0 + ${BLOCK - 1}u, p.T - 1u)` : 'p.T - 1u'};
  for (var k0 = 0u; k0 <= lastKey; k0 += ${BLOCK}u) {
    ${decl('s', 4)}
    ${decl('g', 4)}
    // s_i = S rows (queries 4ty + i) x lanes (keys 4tx + j); g_i = dP likewise.
    ${scores('s', 'Q', 'K', v.Dk, v.vec, 'p.dk', 'q0', 'k0')}
    ${scores('g', 'dO', 'V', v.Dv, v.vec, 'p.dv', 'q0', 'k0')}
    let keys = vec4<u32>(k0 + tx * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
    ${four(
      (
        i,
      ) => `let vis${i} = (keys < vec4<u32>(p.T)) & (vec4<u32>(qs[${i}]) < vec4<u32>(p.T))${v.causal ? ` & (keys <= vec4<u32>(qs[${i}]))` : ''};
    let P${i} = select(vec4<f32>(0.0), exp(s${i} * p.scale - L[${i}]), vis${i});
    ps[(ty * 4u + ${i}u) * ${SROW / 4}u + tx] = P${i} * (g${i} - Dq[${i}]);`,
    )}
    ${contract('dq', 'K', v.Dk, v.vec, 'p.rk', 'k0')}
  }
  ${storeRows('dQ', 'dq', v.Dk, 'q0', ' * p.scale')}
}`;
}
