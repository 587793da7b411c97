/**
 * Dispatches that do (almost) nothing, for measuring what a dispatch boundary costs inside a decode step
 * (BatchSessionOptions.padDispatches, bench decode --pad-dispatches): each is one workgroup of one
 * invocation adding 1 to a single f32 of `t`. All of them write the same buffer, so each waits for the one
 * before it (Dawn puts a barrier between dispatches that write a storage buffer), as the step's kernels do.
 * (TPOT with n of them - TPOT without) / n is the fixed cost per dispatch: launch, barrier, drain.
 */
import { Params } from '../../gpu/params.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu } from '../common.js';

const PAD_WGSL = /* wgsl */ `
struct Params { n: u32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> t: array<f32>;
@compute @workgroup_size(1)
fn main() { t[0] = t[0] + f32(p.n); }`;

/** Records `count` pad dispatches over `t` (f32, at least one element); nothing on cpu. */
export function padDispatches(t: Tensor, count: number): void {
  const gpu = asGpu(t.device);
  if (!gpu) return;
  for (let i = 0; i < count; i++) {
    gpu.dispatch({
      kernel: { name: 'pad_dispatch', key: 'pad_dispatch', code: () => PAD_WGSL },
      tensors: [t],
      params: new Params().u32(1, 0, 0, 0),
      workgroups: [1],
    });
  }
}
