/**
 * The wide kernels against the tiled ones on the device, in one sitting: the same random inputs through
 * both (forward with stats, then the backward), the largest difference of each output relative to the
 * largest |value| of the tiled result, and each kernel's GPU time (per-dispatch timestamps, best of `reps`).
 * `bench train --attention-check` runs it at the bench's shape.
 */
import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../tensor/tensor.js';
import { Rng } from '../../util/random.js';
import { attentionBackward, attentionWithStats } from './backward.js';
import { type AttentionKernels, attentionKernels, setAttentionKernels } from './choice.js';

export interface AttentionCheckDims {
  B: number;
  T: number;
  H: number;
  Dk: number;
  Dv: number;
}

export interface AttentionKernelComparison {
  dims: AttentionCheckDims;
  /** max |wide - tiled| / max |tiled| per output. */
  maxRelDiff: Record<'o' | 'lse' | 'rowMax' | 'dq' | 'dk' | 'dv', number>;
  /** Best-of-reps GPU ms per kernel name, per kernel set. */
  ms: Record<AttentionKernels, Record<string, number>>;
}

function maxRel(a: Float32Array, ref: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return diff / (scale || 1);
}

export async function compareAttentionKernels(
  gpu: GpuContext,
  d: AttentionCheckDims,
  reps = 3,
): Promise<AttentionKernelComparison> {
  const rng = new Rng(7);
  const { B, T, H, Dk, Dv } = d;
  const q = gpu.fromHost(rng.normalArray(B * T * H * Dk), [B, T, H, Dk]);
  const k = gpu.fromHost(rng.normalArray(B * T * H * Dk), [B, T, H, Dk]);
  const v = gpu.fromHost(rng.normalArray(B * T * H * Dv), [B, T, H, Dv]);
  const dO = gpu.fromHost(rng.normalArray(B * T * H * Dv), [B, T, H, Dv]);
  const before = attentionKernels();
  const outs: Partial<Record<AttentionKernels, Record<string, Float32Array>>> = {};
  const ms: Partial<Record<AttentionKernels, Record<string, number>>> = {};
  const run = () => {
    const st = attentionWithStats(q, k, v);
    const g = attentionBackward(q, k, v, st.o, st.lse, dO);
    return { o: st.o, lse: st.lse, rowMax: st.rowMax, dq: g.dq, dk: g.dk, dv: g.dv } as Record<string, Tensor>;
  };
  try {
    for (const kind of ['tiled', 'wide'] as const) {
      setAttentionKernels(kind);
      const r = run();
      const host: Record<string, Float32Array> = {};
      for (const [name, t] of Object.entries(r)) {
        host[name] = await t.toFloat32();
        t.dispose();
      }
      outs[kind] = host;
      const best: Record<string, number> = {};
      for (let i = 0; i < reps; i++) {
        const spans = await gpu.profile(() => {
          for (const t of Object.values(run())) t.dispose();
        });
        const sum: Record<string, number> = {};
        for (const s of spans) sum[s.name] = (sum[s.name] ?? 0) + s.ms;
        for (const [name, t] of Object.entries(sum)) best[name] = Math.min(best[name] ?? Number.POSITIVE_INFINITY, t);
      }
      ms[kind] = Object.fromEntries(Object.entries(best).map(([n, t]) => [n, Number(t.toFixed(3))]));
    }
  } finally {
    setAttentionKernels(before);
    for (const t of [q, k, v, dO]) t.dispose();
  }
  const [w, t] = [outs.wide!, outs.tiled!];
  const rel = (n: string) => Number(maxRel(w[n], t[n]).toExponential(3));
  return {
    dims: d,
    maxRelDiff: { o: rel('o'), lse: rel('lse'), rowMax: rel('rowMax'), dq: rel('dq'), dk: rel('dk'), dv: rel('dv') },
    ms: ms as Record<AttentionKernels, Record<string, number>>,
  };
}
