/**
 * KDA's output: y = W (rmsnorm_per_head(o, w_norm, eps) * sigmoid(gate)) for one row, in one dispatch
 * (the gated o_norm and o_proj of a decode step at batch 1). o and gate are [H * d]; the norm runs over
 * each head's d values. Every workgroup first reduces the H sums of squares (WG / H threads per head,
 * from cache after the first workgroup) to H inverse rms in workgroup memory; the GEMV then forms the
 * normalised, gated inputs as it sweeps W's rows (like normGemv.wgsl.ts: 32 lanes per output, 16-byte
 * loads of W), reading o and gate again from cache instead of staging the row: at the 48B shapes the
 * row is H * d = 4096 floats, past what workgroup memory holds beside the reductions.
 *
 * Needs d % 4 == 0, H | 256, and K = H * d % 8 == 0 (bf16 W) or % 4 == 0 (f32 W).
 */
import { type FloatDType, loadFn, storageElem } from '../wgslLib.js';
import { gemvEntryWgsl, l2PrefetchWgsl } from './l2Prefetch.js';
import {
  bf16ChunkDot,
  decodeTuning,
  laneTreeSum,
  prefetchOf,
  type SweepSpec,
  sweepPreloadWgsl,
  subgroupRowSumWgsl,
  sweepWgsl,
} from './sweep.js';

export const GNG_LANES = 32;
export const GNG_ROWS_PER_WG = 8;
export const GNG_WG = GNG_LANES * GNG_ROWS_PER_WG;

export interface GatedNormGemvVariant {
  H: number;
  d: number;
  normDtype: FloatDType;
  wDtype: 'f32' | 'bf16';
  /** Loads per lane in flight in the row sweep (sweep.ts); default decodeTuning.unroll. */
  unroll?: number;
  /**
   * Form the normalised, gated input once per workgroup in workgroup memory (4 * H * d bytes), instead of
   * per output row from o, gate and the norm weight in cache: at the 48B shapes the 8 rows of a workgroup
   * re-read 40 KB of inputs (and 4096 exps) per row for 8 KB of W each. Needs the workgroup memory.
   */
  staged?: boolean;
  /** The sweep's first loads issued before the norms (sweep.ts prefetchOf); default decodeTuning.prefetch. */
  prefetch?: boolean;
  /**
   * L2 prefetch workgroups after the grid's own (l2Prefetch.ts): bindings 6 (the next kernel's weights) and 7
   * (the sink), the uniforms' last word the sink's guard. The outputs are unchanged.
   */
  l2?: boolean;
  /**
   * Staged only: the prologue's loads issued together (default decodeTuning.eager): the head norms' o chunks and
   * the staged chunks' o, gate and norm weights are all loaded (and the gates' 1 + exp(-gate) formed) before the
   * first barrier, instead of one chunk a loop iteration; the same operations on the same values (bit-equal).
   */
  eager?: boolean;
  /**
   * Lanes sweeping one output row (gatedNormGemvLanes; default 32): at 64, a K = 4096 bf16 row's 512 chunks are 8 a
   * lane (2 rounds of loads at unroll 4, against 4 at 32 lanes) and the grid twice the workgroups of 4 rows. The
   * row's partials meet over more lanes (equal within f32 rounding, not bit-equal).
   */
  lanes?: number;
  /** The row sums by subgroup shuffles for subgroups of this size (sweep.ts decodeSubgroupSize); unset: the tree. */
  sg?: number;
  /**
   * The per-head o_norm's sum of squares by subgroup shuffles for subgroups of this size (decodeTuning.
   * subgroupSumsRest): each head's GNG_WG / H invocations lie in one subgroup, so a shuffle sum over them leaves the
   * head's sum in its first invocation, which writes inv[h]: one barrier instead of the partials' two. Used where
   * GNG_WG / H is a power of two no larger than it (headNormSubgroup); else the partials in workgroup memory.
   */
  normSg?: number;
}

/** The subgroup size the variant's head norm sums with (GatedNormGemvVariant.normSg), where it applies. */
export function headNormSubgroup(v: GatedNormGemvVariant): number | undefined {
  const tph = GNG_WG / v.H;
  const sg = v.normSg;
  return sg && Number.isInteger(tph) && (tph & (tph - 1)) === 0 && tph <= sg ? sg : undefined;
}

/** Loads per lane in flight in the row sweep unless the variant says (else decodeTuning.unroll). */
export const gatedNormGemvTuning: {
  unroll?: number;
  /**
   * GatedNormGemvVariant.lanes default (bench decode --gated-lanes; sweep gatedLanes); unset: GNG_LANES. 64 measured
   * no faster on the H200 (4K sweep, bench/results/2026-12-02-h200-s15-decrest3-s1-sweep.json): gated_norm_gemv
   * 0.389 against 0.367-0.383 ms a step.
   */
  lanes?: number;
} = {};

/**
 * Lanes a row of the variant (GatedNormGemvVariant.lanes, else gatedNormGemvTuning.lanes, else GNG_LANES): a power
 * of two in 8..GNG_WG. The workgroup stays GNG_WG invocations (the head norms' layout), GNG_WG / lanes rows.
 */
