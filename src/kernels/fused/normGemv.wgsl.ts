/**
 * Residual add, RMSNorm and the GEMV that reads the normalised row, in one dispatch for one row (the
 * batch-1 decode step): every workgroup forms s = x + (d0 [+ d1]) for the whole row (K values, from
 * cache after the first workgroup), reduces sum(s^2) to 1/rms, keeps w * s / rms in workgroup memory, and
 * then computes its 8 outputs like the decode GEMV (matmul/gemv.wgsl.ts: 32 lanes per output sweeping
 * W's row with 16-byte loads). Workgroup 0 also writes s, the new residual stream (and, if asked, the
 * normalised row). The per-workgroup
 * prologue rereads 4*K bytes from cache, small against the 8 rows of W each workgroup streams.
 *
 * Needs K % 8 == 0 (bf16 W) or K % 4 == 0 (f32 W) and K <= NORM_GEMV_MAX_K (workgroup memory).
 *
 * `conv` (KDA decode): outputs 0..C-1 are also the input of the layer's short causal conv (q|k|v): the
 * lane that writes output n < C runs the conv step of channel n on it (convStep.wgsl.ts for one row: the
 * W-1 carried inputs and this one, in that order, then silu), writes the result to CY[n] and shifts
 * channel n's tail in place. Each channel has one writer, so no other thread sees a half-shifted tail, and
 * the conv costs no dispatch and no extra pass over the projection.
 */
import { type FloatDType, loadFn, storageElem, workgroupReduce } from '../wgslLib.js';
import { gemvEntryWgsl, l2PrefetchWgsl } from './l2Prefetch.js';
import { type RouteFoldVariant, routeNeedsSubgroups } from './routeFold.wgsl.js';
import { routeTailKey, routeTailWgsl } from './routeTail.wgsl.js';
import {
  bf16ChunkDot,
  decodeTuning,
  laneTreeSum,
  prefetchOf,
  type SweepSpec,
  sweepPreloadWgsl,
  subgroupReduceWgsl,
  subgroupRowSumWgsl,
  sweepWgsl,
} from './sweep.js';

export const NG_LANES = 32;
export const NG_ROWS_PER_WG = 8;
/** 12 KB of staged row, within WebGPU's 16 KB of workgroup memory beside the two reduction arrays. */
export const NORM_GEMV_MAX_K = 3072;
/**
 * Rows a workgroup computes by default (NormGemvVariant.rows; bench decode --norm-gemv-rows). Each
 * workgroup repeats the row's add and norm (reading 2-3 rows of K f32 from cache and reducing them), so more
 * rows a workgroup means fewer of those prologues: the LM head (163,840 rows at the 48B shapes) runs
 * 20,480 of them at 8 rows, ~0.5 GB of cache reads beside its 0.75 GB of weights.
 */
export const normGemvTuning: {
  rows?: number;
  convRows?: number;
  /** Loads per lane in flight in every kind's row sweep (NormGemvVariant.unroll's default; else decodeTuning.unroll). */
  unroll?: number;
  /**
   * NormGemvVariant.lanes defaults by kind (bench decode --norm-gemv-lanes plain,conv,route; sweep normGemvLanes):
   * plain (no conv, no route), conv (KDA's input projection) and route (the MoE layer's packed projection with the
   * route tail). Unset: NG_LANES. At 64 lanes on the H200 (48B, batch 1, int8 cache, 4K, profiled ms a step,
   * bench/results/2026-12-02-h200-s15-decrest3-s1-sweep.json): norm_gemv_route 0.500 against 0.515-0.527, but
   * TPOT a tie in own processes (median step 3.564 / 3.564 against 3.561 / 3.558; 1M 8.337 against 8.325);
   * norm_gemv 0.502 against 0.386-0.395 and norm_gemv_conv 0.581 against 0.535-0.562: slower. So 32 everywhere.
   */
  lanes?: { plain?: number; conv?: number; route?: number };
} = {};

