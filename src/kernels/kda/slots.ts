/**
 * Dispatching the fused recurrent kernel over a pool of state slots ([slots, H, K, V] f32, in place):
 * the serving path (decode steps and short prompts), also used by the forward for short sequences.
 */
import type { GpuContext } from '../../gpu/context.js';
import { Params } from '../../gpu/params.js';
import type { Tensor } from '../../tensor/tensor.js';
import { contiguous } from '../copy/index.js';
import type { GpuProblem } from './gpu.js';
import { recurrentKey, recurrentVecFits, recurrentWgsl } from './recurrent.wgsl.js';

/**
 * Benchmarks set `bv` to sweep the value-tile width (it must divide V; undefined = the rule below) and
 * `vec: false` to force the scalar kernel; by default the kernel with 16-byte state loads
 * (recurrent.wgsl.ts) runs wherever the tile allows it.
 */
export const recurrentTuning: { bv?: number; vec?: boolean } = {};

/** Value-tile width: 32 columns, or 16 when that leaves too few workgroups to fill the GPU. */
export function recurrentBV(p: { N: number; H: number; V: number }): number {
  const forced = recurrentTuning.bv;
  if (forced !== undefined) {
    if (!(Number.isInteger(forced) && forced > 0 && p.V % forced === 0))
      throw new Error(`kda recurrent: value tile ${forced} does not divide V=${p.V}`);
    return forced;
  }
  let bv = Math.min(p.V, 32);
  while (bv > 8 && p.N * p.H * (p.V / bv) < 512 && p.V % (bv / 2) === 0) bv /= 2;
  return bv;
}

/** cu_seqlens for p: the given tensor (aliased) or [0, T, 2T, ...] for a dense batch. */
export function cuTensor(gpu: GpuContext, p: GpuProblem): Tensor {
  if (p.cuSeqlens) return contiguous(p.cuSeqlens);
  return gpu.fromHost(
    Int32Array.from({ length: p.B + 1 }, (_, i) => i * p.T),
    [p.B + 1],
    'i32',
  );
}

export function dispatchRecurrent(
  gpu: GpuContext,
  p: GpuProblem,
  cu: Tensor,
  slots: Tensor,
  x: { q: Tensor; k: Tensor; v: Tensor; g: Tensor; beta: Tensor },
  layer: { A_log: Tensor; dt_bias: Tensor } | undefined,
  state: Tensor,
  o: Tensor,
  scale: number,
): void {
  const BV = recurrentBV(p);
  // 16-byte state loads where the tile allows: on the H200 (H=32, d=128) decode batch 64 takes 84.3 us
  // with them against 94.0 us with the scalar kernel, batch 256 316 vs 361 us (bench/RESULTS.md).
  const vec = recurrentTuning.vec !== false && recurrentVecFits(p.K, p.V, BV);
  const variant = { K: p.K, V: p.V, BV, GK: p.GK, layer: !!layer, vec };
  const ins = [x.q, x.k, x.v, x.g, x.beta].map(contiguous);
  const extra = layer ? [contiguous(layer.A_log), contiguous(layer.dt_bias)] : [];
  gpu.dispatch({
    kernel: { name: 'kda_recurrent', key: recurrentKey(variant), code: () => recurrentWgsl(variant) },
    tensors: [cu, slots, ...ins, state, o, ...extra],
    params: new Params().u32(p.H, 0).f32(scale).u32(0),
    workgroups: [p.V / BV, p.H, p.N],
  });
  for (const t of [...ins, ...extra]) t.dispose();
}

export function kdaRecurrentSlotsGpu(
  gpu: GpuContext,
  p: GpuProblem,
  pool: Tensor,
  slots: Tensor,
  x: { q: Tensor; k: Tensor; v: Tensor; g: Tensor; beta: Tensor },
  layer: { A_log: Tensor; dt_bias: Tensor } | undefined,
  scale: number,
): Tensor {
  if (!gpu.isBindable(pool)) throw new Error('kdaRecurrentSlots: the state pool must be a dense tensor');
  const cu = cuTensor(gpu, p);
  const sl = contiguous(slots);
  const o = gpu.empty([p.B, p.T, p.H, p.V]);
  dispatchRecurrent(gpu, p, cu, sl, x, layer, pool, o, scale);
  cu.dispose();
  sl.dispose();
  return o;
}
