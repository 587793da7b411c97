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
import {
  BLOCK,
  contract,
  decl,
  four,
  perThread,
  prologue,
  SROW,
  scores,
  sharedDecls,
  storeRows,
  TILE_PARAMS,
  TPR,
} from './tiles.wgsl.js';

export const ROWDOT_WG = 64;

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

function header(vec: boolean): string {
  const ty = vec ? 'vec4<f32>' : 'f32';
  return `
${TILE_PARAMS}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Q: array<${ty}>;
@group(0) @binding(2) var<storage, read> K: array<${ty}>;
@group(0) @binding(3) var<storage, read> V: array<${ty}>;
@group(0) @binding(4) var<storage, read> dO: array<${ty}>;
@group(0) @binding(5) var<storage, read> LSE: array<f32>;
@group(0) @binding(6) var<storage, read> Drow: array<f32>;`;
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
  ${storeRows('dK', 'dk', v.Dk, 'k0', () => ' * p.scale')}
  ${storeRows('dV', 'dv', v.Dv, 'k0', () => '')}
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
  ${storeRows('dQ', 'dq', v.Dk, 'q0', () => ' * p.scale')}
}`;
}