export interface NormGemvVariant {
  K: number;
  deltas: 1 | 2;
  normDtype: FloatDType;
  wDtype: 'f32' | 'bf16';
  /** Workgroup 0 also writes the normalised row (when later ops read it too). */
  normed: boolean;
  /** The KDA conv step on outputs 0..C-1 (C in the uniforms): kernel width and weight dtype. */
  conv?: { W: number; wDtype: FloatDType };
  /** Loads per lane in flight in the row sweep (sweep.ts); default decodeTuning.unroll. */
  unroll?: number;
  /** The sweep's first loads issued before the norm (sweep.ts prefetchOf); default decodeTuning.prefetch. */
  prefetch?: boolean;
  /**
   * Lanes sweeping one output row (a power of two, 8..256; default normGemvTuning.lanes by kind, else NG_LANES).
   * More lanes a row: fewer chunks a lane (a row of K = 2304 bf16 is 288 16-byte chunks: 9 a lane at 32 lanes, 3
   * rounds of loads at unroll 4; 4.5 at 64, 2 rounds) and, at the same workgroup size, half the rows a workgroup and
   * twice the workgroups (the MoE down projection gained this way: 0.865 -> 0.67 ms a step at 64 lanes). The row's
   * partials meet over more lanes (another summation order: equal within f32 rounding, not bit-equal).
   */
  lanes?: number;
  /**
   * Output rows a workgroup computes, lanes (32) each (a power of two, at most 32: 1024 invocations);
   * default normGemvTuning.rows, else NG_ROWS_PER_WG. Another workgroup size sums the norm's squares in
   * another tree (equal within f32 rounding, not bit-equal).
   */
  rows?: number;
  /**
   * The MoE router on outputs rcol..rcol+E-1 (the router logits of the packed projection; rcol, the router
   * workgroups' first index rg0 and count rwg in the uniforms): the last router workgroup to finish ranks them
   * and writes the token's picks and weights (routeTail.wgsl.ts). One row (the decode token) only.
   */
  route?: RouteFoldVariant;
  /**
   * L2 prefetch workgroups after the grid's own (l2Prefetch.ts): two bindings after all others (the next
   * kernel's weights, the sink); the sink's guard is the uniforms' `guard` (without a route, four more words
   * after C; with one, its first spare word). The outputs are unchanged.
   */
  l2?: boolean;
  /**
   * The prologue's loads issued together (default decodeTuning.eager): each invocation's x + deltas chunks and
   * norm weights are loaded before any is used, instead of one chunk a loop iteration (a trip to cache each); the
   * same values in the same order (bit-equal).
   */
  eager?: boolean;
  /**
   * The subgroup size the kernel's sums are generated for (sweep.ts decodeSubgroupSize): the row sums and the
   * norm's sum of squares by subgroup shuffles instead of workgroup-memory trees; unset: the trees.
   */
  sg?: number;
}

/** Workgroup memory of a variant's kernel, bytes: the staged row, the dot and norm trees, the route's arrays. */
export function normGemvSharedBytes(v: NormGemvVariant): number {
  const WG = normGemvLanes(v) * normGemvRows(v);
  const P = v.route ? 2 ** Math.ceil(Math.log2(Math.max(2, v.route.E, v.route.k))) : 0;
  return 4 * v.K + 8 * WG + (v.route ? 8 * P + 4 * v.route.E + 4 : 0);
}

/**
 * Rows a workgroup of the conv variant (KDA's input projection, 12,576 rows at the 48B shapes) computes unless
 * normGemvTuning.rows or the variant says otherwise (normGemvTuning.convRows, bench decode --norm-gemv-conv-rows;
 * see normGemvRows). 16 since the ninth session: half the workgroups, each repeating the row's add and norm
 * once for 16 rows of W. H200, 48B preset, 4K, profiled norm_gemv_conv ms a step over 19 dispatches (bench/
 * results/2026-12-02-h200-kmoe9-s{1,2}-sweep.json): 0.574-0.584 at 16 rows (five timed rows, two processes)
 * against 0.619-0.653 at 8 (19 rows, four processes). The norm's squares meet in a 512-invocation tree: equal
 * within f32 rounding, not bit-equal (--check session9LogitsMaxRelDiff 9.1e-7, greedy tokens equal). The
 * other kinds stay at 8: at 16 the plain projections gained ~0.015 ms a step and the one with the route tail
 * none.
 */
export const NG_CONV_ROWS = 16;

/**
 * The rows a workgroup of the variant computes (its grid is ceil(N / this) workgroups): v.rows, else
 * normGemvTuning.rows (every kind), else for the conv variant normGemvTuning.convRows ?? NG_CONV_ROWS, else
 * NG_ROWS_PER_WG.
 */
