/**
 * The expert plan on the device (plan.wgsl.ts), as the forward experts and their backward both record it:
 * the N*k (token, slot) pairs grouped by expert and cut into row tiles of `bm` rows of one expert each.
 */
import type { GpuContext } from '../../gpu/context.js';
import { Params } from '../../gpu/params.js';
import type { Tensor } from '../../tensor/tensor.js';
import { planKey, planWgsl } from './plan.wgsl.js';

export interface ExpertPlan {
  /** Upper bound on the tiles: every expert may end in a partial tile. */
  maxTiles: number;
  /** [E] i32 pairs per expert. */
  counts: Tensor;
  /** [N*k] i32 token of each grouped row. */
  perm: Tensor;
  /** [N*k] i32 grouped row of each (token, slot) pair. */
  slotPos: Tensor;
  /** [maxTiles * 4] i32 (expert, first row, end row, unused). */
  tiles: Tensor;
  /** [4] i32, the number of tiles first. */
  tileCount: Tensor;
}

/** Record the plan of `idx` ([N, k] i32, contiguous) over E experts, tiles of `bm` rows. The caller disposes. */
export function planExperts(gpu: GpuContext, idx: Tensor, E: number, k: number, NK: number, bm: number): ExpertPlan {
  const maxTiles = Math.ceil(NK / bm) + E;
  const plan = {
    maxTiles,
    counts: gpu.empty([E], 'i32'),
    perm: gpu.empty([NK], 'i32'),
    slotPos: gpu.empty([NK], 'i32'),
    tiles: gpu.empty([maxTiles * 4], 'i32'),
    tileCount: gpu.empty([4], 'i32'),
  };
  gpu.dispatch({
    kernel: { name: 'moe_plan', key: planKey(E, bm), code: () => planWgsl(E, bm) },
    tensors: [idx, plan.counts, plan.perm, plan.slotPos, plan.tiles, plan.tileCount],
    params: new Params().u32(NK, k, maxTiles, 0),
    workgroups: [1],
  });
  return plan;
}
