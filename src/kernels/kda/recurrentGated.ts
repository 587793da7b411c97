/**
 * kdaRecurrentGated: one decode token per sequence of a KDA layer, from the layer's raw projections: the
 * decay logits g = f_b f_a(h) and the output gate gate = g_b g_a(h), then the recurrent step over a pool
 * of state slots (kdaRecurrentSlots in layer mode), returning o and the gate for the gated o_norm.
 *
 * On WebGPU it is one dispatch (recurrentGatedPrefetch.wgsl.ts, or the eighth session's recurrentGated.wgsl.ts
 * with recurrentGatedTuning.kernel 'v1') where that kernel applies, the values of the two ops it replaces
 * (the GEMV of the low-rank columns, then kdaRecurrentSlots) up to reassociation; elsewhere it is those two
 * ops (on cpu: their references, which are this op's definition).
 */
import { Params } from '../../gpu/params.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape } from '../common.js';
import { contiguous } from '../copy/index.js';
import { linear } from '../matmul/index.js';
import { kdaRecurrentSlots } from './index.js';
import {
  type RecurrentGatedVariant,
  recurrentGatedFits,
  recurrentGatedKey,
  recurrentGatedWgsl,
} from './recurrentGated.wgsl.js';
import {
  type GatedNorm,
  type GatedProbe,
  gatedNormFits,
  type RecurrentGatedPrefetchVariant,
  recurrentGatedPrefetchKey,
  recurrentGatedPrefetchWgsl,
} from './recurrentGatedPrefetch.wgsl.js';
import { recurrentVecGeometry } from './recurrent.wgsl.js';
import { recurrentBV, recurrentTuning } from './slots.js';

export interface KdaGatedInputs {
  /** [3, N, H * K] f32: q, k and v of each sequence's token after the short conv (convStep's planes). */
  qkv: Tensor;
  /** [N, ld] f32: the layer's input projection, f_a, g_a and the H raw betas at columns fA, gA, beta. */
  proj: Tensor;
  fA: number;
  gA: number;
  beta: number;
  /** f_b_proj [H * K, rf] and g_b_proj [H * K, rg], f32 or bf16 (one dtype). */
  fB: Tensor;
  gB: Tensor;
  /** [H] and [H * K] f32. */
  A_log: Tensor;
  dt_bias: Tensor;
}

/**
 * Folding off (false) keeps the GEMV and kdaRecurrentSlots apart (for measuring; bench decode --no-fold-kda-gate).
 * `kernel`: 'prefetch' (recurrentGatedPrefetch.wgsl.ts, every load before the first barrier; 6.1 against
 * 14.5 us a dispatch on the H200 at the 48B shapes, batch 1, and the 48B decode's TPOT at 4K 3.89 against
 * 4.07 ms) or 'v1' (the eighth session's recurrentGated.wgsl.ts, for comparison: bench kda --decode-gated v1,
 * bench decode --sweep '[{"label":"v1","kdaGated":"v1"}]'); `bv` its value tile (default: gatedBV); `norm`
 * and `probe` as in recurrentGatedPrefetch.wgsl.ts (probes: profiling only, wrong results).
 */
export const recurrentGatedTuning: {
  fold: boolean;
  kernel: 'prefetch' | 'v1';
  bv?: number;
  norm: GatedNorm;
  probe?: GatedProbe;
} = { fold: true, kernel: 'prefetch', norm: 'split' };

/**
 * Value tile of the prefetch kernel: 32 columns where V allows. Every workgroup repeats its head's f_b
 * products (128 rows of 128 at the 48B shapes) and sums k^T S over NRG = 128 / (BV / 4) row groups, so the
 * narrow tiles the core step takes at batch 1 (recurrentBV: 8, 512 workgroups) multiply that work by 4
 * against 32 (128 workgroups, still one an SM on the H200). H200, H = 32, d = 128, batch 1 / 8: BV 32
 * 6.06 / 24.0 us, 16 7.45 / 37.0, 8 11.0 / 67.9 (bench kda --decode-gated).
 */
export function gatedBV(p: { N: number; H: number; V: number }): number {
  const forced = recurrentGatedTuning.bv;
  if (forced !== undefined) {
    if (!(Number.isInteger(forced) && forced > 0 && p.V % forced === 0))
      throw new Error(`kdaRecurrentGated: value tile ${forced} does not divide V=${p.V}`);
    return forced;
  }
  return p.V % 32 === 0 ? 32 : recurrentBV(p);
}

/**
 * Sequences up to which the fold applies. Every workgroup recomputes its head's g (H * K * rf products, the
 * head's f_b rows from L2: 32 KB at the 48B shapes), so the repeated work grows with the batch while the
 * dispatch it saves does not: at decode batch 64 (8,192 workgroups) that is ~270 MB of L2 reads beside the
 * ~270 MB of state the step must move. Up to 8 (the GEMV kernel's rows, matmul/gemv.wgsl.ts) it stays small.
 */
export const RECURRENT_GATED_MAX_N = 8;

/**
 * Sequence n (batch row n) reads and writes pool[slots[n]] ([slots, H, K, V] f32, in place). Returns
 * o [N, 1, H, V] and gate [N, H * V] (raw: the o_norm applies its sigmoid). `scale` defaults to K^-0.5.
 */