export function normGemvRows(v: NormGemvVariant): number {
  // The defaults are for 32 lanes a row: at other lane counts the same workgroup size (rows scaled, at least 1).
  const scale = (r: number) => Math.max(1, (r * NG_LANES) / normGemvLanes(v));
  const r = v.rows ?? normGemvTuning.rows ?? scale(v.conv ? (normGemvTuning.convRows ?? NG_CONV_ROWS) : NG_ROWS_PER_WG);
  if (!(Number.isInteger(r) && r >= 1 && r <= 32 && (r & (r - 1)) === 0 && r * normGemvLanes(v) <= 1024))
    throw new Error(
      `normGemv: ${r} rows a workgroup of ${normGemvLanes(v)} lanes, expected a power of two in 1..32, <= 1024 invocations`,
    );
  return r;
}

/** The lanes a row of the variant gets (NormGemvVariant.lanes, else normGemvTuning.lanes for its kind, else 32). */
export function normGemvLanes(v: NormGemvVariant): number {
  const t = normGemvTuning.lanes;
  const l = v.lanes ?? (v.conv ? t?.conv : v.route ? t?.route : t?.plain) ?? NG_LANES;
  if (!(Number.isInteger(l) && l >= 8 && l <= 256 && (l & (l - 1)) === 0))
    throw new Error(`normGemv: ${l} lanes a row, expected a power of two in 8..256`);
  return l;
}

function unrollOf(v: NormGemvVariant): number {
  return Math.max(1, v.unroll ?? normGemvTuning.unroll ?? decodeTuning.unroll);
}

function eagerOf(v: NormGemvVariant): boolean {
  return v.eager ?? decodeTuning.eager;
}

export function normGemvKey(v: NormGemvVariant): string {
  const conv = v.conv ? `_conv${v.conv.W}${v.conv.wDtype}` : '';
  const u = unrollOf(v);
  const r = normGemvRows(v);
  const lanes = normGemvLanes(v);
  const route = v.route ? `_${routeTailKey(v.route, lanes * r)}` : '';
  return `norm_gemv_k${v.K}_d${v.deltas}_${v.normDtype}_${v.wDtype}${v.normed ? '_n' : ''}${conv}${u > 1 ? `_u${u}` : ''}${prefetchOf(v) ? '_pf' : ''}${r !== NG_ROWS_PER_WG ? `_r${r}` : ''}${route}${v.l2 ? '_l2' : ''}${eagerOf(v) ? '_eg' : ''}${v.sg ? `_sg${v.sg}` : ''}${lanes !== NG_LANES ? `_l${lanes}` : ''}`;
}

