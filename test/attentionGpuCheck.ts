/**
 * The GPU-vs-reference check of attention forward-with-stats and backward, shared by
 * attentionBackward.test.ts (the default kernels) and attentionWide.test.ts (the other kernel sets) so both
 * hold every kernel set to the same comparisons and tolerances.
 */
import { expect } from 'vitest';
import type { GpuContext } from '../src/gpu/context.js';
import { attention, attentionBackward, attentionWithStats } from '../src/kernels/attention/index.js';
import { attentionBackwardReference } from '../src/kernels/attention/backwardReference.js';
import { type AttentionDims, attentionWithStatsReference } from '../src/kernels/attention/reference.js';
import { Rng } from '../src/util/random.js';
import { expectClose } from './helpers.js';

/** q (scale 1.5), k, v and dO of [B, T, H, D] from one seed. */
export function attentionInputs(B: number, T: number, H: number, Dk: number, Dv: number, seed: number) {
  const rng = new Rng(seed);
  return {
    q: rng.normalArray(B * T * H * Dk, 1.5),
    k: rng.normalArray(B * T * H * Dk),
    v: rng.normalArray(B * T * H * Dv),
    dO: rng.normalArray(B * T * H * Dv),
  };
}

/**
 * The kernels attention() now picks on `gpu` against the reference at d (scale Dk^-1/2): o, lse and rowMax of
 * attentionWithStats, o of attention() bit-equal to it, and dq, dk, dv of attentionBackward within tol.
 */
export async function expectAttentionMatchesReference(
  gpu: GpuContext,
  d: AttentionDims,
  seed: number,
  tol: number,
): Promise<void> {
  const { B, T, H, Dk, Dv, causal } = d;
  const { q, k, v, dO } = attentionInputs(B, T, H, Dk, Dv, seed);
  const [qt, kt, vt] = [gpu.fromHost(q, [B, T, H, Dk]), gpu.fromHost(k, [B, T, H, Dk]), gpu.fromHost(v, [B, T, H, Dv])];
  const st = attentionWithStats(qt, kt, vt, { causal });
  const ref = attentionWithStatsReference(q, k, v, d);
  const o = await st.o.toFloat32();
  expectClose(o, ref.o, 2e-5, 'o');
  expect(Array.from(o)).toEqual(Array.from(await attention(qt, kt, vt, { causal }).read()));
  expectClose(await st.lse.read(), ref.lse, 1e-6, 'lse');
  expectClose(await st.rowMax.read(), ref.rowMax, 1e-6, 'rowMax');
  const g = attentionBackward(qt, kt, vt, st.o, st.lse, gpu.fromHost(dO, [B, T, H, Dv]), { causal });
  // The reference gets the reference's o and lse, so the comparison isolates the backward kernels.
  const gr = attentionBackwardReference(q, k, v, ref.o, ref.lse, dO, d);
  expectClose(await g.dq.read(), gr.dq, tol, 'dq');
  expectClose(await g.dk.read(), gr.dk, tol, 'dk');
  expectClose(await g.dv.read(), gr.dv, tol, 'dv');
}
