/**
 * `bench kda --decode-gated <spec,...>`: the KDA decode step as the 48B decode runs it (kdaRecurrentGated: the
 * layer-mode recurrent step with the f_b / g_b GEMVs folded in), beside the core step, in one process on the
 * decode rows' shapes (H = --decode-heads, d = --d, ranks r = d, bf16 f_b / g_b), for each --batch. A spec:
 *   core            the core-form step (kdaRecurrentSlots, g and beta given: bench kda's decode row)
 *   layer           the layer-mode step alone (l2norm, gate and sigmoid inside; g given raw)
 *   two-ops         the two dispatches the fold replaced: the f_b / g_b GEMVs, then the layer-mode step
 *   v1              the eighth session's folded kernel (recurrentGated.wgsl.ts)
 *   pf[:bvN][:one|:split|:all][:probe-fold|:probe-norm|:probe-update]
 *                   the prefetch kernel (recurrentGatedPrefetch.wgsl.ts) with that tile, norm and probe
 *                   (probes: profiling only, wrong results)
 * Timed like the decode rows: timestamps around one compute pass of reps dispatches, median of trials.
 */
import type { GpuContext } from '../gpu/context.js';
import { kdaRecurrentSlots } from '../kernels/kda/index.js';
import { kdaRecurrentGated, recurrentGatedTuning } from '../kernels/kda/recurrentGated.js';
import type { GatedNorm, GatedProbe } from '../kernels/kda/recurrentGatedPrefetch.wgsl.js';
import { randomUniform } from '../kernels/random/index.js';
import { castTo } from '../kernels/copy/cast.js';
import { contiguous } from '../kernels/copy/index.js';
import { linear } from '../kernels/matmul/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { timeGpu } from './harness.js';

export interface GatedSpec {
  text: string;
  kind: 'core' | 'layer' | 'two-ops' | 'v1' | 'pf';
  bv?: number;
  norm?: GatedNorm;
  probe?: GatedProbe;
}

export function parseGatedSpecs(s: string | undefined): GatedSpec[] | undefined {
  if (s === undefined) return undefined;
  return s.split(',').map((text) => {
    const [kind, ...mods] = text.trim().split(':');
    if (!['core', 'layer', 'two-ops', 'v1', 'pf'].includes(kind))
      throw new Error(
        `--decode-gated: '${text}' is not core, layer, two-ops, v1 or pf[:bvN][:one|:split|:all][:probe-...]`,
      );
    const spec: GatedSpec = { text: text.trim(), kind: kind as GatedSpec['kind'] };
    for (const m of mods) {
      if (kind !== 'pf') throw new Error(`--decode-gated: '${text}': only pf takes modifiers`);
      if (/^bv\d+$/.test(m)) spec.bv = Number(m.slice(2));
      else if (m === 'one' || m === 'split' || m === 'all') spec.norm = m;
      else if (m === 'probe-fold' || m === 'probe-norm' || m === 'probe-update') spec.probe = m.slice(6) as GatedProbe;
      else
        throw new Error(
          `--decode-gated: '${text}': modifier '${m}' is not bvN, one, split, all or probe-fold|norm|update`,
        );
    }
    return spec;
  });
}

/** One row: `spec` at `batch` sequences, H heads of d, ranks d, bf16 f_b / g_b. */
export async function timeDecodeGated(
  gpu: GpuContext,
  spec: GatedSpec,
  o: { batch: number; H: number; d: number; reps: number; trials: number },
) {
  const { batch: N, H, d } = o;
  const r = d;
  const made: Tensor[] = [];
  const m = (t: Tensor) => {
    made.push(t);
    return t;
  };
  const a = Math.sqrt(3 / d);
  const u = (shape: number[], seed: number, lo = -1, hi = 1) => m(randomUniform(gpu, shape, { seed, lo, hi }));
  // The projection row: f_a, g_a, then the H raw betas (the 48B row holds q, k, v before them; where the
  // columns sit does not change the work).
  const ld = 2 * r + H;
  const proj = u([N, ld], 31);
  const qkv = u([3, N, H * d], 37, -a, a);
  const fB = m(castTo(u([H * d, r], 41, -0.1, 0.1), 'bf16'));
  const gB = m(castTo(u([H * d, r], 43, -0.1, 0.1), 'bf16'));
  const A_log = u([H], 47, 0, 1);
  const dt_bias = u([H * d], 53);
  const pool = u([N, H, d, d], 29, -0.1, 0.1);
  const slots = m(
    gpu.fromHost(
      Int32Array.from({ length: N }, (_, i) => i),
      [N],
      'i32',
    ),
  );
  const g = u([N, 1, H, d], 59, -0.1, -0.001);
  const beta = u([N, 1, H], 61);
  const [q, k, v] = [0, 1, 2].map((j) => m(m(qkv.select(0, j)).reshape([N, 1, H, d])));
  const inputs = { qkv, proj, fA: 0, gA: r, beta: 2 * r, fB, gB, A_log, dt_bias };
  // two-ops: its GEMVs' inputs as dense tensors, made once (the model's unfused step copies them each step).
  const fa = m(contiguous(proj.narrow(1, 0, r)));
  const ga = m(contiguous(proj.narrow(1, r, r)));
  const b = m(m(contiguous(proj.narrow(1, 2 * r, H))).reshape([N, 1, H]));
  const saved = { ...recurrentGatedTuning };
  const step = (): void => {
    if (spec.kind === 'core') kdaRecurrentSlots(pool, slots, q, k, v, g, beta).dispose();
    else if (spec.kind === 'layer')
      kdaRecurrentSlots(pool, slots, q, k, v, g, beta, { layer: { A_log, dt_bias } }).dispose();
    else if (spec.kind === 'two-ops') {
      // The block-diagonal GEMV of the unfused model step is one dispatch; two GEMVs here (same bytes).
      const gg = linear(fa, fB);
      const gate = linear(ga, gB);
      const g4 = gg.reshape([N, 1, H, d]);
      const out = kdaRecurrentSlots(pool, slots, q, k, v, g4, b, { layer: { A_log, dt_bias } });
      for (const t of [gg, g4, gate, out]) t.dispose();
    } else {
      const res = kdaRecurrentGated(pool, slots, inputs);
      res.o.dispose();
      res.gate.dispose();
    }
  };
  Object.assign(recurrentGatedTuning, {
    kernel: spec.kind === 'v1' ? 'v1' : 'prefetch',
    bv: spec.bv,
    norm: spec.norm ?? saved.norm,
    probe: spec.probe,
  });
  let t: Awaited<ReturnType<typeof timeGpu>>;
  try {
    t = await timeGpu(gpu, step, o.reps * 4, o.trials);
  } finally {
    Object.assign(recurrentGatedTuning, saved);
    for (const x of made) x.dispose();
  }
  return {
    spec: spec.text,
    batch: N,
    H,
    d,
    rank: r,
    us: Number((t.ms * 1e3).toFixed(3)),
    trialsUs: t.trials.map((x) => Number((x * 1e3).toFixed(3))),
    timer: t.source,
  };
}