export function normGemvWgsl(v: NormGemvVariant): string {
  const ROWS = normGemvRows(v);
  const LANES = normGemvLanes(v);
  const WG = LANES * ROWS;
  const bf16 = v.wDtype === 'bf16';
  const two = v.deltas === 2;
  const K4 = v.K / 4;
  const nb = two ? 4 : 3;
  const L: string[] = [];
  if (v.sg || routeNeedsSubgroups(v.route, WG)) L.push('enable subgroups;');
  // C: conv channels (the conv variant; unused otherwise). The route: see NormGemvVariant.route.
  L.push(
    v.route
      ? 'struct Params { N: u32, K: u32, eps: f32, C: u32, rcol: u32, rg0: u32, rwg: u32, renorm: u32, scaling: f32,' +
          ` ${v.l2 ? 'guard' : '_a'}: u32, _b: u32, _c: u32 };`
      : `struct Params { N: u32, K: u32, eps: f32, C: u32${v.l2 ? ', guard: u32, _a: u32, _b: u32, _c: u32' : ''} };`,
  );
  L.push('@group(0) @binding(0) var<uniform> p: Params;');
  L.push('@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;');
  L.push('@group(0) @binding(2) var<storage, read> D0: array<vec4<f32>>;');
  if (two) L.push('@group(0) @binding(3) var<storage, read> D1: array<vec4<f32>>;');
  L.push(`@group(0) @binding(${nb}) var<storage, read> NW: array<${storageElem(v.normDtype)}>;`);
  L.push(`@group(0) @binding(${nb + 1}) var<storage, read> W: array<${bf16 ? 'vec4<u32>' : 'vec4<f32>'}>;`);
  L.push(`@group(0) @binding(${nb + 2}) var<storage, read_write> S: array<vec4<f32>>;`);
  L.push(`@group(0) @binding(${nb + 3}) var<storage, read_write> Y: array<f32>;`);
  if (v.normed) L.push(`@group(0) @binding(${nb + 4}) var<storage, read_write> NR: array<vec4<f32>>;`);
  const cb = nb + (v.normed ? 5 : 4);
  if (v.conv) {
    L.push(`@group(0) @binding(${cb}) var<storage, read> CW: array<${storageElem(v.conv.wDtype)}>;`);
    L.push(`@group(0) @binding(${cb + 1}) var<storage, read_write> TAIL: array<f32>;`);
    L.push(`@group(0) @binding(${cb + 2}) var<storage, read_write> CY: array<f32>;`);
    L.push(loadFn('convWeight', 'CW', v.conv.wDtype));
  }
  const rb = v.conv ? cb + 3 : cb;
  if (v.route) L.push(routeTailWgsl(v.route, rb, WG));
  // After the route's RT, RB (with a bias), RIdx and RW.
  if (v.l2) L.push(l2PrefetchWgsl(v.route ? rb + (v.route.hasBias ? 4 : 3) : rb, WG));
  L.push(loadFn('normWeight', 'NW', v.normDtype));
  L.push(`var<workgroup> row: array<vec4<f32>, ${K4}>;`);
  L.push(`var<workgroup> dots: array<f32, ${WG}>;`);
  L.push(v.sg ? subgroupReduceWgsl('red', WG, v.sg) : workgroupReduce('red', WG, 'f32', 'a + b'));
  if (bf16) {
    L.push('fn lo(w: u32) -> f32 { return bitcast<f32>(w << 16u); }');
    L.push('fn hi(w: u32) -> f32 { return bitcast<f32>(w & 0xffff0000u); }');
  }
  // The grid's own workgroups first; with l2 the rest prefetch.
  L.push(...gemvEntryWgsl(WG, ROWS, v.l2));
  const per = bf16 ? 8 : 4;
  const pre = prefetchOf(v);
  L.push(`  let lane = lid % ${LANES}u; let r = lid / ${LANES}u;`);
  L.push(`  let n = g * ${ROWS}u + r;`);
  L.push(`  let chunks = p.K / ${per}u;`);
  L.push('  let wRow = n * chunks;');
  const sweep: SweepSpec = {
    U: unrollOf(v),
    lane: 'lane',
    lanes: LANES,
    chunks: 'chunks',
    load: (c) => `W[wRow + ${c}]`,
    term: (c, w) => (bf16 ? bf16ChunkDot(w, `row[(${c}) * 2u]`, `row[(${c}) * 2u + 1u]`) : `dot(row[${c}], ${w})`),
    acc: 'acc',
    tag: 'g',
    indent: '    ',
    preloaded: pre,
  };
  if (pre) L.push(...sweepPreloadWgsl({ ...sweep, indent: '  ' }, 'n < p.N', bf16 ? 'vec4<u32>()' : 'vec4<f32>()'));
  if (eagerOf(v)) L.push(...eagerPrologue(v, K4, WG, two));
  else {
    L.push('  var ss = 0.0;');
    L.push(`  for (var c = lid; c < ${K4}u; c += ${WG}u) {`);
    L.push(`    let s = X[c] + ${two ? '(D0[c] + D1[c])' : 'D0[c]'};`);
    L.push('    row[c] = s;');
    L.push('    if (g == 0u) { S[c] = s; }');
    L.push('    ss += dot(s, s);');
    L.push('  }');
    L.push('  let inv = 1.0 / sqrt(redReduce(lid, ss) / f32(p.K) + p.eps);');
    L.push(`  for (var c = lid; c < ${K4}u; c += ${WG}u) {`);
    L.push(
      '    let w = vec4<f32>(normWeight(4u * c), normWeight(4u * c + 1u), normWeight(4u * c + 2u), normWeight(4u * c + 3u));',
    );
    L.push('    row[c] = w * (row[c] * inv);');
    if (v.normed) L.push('    if (g == 0u) { NR[c] = row[c]; }');
    L.push('  }');
  }
  L.push('  workgroupBarrier();');
  L.push('  var acc = 0.0;');
  L.push('  if (n < p.N) {');
  L.push(...sweepWgsl(sweep));
  L.push('  }');
  L.push(...(v.sg ? subgroupRowSumWgsl([{ v: 'acc', slot: (i) => `dots[${i}]` }], LANES, v.sg) : laneTreeSum(LANES)));
  if (!v.conv) L.push('  if (lane == 0u && n < p.N) { Y[n] = dots[lid]; }');
  else {
    const W = v.conv.W;
    L.push('  if (lane == 0u && n < p.N) {');
    L.push('    let xv = dots[lid];');
    L.push('    Y[n] = xv;');
    L.push('    if (n < p.C) {');
    L.push('      var ca = 0.0;');
    for (let j = 0; j < W - 1; j++) {
      L.push(`      let t${j} = TAIL[${j}u * p.C + n];`);
      L.push(`      ca += convWeight(n * ${W}u + ${j}u) * t${j};`);
    }
    L.push(`      ca += convWeight(n * ${W}u + ${W - 1}u) * xv;`);
    L.push('      CY[n] = ca / (1.0 + exp(-ca));');
    for (let j = 0; j < W - 2; j++) L.push(`      TAIL[${j}u * p.C + n] = t${j + 1};`);
    L.push(`      TAIL[${W - 2}u * p.C + n] = xv;`);
    L.push('    }');
    L.push('  }');
  }
  if (v.route) {
    // g is uniform (workgroup id): the router workgroups publish their logits (the values Y got), and the last
    // of them to arrive ranks the token's choices.
    const E = v.route.E;
    L.push('  if (g >= p.rg0 && g < p.rg0 + p.rwg) {');
    L.push(`    if (lane == 0u && n >= p.rcol && n < p.rcol + ${E}u) { routePublish(n - p.rcol, dots[lid]); }`);
    L.push('    if (routeArrive(lid, p.rwg)) { routeToken(lid, 0u, true); }');
    L.push('  }');
  }
  L.push('}');
  return L.join('\n');
}