export function gatedNormGemvLanes(v: GatedNormGemvVariant): number {
  const l = v.lanes ?? gatedNormGemvTuning.lanes ?? GNG_LANES;
  if (!(Number.isInteger(l) && l >= 8 && l <= GNG_WG && (l & (l - 1)) === 0))
    throw new Error(`gatedNormGemv: ${l} lanes a row, expected a power of two in 8..${GNG_WG}`);
  return l;
}

/** Output rows a workgroup of the variant computes (its grid is ceil(N / this) workgroups). */
export function gatedNormGemvRows(v: GatedNormGemvVariant): number {
  return GNG_WG / gatedNormGemvLanes(v);
}

/** Workgroup bytes of the staged variant (the row beside the reductions). */
export function gatedNormGemvStagedBytes(H: number, d: number): number {
  return 4 * (H * d + 2 * GNG_WG + H);
}

/**
 * The per-head inverse rms from each invocation's `ss` (its part of head h's sum of squares; invocations t = 0..TPH-1
 * of head h consecutive) into inv[h], ending with a barrier (uses `part` without headNormSubgroup). Call from
 * uniform control flow; `lid`, `h`, `t` and `p.eps` in scope.
 */
export function headInvWgsl(v: GatedNormGemvVariant): string[] {
  const TPH = GNG_WG / v.H;
  const { d } = v;
  const L: string[] = [];
  if (headNormSubgroup(v)) {
    // The head's TPH invocations are consecutive within one subgroup (TPH divides hs): xor shuffles sum them.
    L.push('  var s = ss;');
    for (let q = TPH / 2; q >= 1; q /= 2) L.push(`  s += subgroupShuffleXor(s, ${q}u);`);
    L.push(`  if (t == 0u) { inv[h] = 1.0 / sqrt(s / ${d}.0 + p.eps); }`);
    L.push('  workgroupBarrier();');
  } else {
    L.push('  part[lid] = ss;');
    L.push('  workgroupBarrier();');
    L.push('  if (t == 0u) {');
    L.push('    var s = 0.0;');
    L.push(`    for (var k = 0u; k < ${TPH}u; k++) { s += part[lid + k]; }`);
    L.push(`    inv[h] = 1.0 / sqrt(s / ${d}.0 + p.eps);`);
    L.push('  }');
    L.push('  workgroupBarrier();');
  }
  return L;
}

export function unrollOf(v: GatedNormGemvVariant): number {
  return Math.max(1, v.unroll ?? gatedNormGemvTuning.unroll ?? decodeTuning.unroll);
}

function eagerOf(v: GatedNormGemvVariant): boolean {
  return !!v.staged && (v.eager ?? decodeTuning.eager);
}

export function gatedNormGemvKey(v: GatedNormGemvVariant): string {
  const u = unrollOf(v);
  return `gated_norm_gemv_h${v.H}_d${v.d}_${v.normDtype}_${v.wDtype}${u > 1 ? `_u${u}` : ''}${v.staged ? '_st' : ''}${prefetchOf(v) ? '_pf' : ''}${v.l2 ? '_l2' : ''}${eagerOf(v) ? '_eg' : ''}${v.sg ? `_sg${v.sg}` : ''}${headNormSubgroup(v) ? `_hs${headNormSubgroup(v)}` : ''}${gatedNormGemvLanes(v) !== GNG_LANES ? `_l${gatedNormGemvLanes(v)}` : ''}`;
}

