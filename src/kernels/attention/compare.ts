/**
 * Each wide kernel set against the tiled one on the device, in one sitting: the same random inputs through
 * both (forward with stats, then the backward), the largest difference of each output relative to the
 * largest |value| of the tiled result, and each kernel's GPU time (per-dispatch timestamps, best of `reps`).
 * `bench train --attention-check` runs it at the bench's shape.
 */
import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../tensor/tensor.js';
import { Rng } from '../../util/random.js';
import { maxRelDiff } from '../../util/relDiff.js';
import { attentionBackward, attentionWithStats } from './backward.js';
import { ATTENTION_KERNELS, type AttentionKernels, attentionKernels, setAttentionKernels } from './choice.js';

export interface AttentionCheckDims {
  B: number;
  T: number;
  H: number;
  Dk: number;
  Dv: number;
}

export interface AttentionKernelComparison {
  dims: AttentionCheckDims;
  /** Per wide kind: max |wide - tiled| / max |tiled| per output. */
  maxRelDiff: Record<string, Record<'o' | 'lse' | 'rowMax' | 'dq' | 'dk' | 'dv', number>>;
  /** Best-of-reps GPU ms per kernel name, per kernel set. */
  ms: Record<AttentionKernels, Record<string, number>>;
}

export async function compareAttentionKernels(
  gpu: GpuContext,
  d: AttentionCheckDims,
  reps = 4,
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
    for (const kind of ATTENTION_KERNELS) {
      setAttentionKernels(kind);
      const host: Record<string, Float32Array> = {};
      for (const [name, t] of Object.entries(run())) {
        host[name] = await t.toFloat32();
        t.dispose();
      }
      outs[kind] = host;
    }
    // Kinds interleaved within each repetition, so a drift of the GPU's clocks touches all alike.
    for (let i = 0; i < reps; i++)
      for (const kind of ATTENTION_KERNELS) {
        setAttentionKernels(kind);
        const spans = await gpu.profile(() => {
          for (const t of Object.values(run())) t.dispose();
        });
        ms[kind] ??= {};
        const best = ms[kind];
        const sum: Record<string, number> = {};
        for (const s of spans) sum[s.name] = (sum[s.name] ?? 0) + s.ms;
        for (const [name, t] of Object.entries(sum))
          best[name] = Number(Math.min(best[name] ?? Number.POSITIVE_INFINITY, t).toFixed(3));
      }
  } finally {
    setAttentionKernels(before);
    for (const t of [q, k, v, dO]) t.dispose();
  }
  const t = outs.tiled!;
  const rels: AttentionKernelComparison['maxRelDiff'] = {};
  for (const kind of ATTENTION_KERNELS.filter((k) => k !== 'tiled')) {
    const w = outs[kind]!;
    const rel = (n: string) => Number(maxRelDiff(w[n], t[n]).toExponential(3));
    rels[kind] = {
      o: rel('o'),
      lse: rel('lse'),
      rowMax: rel('rowMax'),
      dq: rel('dq'),
      dk: rel('dk'),
      dv: rel('dv'),
    };
  }
  return {
    dims: d,
    maxRelDiff: rels,
    ms: ms as Record<AttentionKernels, Record<string, number>>,
  };
}