export function kdaRecurrentGated(
  pool: Tensor,
  slots: Tensor,
  x: KdaGatedInputs,
  opts: { scale?: number } = {},
): { o: Tensor; gate: Tensor } {
  const op = 'kdaRecurrentGated';
  const device = deviceOf(op, pool, slots, x.qkv, x.proj, x.fB, x.gB, x.A_log, x.dt_bias);
  expectDType(op, 'qkv', x.qkv, ['f32']);
  expectDType(op, 'proj', x.proj, ['f32']);
  expectDType(op, 'f_b', x.fB, ['f32', 'bf16']);
  expectDType(op, 'g_b', x.gB, [x.fB.dtype]);
  expectShape(op, 'pool', pool, [null, null, null, null]);
  const [, H, K, V] = pool.shape;
  const N = slots.numel;
  expectShape(op, 'qkv', x.qkv, [3, N, H * K]);
  if (K !== V) throw new Error(`${op}: K=${K} and V=${V} differ (q, k and v share the conv planes)`);
  expectShape(op, 'proj', x.proj, [N, null]);
  const rf = x.fB.shape[1];
  const rg = x.gB.shape[1];
  expectShape(op, 'f_b', x.fB, [H * K, rf]);
  expectShape(op, 'g_b', x.gB, [H * V, rg]);
  const ld = x.proj.shape[1];
  for (const [n, at, len] of [
    ['fA', x.fA, rf],
    ['gA', x.gA, rg],
    ['beta', x.beta, H],
  ] as const) {
    if (!(Number.isInteger(at) && at >= 0 && at + len <= ld))
      throw new Error(`${op}: columns ${n}=${at}..${at + len} do not fit the projection's ${ld}`);
  }
  const scale = opts.scale ?? K ** -0.5;
  const gpu = asGpu(device);
  const v1 = recurrentGatedTuning.kernel === 'v1';
  const v: RecurrentGatedVariant = {
    K,
    V,
    BV: v1 ? recurrentBV({ N, H, V }) : gatedBV({ N, H, V }),
    rf,
    rg,
    wDtype: x.fB.dtype as 'f32' | 'bf16',
  };
  if (
    !gpu ||
    !recurrentGatedTuning.fold ||
    N > RECURRENT_GATED_MAX_N ||
    recurrentTuning.vec === false ||
    !recurrentGatedFits(v) ||
    !gpu.isBindable(pool)
  ) {
    return twoOps(pool, slots, x, { H, K, V, N }, scale);
  }
  const ins = [slots, x.qkv, x.proj, x.fB, x.gB, x.A_log, x.dt_bias].map(contiguous);
  const o = gpu.empty([N, 1, H, V]);
  const gate = gpu.empty([N, H * V]);
  // Norm 'split' needs K / 8 threads a half workgroup; 'one' (the same values as 'all') where it does not fit.
  const { WG } = recurrentVecGeometry(K, v.BV);
  const norm = gatedNormFits(recurrentGatedTuning.norm, K, WG) ? recurrentGatedTuning.norm : 'one';
  const pf: RecurrentGatedPrefetchVariant = { ...v, norm, probe: recurrentGatedTuning.probe };
  gpu.dispatch({
    kernel: v1
      ? { name: 'kda_recurrent_gated', key: recurrentGatedKey(v), code: () => recurrentGatedWgsl(v) }
      : { name: 'kda_recurrent_gated', key: recurrentGatedPrefetchKey(pf), code: () => recurrentGatedPrefetchWgsl(pf) },
    tensors: [...ins, pool, o, gate],
    params: new Params()
      .u32(H, ld, x.fA, x.gA, x.beta, N * H * K)
      .f32(scale)
      .u32(0),
    workgroups: [V / v.BV, H, N],
  });
  for (const t of ins) t.dispose();
  return { o, gate };
}

/** The definition: the two GEMVs of the low-rank columns, then the recurrent step in layer mode. */
function twoOps(
  pool: Tensor,
  slots: Tensor,
  x: KdaGatedInputs,
  s: { H: number; K: number; V: number; N: number },
  scale: number,
): { o: Tensor; gate: Tensor } {
  const { H, K, V, N } = s;
  const made: Tensor[] = [];
  // Every tensor made here but the two returned is disposed at the end (views hold their own reference).
  const m = (t: Tensor) => {
    made.push(t);
    return t;
  };
  const cols = (at: number, n: number) => m(contiguous(x.proj.narrow(1, at, n)));
  const g = m(m(linear(cols(x.fA, x.fB.shape[1]), x.fB)).reshape([N, 1, H, K]));
  const gate = linear(cols(x.gA, x.gB.shape[1]), x.gB);
  const beta = m(cols(x.beta, H).reshape([N, 1, H]));
  // The N tokens as a dense batch [N, 1, ...] (one token per sequence, sequence n in slot slots[n]).
  const [q, k, v] = [0, 1, 2].map((j) => m(m(x.qkv.select(0, j)).reshape([N, 1, H, j === 2 ? V : K])));
  const o = m(
    kdaRecurrentSlots(pool, slots, q, k, v, g, beta, {
      scale,
      layer: { A_log: m(x.A_log.reshape([H])), dt_bias: x.dt_bias },
    }),
  );
  const out = o.reshape([N, 1, H, V]);
  for (const t of made) t.dispose();
  return { o: out, gate };
}