/**
 * normGemvWgsl's prologue with its loads issued together (NormGemvVariant.eager): invocation lid's chunks
 * c_i = lid + i * WG (i < ceil(K4 / WG)) of x + deltas and of the norm weight are all loaded first, then summed
 * into ss in the loop's order, staged and scaled as the loop does (bit-equal: the same operations on the same
 * values; row[c_i] is s_i, which this invocation wrote).
 */
function eagerPrologue(v: NormGemvVariant, K4: number, WG: number, two: boolean): string[] {
  const IT = Math.ceil(K4 / WG);
  const L: string[] = [];
  const c = (i: number) => `lid + ${i * WG}u`;
  for (let i = 0; i < IT; i++) {
    L.push(`  let c${i} = ${c(i)};`);
    L.push(`  var s${i} = vec4<f32>(); var w${i} = vec4<f32>();`);
    L.push(`  if (c${i} < ${K4}u) {`);
    L.push(`    s${i} = X[c${i}] + ${two ? `(D0[c${i}] + D1[c${i}])` : `D0[c${i}]`};`);
    L.push(
      `    w${i} = vec4<f32>(normWeight(4u * c${i}), normWeight(4u * c${i} + 1u), normWeight(4u * c${i} + 2u), normWeight(4u * c${i} + 3u));`,
    );
    L.push('  }');
  }
  L.push('  var ss = 0.0;');
  for (let i = 0; i < IT; i++) {
    L.push(`  if (c${i} < ${K4}u) {`);
    L.push(`    row[c${i}] = s${i};`);
    L.push(`    if (g == 0u) { S[c${i}] = s${i}; }`);
    L.push(`    ss += dot(s${i}, s${i});`);
    L.push('  }');
  }
  L.push('  let inv = 1.0 / sqrt(redReduce(lid, ss) / f32(p.K) + p.eps);');
  for (let i = 0; i < IT; i++) {
    L.push(`  if (c${i} < ${K4}u) {`);
    L.push(`    row[c${i}] = w${i} * (s${i} * inv);`);
    if (v.normed) L.push(`    if (g == 0u) { NR[c${i}] = row[c${i}]; }`);
    L.push('  }');
  }
  return L;
}