export function gatedNormGemvWgsl(v: GatedNormGemvVariant): string {
  const { H, d } = v;
  const TPH = GNG_WG / H;
  const LANES = gatedNormGemvLanes(v);
  const ROWS = gatedNormGemvRows(v);
  const d4 = d / 4;
  const K = H * d;
  const bf16 = v.wDtype === 'bf16';
  const L: string[] = [];
  const hs = headNormSubgroup(v);
  if (v.sg || hs) L.push('enable subgroups;');
  L.push(`struct Params { N: u32, K: u32, eps: f32, ${v.l2 ? 'guard' : '_p'}: u32 };`);
  L.push('@group(0) @binding(0) var<uniform> p: Params;');
  L.push('@group(0) @binding(1) var<storage, read> O: array<vec4<f32>>;');
  L.push('@group(0) @binding(2) var<storage, read> G: array<vec4<f32>>;');
  L.push(`@group(0) @binding(3) var<storage, read> NW: array<${storageElem(v.normDtype)}>;`);
  L.push(`@group(0) @binding(4) var<storage, read> W: array<${bf16 ? 'vec4<u32>' : 'vec4<f32>'}>;`);
  L.push('@group(0) @binding(5) var<storage, read_write> Y: array<f32>;');
  L.push(loadFn('normWeight', 'NW', v.normDtype));
  if (v.l2) L.push(l2PrefetchWgsl(6, GNG_WG));
  if (!hs) L.push(`var<workgroup> part: array<f32, ${GNG_WG}>;`);
  L.push(`var<workgroup> inv: array<f32, ${H}>;`);
  L.push(`var<workgroup> dots: array<f32, ${GNG_WG}>;`);
  if (v.staged) L.push(`var<workgroup> row: array<vec4<f32>, ${K / 4}>;`);
  if (bf16) {
    L.push('fn lo(w: u32) -> f32 { return bitcast<f32>(w << 16u); }');
    L.push('fn hi(w: u32) -> f32 { return bitcast<f32>(w & 0xffff0000u); }');
  }
  // Input chunk c (4 values at 4c..4c+3, one head: d % 4 == 0), normalised and gated.
  L.push('fn xin(c: u32) -> vec4<f32> {');
  L.push(`  let i = 4u * c; let j = i % ${d}u;`);
  L.push('  let w = vec4<f32>(normWeight(j), normWeight(j + 1u), normWeight(j + 2u), normWeight(j + 3u));');
  L.push(`  return w * O[c] * inv[i / ${d}u] / (vec4<f32>(1.0) + exp(-G[c]));`);
  L.push('}');
  // The grid's own workgroups first; with l2 the rest prefetch.
  L.push(...gemvEntryWgsl(GNG_WG, ROWS, v.l2));
  const per = bf16 ? 8 : 4;
  const pre = prefetchOf(v);
  const x = (c: string) => (v.staged ? `row[${c}]` : `xin(${c})`);
  L.push(`  let lane = lid % ${LANES}u; let r = lid / ${LANES}u;`);
  L.push(`  let n = g * ${ROWS}u + r;`);
  L.push(`  let chunks = ${K / per}u;`);
  L.push('  let wRow = n * chunks;');
  const sweep: SweepSpec = {
    U: unrollOf(v),
    lane: 'lane',
    lanes: LANES,
    chunks: 'chunks',
    load: (c) => `W[wRow + ${c}]`,
    term: (c, w) => (bf16 ? bf16ChunkDot(w, x(`(${c}) * 2u`), x(`(${c}) * 2u + 1u`)) : `dot(${x(c)}, ${w})`),
    acc: 'acc',
    tag: 'g',
    indent: '    ',
    preloaded: pre,
  };
  if (pre) L.push(...sweepPreloadWgsl({ ...sweep, indent: '  ' }, 'n < p.N', bf16 ? 'vec4<u32>()' : 'vec4<f32>()'));
  L.push(`  let h = lid / ${TPH}u; let t = lid % ${TPH}u;`);
  L.push('  var ss = 0.0;');
  const eager = eagerOf(v);
  // Eager: the staged chunks c_i = lid + i * WG, their o, gate and norm weight (and 1 + exp(-gate)) loaded here.
  const IT = Math.ceil(K / 4 / GNG_WG);
  if (eager) {
    const IS = Math.ceil(d4 / TPH);
    for (let i = 0; i < IS; i++) {
      L.push(`  var x${i} = vec4<f32>();`);
      L.push(`  if (t + ${i * TPH}u < ${d4}u) { x${i} = O[h * ${d4}u + t + ${i * TPH}u]; }`);
    }
    for (let i = 0; i < IT; i++) {
      L.push(`  let c${i} = lid + ${i * GNG_WG}u; let j${i} = (4u * c${i}) % ${d}u;`);
      L.push(`  var o${i} = vec4<f32>(); var e${i} = vec4<f32>(1.0); var w${i} = vec4<f32>();`);
      L.push(`  if (c${i} < ${K / 4}u) {`);
      L.push(`    o${i} = O[c${i}];`);
      L.push(
        `    w${i} = vec4<f32>(normWeight(j${i}), normWeight(j${i} + 1u), normWeight(j${i} + 2u), normWeight(j${i} + 3u));`,
      );
      L.push(`    e${i} = vec4<f32>(1.0) + exp(-G[c${i}]);`);
      L.push('  }');
    }
    for (let i = 0; i < IS; i++) L.push(`  if (t + ${i * TPH}u < ${d4}u) { ss += dot(x${i}, x${i}); }`);
  } else L.push(`  for (var c = t; c < ${d4}u; c += ${TPH}u) { let x = O[h * ${d4}u + c]; ss += dot(x, x); }`);
  L.push(...headInvWgsl(v));
  if (eager) {
    // xin's operations in its order: w * o * inv / (1 + exp(-gate)).
    for (let i = 0; i < IT; i++)
      L.push(`  if (c${i} < ${K / 4}u) { row[c${i}] = w${i} * o${i} * inv[(4u * c${i}) / ${d}u] / e${i}; }`);
    L.push('  workgroupBarrier();');
  } else if (v.staged) {
    L.push(`  for (var c = lid; c < ${K / 4}u; c += ${GNG_WG}u) { row[c] = xin(c); }`);
    L.push('  workgroupBarrier();');
  }
  L.push('  var acc = 0.0;');
  L.push('  if (n < p.N) {');
  L.push(...sweepWgsl(sweep));
  L.push('  }');
  L.push(...(v.sg ? subgroupRowSumWgsl([{ v: 'acc', slot: (i) => `dots[${i}]` }], LANES, v.sg) : laneTreeSum(LANES)));
  L.push('  if (lane == 0u && n < p.N) { Y[n] = dots[lid]; }');
  L.push('}');
  return L.join('\n');
}
